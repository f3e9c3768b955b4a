"""The suites: which tasks, which condition grid and which sink profile, versioned together.

A record names its suite and version; the board compares only records of one suite version.
Change anything here that changes numbers and bump the suite's version. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinkbench.errors import SinkbenchError
from sinkbench.grid.catalog import ACCURACY, OTHER, PERPLEXITY, RETRIEVAL, TASKS, declaration_of
from sinkbench.grid.conditions import (BASELINE, BOS_DROP, BOS_DROP_PREFIX, KNOCKOUT, PREFIX, WINDOW_ONLY, WINDOW_SINKS,
                                       Condition, role_of)

# Sink-rate thresholds: 0.3 (Gu et al.) saturates on modern models; 0.8 is Barbero et al.'s.
DEFAULT_EPS = (0.3, 0.5, 0.8)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str  # ACCURACY, RETRIEVAL, PERPLEXITY or OTHER (sinkbench.grid.catalog)
    primary_metric: str  # acc, or word_perplexity for the long-text task
    needs_data: bool  # reads the data directory (real tasks); synthetic tasks do not
    sweep: bool = False  # also run at every stress-prefix length
    retrieval: tuple[str, int] | None = None  # (family, length in tokens) of a retrieval task


@dataclass(frozen=True)
class GridCell:
    """One condition of the grid, the role it plays there, the tasks it runs, and how many documents of each."""

    condition: Condition
    tasks: tuple[str, ...]
    role: str
    limit: int | None = None  # first documents of each task; None: all the task has


@dataclass(frozen=True)
class ProfilePlan:
    """A sink profile: Gu et al.'s protocol (T tokens x n texts) with over-mixing, then a length sweep.

    `sinkbench probe` runs one with the user's T, n and <bos>; `sinkbench run` runs the suite's.
    """

    T: int = 64  # Gu et al.: T = 64 tokens ...
    n: int = 100  # ... over 100 texts
    bos: str = "keep"
    eps: tuple[float, ...] = DEFAULT_EPS
    first_k: int = 4  # StreamingLLM keeps the first 4 tokens as sinks
    batch_size: int = 8
    overmixing_sequences: int = 8  # two extra forward passes each, with and without <bos>
    sweep_lengths: tuple[int, ...] = (64, 256, 1024, 4096)  # capped by the model's context
    # Texts per sweep length: fewer at long T, where one forward pass is seconds on a CPU.
    # 8 at the longest T: the fewest an interval over texts is made from (sinkbench.record.stats).
    sweep_texts: tuple[int, ...] = (32, 16, 8, 8)
    seed: int = 0
    # Gu et al.'s random-token probe: this many sequences of T uniformly drawn non-special token ids
    # (they report sink rates of 70-91% at eps = 0.3, T = 64, from GPT-2 XL to Llama-3-8B).
    random_sequences: int = 100
    random_T: int = 64  # their T, whatever the natural-text protocol's T

    def __post_init__(self):
        if self.random_sequences < 0:
            raise SinkbenchError(f"random_sequences must be >= 0 (got {self.random_sequences})")
        if self.T < 2 or self.n < 1:
            raise SinkbenchError(f"a profile needs T >= 2 and n >= 1 (got T={self.T}, n={self.n})")
        if len(self.sweep_lengths) != len(self.sweep_texts):
            raise SinkbenchError("sweep_lengths and sweep_texts must pair up")


@dataclass(frozen=True)
class ReferenceRun:
    """One measured run of a suite, from which a run on another machine and model is first estimated:
    its seconds (conditions and profile, load excluded) scale with the model's linear weights and
    inversely with the machine's fp32 matrix-product rate."""

    model: str
    seconds: float
    matrix_gflops: float  # fp32 GEMM rate of the machine, measured as the run started
    linear_weights: int  # the model's linear weights, the LM head excluded


