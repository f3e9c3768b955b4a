"""The suites: which tasks, which condition grid and which sink profile, versioned together.

A record names its suite and version; the board compares only records of one suite version.
Change anything here that changes numbers and bump the suite's version.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinkbench.grid.conditions import Condition
from sinkbench.errors import SinkbenchError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str  # "accuracy" (counts in the suite score) or "perplexity" (the long-text task)
    primary_metric: str  # acc, or word_perplexity for the long-text task
    needs_data: bool  # reads the data directory (real tasks); synthetic tasks do not


@dataclass(frozen=True)
class GridCell:
    """One condition of the grid and the tasks it runs."""

    condition: Condition
    tasks: tuple[str, ...]


@dataclass(frozen=True)
class ProfilePlan:
    """The sink profile run beside the grid (Gu et al.'s protocol plus a length sweep)."""

    T: int = 64  # Gu et al.: T = 64 tokens ...
    n: int = 100  # ... over 100 texts
    sweep_lengths: tuple[int, ...] = (64, 256, 1024, 4096)  # capped by the model's context
    # Texts per sweep length: fewer at long T, where one forward pass is seconds on a CPU.
    sweep_texts: tuple[int, ...] = (32, 16, 4, 2)
    overmixing_sequences: int = 8  # two extra forward passes each, with and without <bos>


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    tasks: tuple[TaskSpec, ...]
    stress_prefix: int  # tokens of distractor text: the context-length stress
    window: int  # StreamingLLM window (keys), run with 0 and `sinks` sink tokens on the long-text task
    sinks: int
    profile: ProfilePlan

    def task(self, name: str) -> TaskSpec:
        return {t.name: t for t in self.tasks}[name]

    @property
    def long_text_task(self) -> str:
        return next(t.name for t in self.tasks if t.kind == "perplexity")

    def grid(self) -> tuple[GridCell, ...]:
        """bos keep/drop x prefix 0/P on every task; knockout=all; window W with 0 and k sinks on the long text."""
        every = tuple(t.name for t in self.tasks)
        cells = [
            GridCell(Condition(bos=bos, prefix=prefix), every)
            for bos in ("keep", "drop") for prefix in (0, self.stress_prefix)
        ]
        cells.append(GridCell(Condition(knockout="all"), every))
        for sinks in (0, self.sinks):
            cells.append(GridCell(Condition(window=self.window, sinks=sinks), (self.long_text_task,)))
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
    # About 8 minutes on a 2-core CPU for SmolLM2-135M, load included (bos=drop is computed once there).
    "quick": Suite("quick", "2.0", QUICK_TASKS,
                   stress_prefix=1024, window=256, sinks=4, profile=ProfilePlan()),
    # Every real task in full, retrieval from 1k to 32k tokens, four long passages.
    "standard": Suite("standard", "2.0", STANDARD_TASKS,
                      stress_prefix=1024, window=256, sinks=4,
                      profile=ProfilePlan(sweep_texts=(100, 32, 8, 4))),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise SinkbenchError(f"unknown suite '{name}'; choose one of {', '.join(SUITES)}")
    return SUITES[name]


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
        cells = tuple(GridCell(c.condition, tuple(t for t in c.tasks if t in tasks)) for c in suite.grid())
        chosen = tuple(c for c in cells if c.tasks)
        extra = [t for t in tasks if t not in {name for c in chosen for name in c.tasks}]
        if extra:  # tasks outside the suite run under the suite's first conditions
            chosen = tuple(GridCell(c.condition, c.tasks + tuple(extra)) for c in chosen) or tuple(
                GridCell(c.condition, tuple(extra)) for c in suite.grid()[:4])
        return chosen
    every = tuple(tasks) if tasks else tuple(t.name for t in suite.tasks)
    attention_study = window is not None or knockout is not None
    bos = bos or (["keep"] if attention_study else ["keep", "drop"])
    prefix = prefix if prefix is not None else ([0] if attention_study else [0, suite.stress_prefix])
    sink_values = sinks if window is not None and sinks is not None else ([0] if window is not None else [0])
    return tuple(
        GridCell(Condition.from_args(bos=b, prefix=p, window=window, sinks=k if window is not None else None,
                                     knockout=knockout), every)
        for b in bos for p in prefix for k in sink_values
    )
