"""What a run can compute, and how long it will take: data availability, lengths beyond a model's context, an ETA.

Nothing is ever truncated to fit: a stress prefix or a retrieval length the model cannot take
whole is skipped, and the record says so ("beyond the model's context").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch

from sinkbench.grid.conditions import BOS_DROP_PREFIX
from sinkbench.grid.suite import GridCell, Suite, task_spec
from sinkbench.record.types import Condition as RecordCondition  # a saved condition: the record's part and more


def plan_cells(cells: tuple[GridCell, ...], suite: Suite, has_data: bool) -> tuple[list[GridCell], list[str]]:
    """Without data: drop the tasks that read it and the conditions whose stress prefix does."""
    if has_data:
        return list(cells), []
    runnable, skipped = [], []
    for cell in cells:
        tasks = tuple(t for t in cell.tasks if not task_spec(suite, t).needs_data)
        dropped = [t for t in cell.tasks if t not in tasks]
        if cell.condition.prefix_length or not tasks:
            skipped.append(f"{cell.condition.name} (needs the data directory)")
            continue
        if dropped:
            skipped.append(f"{', '.join(dropped)} under {cell.condition.name} (needs the data directory)")
        runnable.append(GridCell(cell.condition, tasks, cell.role, cell.limit))
    return runnable, skipped


def beyond_context(cell: GridCell, suite: Suite, max_context: int | None, head: int, baseline: RecordCondition | None) -> dict[str, str]:
    """The cell's tasks the model cannot take whole, each with the reason.

    A retrieval document of L tokens needs L + head tokens. Under a stress prefix of P tokens a
    task needs P + its longest sequence without one (read off the baseline, which runs first);
    the last token of a sequence is never fed to the model, hence the + 1.
    """
    if max_context is None:
        return {}
    skipped = {}
    prefix = cell.condition.prefix_length
    for task in cell.tasks:
        spec = task_spec(suite, task)
        if spec.retrieval is not None and spec.retrieval[1] + head + prefix > max_context:
            skipped[task] = (f"beyond the model's context: a {spec.retrieval[1]}-token document"
                             f"{f' after a {prefix}-token prefix' if prefix else ''} in {max_context} tokens")
        elif prefix and baseline is not None and task in baseline.sinks:
            longest = baseline.sinks[task].max_tokens
            if prefix + longest > max_context + 1:
                skipped[task] = (f"beyond the model's context: a {prefix}-token prefix and the task's longest "
                                 f"sequence ({longest} tokens) exceed {max_context} tokens")
    return skipped


def fitting_prefix(cell: GridCell, suite: Suite, max_context: int | None, head: int, baseline: RecordCondition | None) -> GridCell:
    """The suite's `<bos>`-dropped stress cell at the longest of its prefix lengths the model can take
    (a model with an 8k context gets its <bos> dependence under stress at 4096 rather than none at
    16384). Any other cell, or one that fits, as it is."""
    if cell.role != BOS_DROP_PREFIX or len(beyond_context(cell, suite, max_context, head, baseline)) < len(cell.tasks):
        return cell
    for length in sorted((p for p in suite.prefix_lengths if p < cell.condition.prefix_length), reverse=True):
        candidate = GridCell(replace(cell.condition, prefix_length=length), cell.tasks, cell.role, cell.limit)
        if len(beyond_context(candidate, suite, max_context, head, baseline)) < len(cell.tasks):
            return candidate
    return cell


# Prefix attention runs at about 0.78 of the matrix products' FLOP rate on this project's CPU
# (bench/prefix_kernel.py: 138 against 176 GFLOP/s): a prefix token weighs 1 / 0.78 of its FLOPs.
ATTENTION_SLOWDOWN = 1 / 0.78


@dataclass
class Estimator:
    """Seconds left in a grid, from what it will compute: each cell's documents times the tokens per
    document the first condition measured, a stress prefix weighing in by its attention cost, at the
    pace of the conditions computed so far. Says nothing until a condition has finished."""

    attention_ratio: float  # attention FLOPs per (query, key) over a token's matrix-product FLOPs
    tokens: dict[str, float] = field(default_factory=dict)  # task -> sequence tokens per document, no prefix
    lengths: dict[str, float] = field(default_factory=dict)  # task -> tokens per request (its own attention span)
    documents: dict[str, int] = field(default_factory=dict)  # task -> its documents
    seconds: float = 0.0
    work: float = 0.0

    def learn(self, cell: GridCell, document: RecordCondition) -> None:
        for task, outcome in document.outcomes.items():
            sinks = document.sinks.get(task)
            if sinks is None:
                continue
            self.documents.setdefault(task, outcome.n)
            per_request = max(1.0, sinks.mean_tokens - cell.condition.prefix_length)
            self.tokens.setdefault(task, per_request * sinks.n_requests / outcome.n)
            self.lengths.setdefault(task, per_request)
        if document.identical_to is None and document.wall_time_s > 0:
            work = self.cell_work(cell, {task: o.n for task, o in document.outcomes.items()})
            if work:
                self.seconds += document.wall_time_s
                self.work += work

    def cell_work(self, cell: GridCell, counts: dict[str, int] | None = None) -> float | None:
        """Token-equivalents of a cell; None while a task of it has never run."""
        total = 0.0
        for task in cell.tasks if counts is None else counts:
            if task not in self.tokens:
                return None
            n = counts[task] if counts is not None else min(cell.limit or self.documents[task], self.documents[task])
            # A token attends to the prefix and, on average, half its own sequence: long retrieval
            # documents cost more per token than short questions.
            keys = cell.condition.prefix_length + self.lengths[task] / 2
            total += n * self.tokens[task] * (1 + ATTENTION_SLOWDOWN * self.attention_ratio * keys)
        return total

    def remaining(self, cells: list[GridCell]) -> str:
        if self.work <= 0:
            return "time left: known once a condition has finished"
        works = [self.cell_work(cell) for cell in cells]
        if None in works:
            return "time left: known once every task has run once"
        seconds = sum(works) * self.seconds / self.work
        return f"about {seconds / 60:.0f} min left in the grid" if seconds >= 90 else f"about {seconds:.0f} s left in the grid"


def matrix_rate(model, tokens: int = 2048, repeats: int = 3) -> float:
    """fp32 matrix-product FLOP/s of this machine at the model's MLP shape (tokens x hidden @ hidden x
    intermediate), best of `repeats`: what a CPU run's pace follows (a second or so to measure)."""
    config = model.config
    hidden = config.hidden_size
    inner = getattr(config, "intermediate_size", None) or 4 * hidden
    a, b = torch.randn(tokens, hidden), torch.randn(hidden, inner)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * tokens * hidden * inner / best