@dataclass(frozen=True)
class Suite:
    """Tasks, the condition grid and the sink profile, versioned together.

    The grid: the baseline on every task; the stress-prefix sweep (<bos> kept, each of
    `prefix_lengths`) on the sweep tasks' first `sweep_limit` documents; <bos> dropped on the
    accuracy tasks and the long text, and with the longest prefix on the sweep tasks; the
    first-token knockout on the accuracy tasks and the long text; StreamingLLM's window with 0 and
    `sink_keys` sink keys on the long text. Lengths a model cannot take are skipped at run time.
    """

    name: str
    version: str
    tasks: tuple[TaskSpec, ...]
    prefix_lengths: tuple[int, ...]  # the stress-prefix sweep, tokens of distractor text
    sweep_limit: int | None  # documents of each sweep task at every prefix length
    window: int  # StreamingLLM window (keys)
    sink_keys: int
    profile: ProfilePlan
    knockout_long_text: bool = True  # also score the long text with the sink knocked out
    reference: ReferenceRun | None = None  # a measured run, for the estimate a run gives before it starts
    about: str = ""  # one line for its lm-eval group's header (tasks/groups/, written by `sinkbench tasks --write-groups`)

    def task(self, name: str) -> TaskSpec:
        return {t.name: t for t in self.tasks}[name]

    def of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks if t.kind == kind)

    @property
    def long_text_task(self) -> str:
        return self.of_kind(PERPLEXITY)[0]

    def grid(self) -> tuple[GridCell, ...]:
        accuracy, long_text = self.of_kind(ACCURACY), self.of_kind(PERPLEXITY)
        sweep = tuple(t.name for t in self.tasks if t.sweep)
        longest = max(self.prefix_lengths)
        cells = [GridCell(Condition(), accuracy + self.of_kind(RETRIEVAL) + long_text, BASELINE)]
        cells += [GridCell(Condition(prefix_length=p), sweep, PREFIX, self.sweep_limit) for p in self.prefix_lengths]
        cells.append(GridCell(Condition(bos="drop"), accuracy + long_text, BOS_DROP))
        cells.append(GridCell(Condition(bos="drop", prefix_length=longest), sweep, BOS_DROP_PREFIX, self.sweep_limit))
        cells.append(GridCell(Condition(knockout="all"), accuracy + (long_text if self.knockout_long_text else ()), KNOCKOUT))
        for sink_keys, role in ((0, WINDOW_ONLY), (self.sink_keys, WINDOW_SINKS)):
            cells.append(GridCell(Condition(window=self.window, sink_keys=sink_keys), long_text, role))
        return tuple(cells)


def suite_tasks(suite: str) -> tuple[TaskSpec, ...]:
    """The tasks a suite runs, in the catalogue's order (sinkbench.grid.catalog declares them)."""
    return tuple(
        TaskSpec(use.task, declaration.kind, declaration.primary_metric, declaration.needs_data, use.sweep,
                 (declaration.retrieval_family, use.length) if use.length is not None else None)
        for declaration in TASKS for use in declaration.uses if use.suite == suite)


