"""The suites: which tasks, which condition grid and which sink profile, versioned together.

A record names its suite and version; the board compares only records of one suite version.
Change anything here that changes numbers and bump the suite's version. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import (BASELINE, BOS_DROP, BOS_DROP_PREFIX, KNOCKOUT, PREFIX, WINDOW_ONLY, WINDOW_SINKS,
                                       Condition, role_of)

# Sink-rate thresholds: 0.3 (Gu et al.) saturates on modern models; 0.8 is Barbero et al.'s.
DEFAULT_EPS = (0.3, 0.5, 0.8)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str  # "accuracy" (counts in the suite score) or "perplexity" (the long-text task)
    primary_metric: str  # acc, or word_perplexity for the long-text task
    needs_data: bool  # reads the data directory (real tasks); synthetic tasks do not


@dataclass(frozen=True)
class GridCell:
    """One condition of the grid, the role it plays there, and the tasks it runs."""

    condition: Condition
    tasks: tuple[str, ...]
    role: str


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
    sweep_texts: tuple[int, ...] = (32, 16, 4, 2)
    seed: int = 0

    def __post_init__(self):
        if self.T < 2 or self.n < 1:
            raise SinkbenchError(f"a profile needs T >= 2 and n >= 1 (got T={self.T}, n={self.n})")
        if len(self.sweep_lengths) != len(self.sweep_texts):
            raise SinkbenchError("sweep_lengths and sweep_texts must pair up")


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    tasks: tuple[TaskSpec, ...]
    stress_prefix: int  # tokens of distractor text: the context-length stress
    window: int  # StreamingLLM window (keys), run with 0 and `sink_keys` sink keys on the long-text task
    sink_keys: int
    profile: ProfilePlan

    def task(self, name: str) -> TaskSpec:
        return {t.name: t for t in self.tasks}[name]

    @property
    def long_text_task(self) -> str:
        return next(t.name for t in self.tasks if t.kind == "perplexity")

    def grid(self) -> tuple[GridCell, ...]:
        """bos keep/drop x prefix 0/P on every task; knockout=all; window W with 0 and k sinks on the long text."""
        every = tuple(t.name for t in self.tasks)
        roles = {("keep", False): BASELINE, ("keep", True): PREFIX, ("drop", False): BOS_DROP, ("drop", True): BOS_DROP_PREFIX}
        cells = [
            GridCell(Condition(bos=bos, prefix_length=prefix), every, roles[bos, bool(prefix)])
            for bos in ("keep", "drop") for prefix in (0, self.stress_prefix)
        ]
        cells.append(GridCell(Condition(knockout="all"), every, KNOCKOUT))
        for sink_keys, role in ((0, WINDOW_ONLY), (self.sink_keys, WINDOW_SINKS)):
            cells.append(GridCell(Condition(window=self.window, sink_keys=sink_keys), (self.long_text_task,), role))
        return tuple(cells)


def _tasks(real: list[str], synthetic: list[str], long_text: str) -> tuple[TaskSpec, ...]:
    return (
        *(TaskSpec(name, "accuracy", "acc", True) for name in real),
        *(TaskSpec(name, "accuracy", "acc", False) for name in synthetic),
        TaskSpec(long_text, "perplexity", "word_perplexity", True),
    )


QUICK_TASKS = _tasks(
    ["sinkbench_lambada_quick", "sinkbench_piqa_quick", "sinkbench_arc_easy_quick", "sinkbench_copa"],
    ["sinkbench_passkey_quick"], "sinkbench_book_ppl_quick",
)
STANDARD_TASKS = _tasks(
    ["sinkbench_lambada", "sinkbench_piqa", "sinkbench_arc_easy", "sinkbench_arc_challenge", "sinkbench_copa",
     "sinkbench_winogrande", "sinkbench_openbookqa", "sinkbench_boolq"],
    ["sinkbench_passkey", "sinkbench_kv_retrieval"], "sinkbench_book_ppl",
)


SUITES: dict[str, Suite] = {
    # About 4 minutes on this project's 2-core CPU for SmolLM2-135M, load included (bos=drop is computed once there).
    "quick": Suite("quick", "2.0", QUICK_TASKS,
                   stress_prefix=1024, window=256, sink_keys=4, profile=ProfilePlan()),
    # Every real task in full, retrieval from 1k to 32k tokens, four long passages.
    "standard": Suite("standard", "2.0", STANDARD_TASKS,
                      stress_prefix=1024, window=256, sink_keys=4,
                      profile=ProfilePlan(sweep_texts=(100, 32, 8, 4))),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise SinkbenchError(f"unknown suite '{name}'; choose one of {', '.join(SUITES)}")
    return SUITES[name]


def task_spec(suite: Suite, name: str, metrics=()) -> TaskSpec:
    """The suite's description of a task. A task outside every suite is judged by its metrics:
    acc makes it an accuracy task, word_perplexity a long-text task."""
    for candidate in (suite, *SUITES.values()):
        if name in {t.name for t in candidate.tasks}:
            return candidate.task(name)
    needs_data = not name.startswith(("sinkbench_passkey", "sinkbench_kv_retrieval"))
    names = {key.split(",")[0] for key in metrics}
    if "acc" in names:
        return TaskSpec(name, "accuracy", "acc", needs_data)
    if "word_perplexity" in names:
        return TaskSpec(name, "perplexity", "word_perplexity", needs_data)
    return TaskSpec(name, "other", sorted(names)[0] if names else "none", needs_data)


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
        cells = tuple(GridCell(c.condition, tuple(t for t in c.tasks if t in tasks), c.role) for c in suite.grid())
        chosen = tuple(c for c in cells if c.tasks)
        extra = [t for t in tasks if t not in {name for c in chosen for name in c.tasks}]
        if extra:  # tasks outside the suite run under the suite's first conditions
            chosen = tuple(GridCell(c.condition, c.tasks + tuple(extra), c.role) for c in chosen) or tuple(
                GridCell(c.condition, tuple(extra), c.role) for c in suite.grid()[:4])
        return chosen
    every = tuple(tasks) if tasks else tuple(t.name for t in suite.tasks)
    attention_study = window is not None or knockout is not None
    bos = bos or (["keep"] if attention_study else ["keep", "drop"])
    prefix = prefix if prefix is not None else ([0] if attention_study else [0, suite.stress_prefix])
    sink_values = sinks if window is not None and sinks is not None else [0]
    cells = []
    for b in bos:
        for p in prefix:
            for k in sink_values:
                condition = Condition.from_args(bos=b, prefix=p, window=window, sinks=k if window is not None else None,
                                                knockout=knockout)
                cells.append(GridCell(condition, every, role_of(condition)))
    return tuple(cells)