def linear_weights(model) -> int:
    """The model's linear weights, the LM head excluded: a token's matrix products cost twice this."""
    head = model.get_output_embeddings()
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head)


def first_estimate(suite: Suite, model, rate: float, custom: bool) -> str:
    """What a run says before it starts: the machine's matrix rate and, for a suite's own grid with a
    reference run, the time that run scales to here (a rough guide: the model's context, its
    attention and its tokenizer move it; the estimate from measured conditions follows)."""
    said = f"this machine: fp32 matrix products at {rate / 1e9:.0f} GFLOP/s"
    reference = suite.reference
    if reference is None or custom:
        return said
    seconds = reference.seconds * (reference.matrix_gflops * 1e9 / rate) * (linear_weights(model) / reference.linear_weights)
    minutes = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    return (f"{said}; the {suite.name} suite should take about {minutes} here, model load excluded (scaled from "
            f"{reference.model}: {reference.seconds / 60:.1f} min at {reference.matrix_gflops:.0f} GFLOP/s)")


def attention_ratio(model) -> float:
    """Attention FLOPs per (query, key) over a token's own matrix-product FLOPs, from the model itself:
    4 x heads x head_dim x layers over 2 x its linear weights (the LM head excluded)."""
    config = model.config
    linear = linear_weights(model)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 4 * config.num_attention_heads * head_dim * config.num_hidden_layers / max(1, 2 * linear)