SUITES: dict[str, Suite] = {
    # Minutes on a 2-core CPU for SmolLM2-135M (README: measured times); bos=drop is computed once there.
    "quick": Suite("quick", "4.0", suite_tasks("quick"), prefix_lengths=(256, 1024, 4096), sweep_limit=120,
                   window=256, sink_keys=4, profile=ProfilePlan(), knockout_long_text=False,
                   about="minutes on a 2-core CPU with SmolLM2-135M.",
                   # SmolLM2-135M's suite 3.0 took 8 min 48 s with a 15 s load on a machine whose fp32 matrix products ran
                   # at 373-439 GFLOP/s (README); 4.0's longer sweep and random-token probe add about a minute there.
                   reference=ReferenceRun("SmolLM2-135M", seconds=573.0, matrix_gflops=400.0, linear_weights=106_168_320)),
    # Every real task (large ones sliced), retrieval doubling from 512 tokens to the model's context,
    # the stress sweep doubling to the context on every task (README: measured times).
    "standard": Suite("standard", "4.0", suite_tasks("standard"), prefix_lengths=(256, 512, 1024, 2048, 4096, 8192, 16384),
                      sweep_limit=150, window=256, sink_keys=4, profile=ProfilePlan(sweep_texts=(100, 32, 8, 8)),
                      about="every real task (large ones sliced), retrieval at lengths doubling from 512 tokens "
                            "(capped by the model's context in sinkbench run), long-text perplexity."),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise SinkbenchError(f"unknown suite '{name}'; choose one of {', '.join(SUITES)}")
    return SUITES[name]


def task_spec(suite: Suite, name: str, metrics=()) -> TaskSpec:
    """The suite's description of a task. A declared task outside every suite (a family's base YAML)
    is described by its declaration; any other is judged by its name and metrics: acc makes it an
    accuracy task (retrieval if named like ours), word_perplexity a long-text task."""
    for candidate in (suite, *SUITES.values()):
        if name in {t.name for t in candidate.tasks}:
            return candidate.task(name)
    declaration = declaration_of(name)
    if declaration is not None:
        retrieval = _retrieval_of(name) if declaration.kind == RETRIEVAL else None
        return TaskSpec(name, declaration.kind, declaration.primary_metric, declaration.needs_data, retrieval=retrieval)
    synthetic = name.startswith(("sinkbench_passkey", "sinkbench_kv_retrieval"))
    # sinkbench's own real tasks read its data directory; a task of the user's brings its own data.
    needs_data = name.startswith("sinkbench_") and not synthetic
    names = {key.split(",")[0] for key in metrics}
    if "acc" in names and synthetic:
        return TaskSpec(name, RETRIEVAL, "acc", False, retrieval=_retrieval_of(name))
    if "acc" in names:
        return TaskSpec(name, ACCURACY, "acc", needs_data)
    if "word_perplexity" in names:
        return TaskSpec(name, PERPLEXITY, "word_perplexity", needs_data)
    return TaskSpec(name, OTHER, sorted(names)[0] if names else "none", needs_data)


def _retrieval_of(name: str) -> tuple[str, int] | None:
    """(family, length) of a synthetic retrieval task named like sinkbench_passkey_4096, else None."""
    family = "kv" if name.startswith("sinkbench_kv_retrieval") else "passkey"
    tail = name.rsplit("_", 1)[-1]
    return (family, int(tail)) if tail.isdigit() else None


def custom_grid(suite: Suite, tasks: list[str] | None, bos: list[str] | None, prefix: list[int] | None,
                window: int | None, sinks: list[int] | None, knockout: str | None) -> tuple[GridCell, ...] | None:
    """The user's own grid, or None to run the suite's.

    Only --tasks: the suite's grid restricted to those tasks. Any condition flag: the cross
    product bos x prefix (x sinks with --window), with --knockout, over the tasks (or the suite's).
    """
    if sinks is not None and window is None:
        raise SinkbenchError("--sinks needs --window (StreamingLLM keeps the first k keys plus the last W)")
    if bos is None and prefix is None and window is None and knockout is None:
        if tasks is None:
            return None
        cells = tuple(GridCell(c.condition, tuple(t for t in c.tasks if t in tasks), c.role, c.limit) for c in suite.grid())
        chosen = tuple(c for c in cells if c.tasks)
        extra = tuple(t for t in tasks if t not in {name for c in chosen for name in c.tasks})
        if extra:  # tasks outside the suite run under the baseline and <bos> dropped
            chosen = tuple(GridCell(c.condition, c.tasks + extra, c.role, c.limit) if c.role in (BASELINE, BOS_DROP) else c
                           for c in chosen) or (GridCell(Condition(), extra, BASELINE), GridCell(Condition(bos="drop"), extra, BOS_DROP))
        return chosen
    every = tuple(tasks) if tasks else tuple(t.name for t in suite.tasks)
    attention_study = window is not None or knockout is not None
    bos = bos or (["keep"] if attention_study else ["keep", "drop"])
    prefix = prefix if prefix is not None else ([0] if attention_study else [0, max(suite.prefix_lengths)])
    sink_values = sinks if window is not None and sinks is not None else [0]
    cells = []
    for b in bos:
        for p in prefix:
            for k in sink_values:
                condition = Condition.from_args(bos=b, prefix=p, window=window, sinks=k if window is not None else None,
                                                knockout=knockout)
                cells.append(GridCell(condition, every, role_of(condition)))
    return tuple(cells)
