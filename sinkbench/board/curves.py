"""The numbers the board's charts draw, read out of a record: each point a value with its 95% interval.

Where the record carries an interval (scores, the summary) it is used as it is; where it carries
the per-text or per-document values behind a mean (the length sweep, massive activations,
first-token attention per condition) the interval is made here by sinkbench.record.stats, under
its minimum-sample rule (no bar from fewer than stats.MIN_UNITS texts or documents); where it
carries only a mean (alpha by layer, over-mixing by layer) the point has no interval and the
chart says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sinkbench.record import stats
from sinkbench.record.types import Estimate, Record
from sinkbench.record.views import BASELINE, RETRIEVAL, Missing, conditions_of, outcome, prefix_sweep, retrieval_curve, shared_tasks


@dataclass(frozen=True)
class Point:
    x: float
    value: float
    low: float | None = None  # the 95% interval, None where the record holds none
    high: float | None = None


def from_estimate(x: float, entry: Estimate | dict | None) -> Point | None:
    """The point at x of an estimate: a record's (types.Estimate) or one made here (a stats.estimate dict)."""
    if isinstance(entry, dict):
        entry = Estimate.from_json(entry)
    if entry is None or entry.value is None:
        return None
    return Point(x, entry.value, entry.ci_low, entry.ci_high)


# ---- the stress curves --------------------------------------------------------------------


def sweep_tasks(record: Record) -> dict[str, tuple[str, int]]:
    """The accuracy tasks every condition of the prefix sweep ran: task -> (metric, documents all scored)."""
    return shared_tasks(record, prefix_sweep(record))


def prefix_curve(record: Record) -> list[Point]:
    """Suite score against stress-prefix length on the sweep's tasks and documents (the baseline read at
    the documents the sweep scored, as length robustness reads it, so every point averages the same
    documents); each point with its interval (Wilson per task, combined as the suite score is)."""
    tasks = sweep_tasks(record)
    points = []
    for condition in prefix_sweep(record):
        try:
            parts = [stats.proportion(outcome(condition, task, metric, n)) for task, (metric, n) in tasks.items()]
        except Missing:
            continue
        point = from_estimate(condition.spec.prefix_length, stats.mean_over_tasks(parts)) if parts else None
        if point is not None:
            points.append(point)
    return points


def attention_curve(record: Record, part: str = "alpha") -> list[Point]:
    """Mean first-token attention against stress-prefix length, over the sweep tasks' shared documents.

    part "alpha": attention to the sequence's first token (the sink, whatever it is); "text_start":
    attention to the text's own first token (absent where nothing stands in front of the text)."""
    tasks = sweep_tasks(record)
    points = []
    for condition in prefix_sweep(record):
        try:
            parts = [outcome(condition, task, part, n) for task, (_, n) in tasks.items()]
        except Missing:
            continue
        point = from_estimate(condition.spec.prefix_length, stats.mean_of_task_means(parts)) if parts else None
        if point is not None:
            points.append(point)
    return points


def sinks_by_layer(record: Record, part: str = "alpha_by_layer") -> list[tuple[int, list[Point]]]:
    """(prefix length, per-layer curve) for each condition of the prefix sweep: the condition's sink metrics
    (sinks[task][part], alpha_by_layer or text_start_by_layer) averaged over the sweep tasks. Means only."""
    tasks = sweep_tasks(record)
    curves = []
    for condition in prefix_sweep(record):
        layers = [getattr(condition.sinks[t], part) for t in tasks if t in condition.sinks and getattr(condition.sinks[t], part)]
        if layers:
            curves.append((condition.spec.prefix_length, layer_curve(_mean_by_layer(layers))))
    return curves


def retrieval_families(record: Record) -> list[str]:
    return sorted({t.retrieval.family for t in record.tasks.values() if t.kind == RETRIEVAL})


def retrieval_points(record: Record, family: str) -> list[Point]:
    """Retrieval accuracy under the baseline against the task's length, with its Wilson interval."""
    baseline = conditions_of(record, BASELINE)
    if not baseline:
        return []
    points = []
    for length, task in retrieval_curve(record, family):
        metric = record.tasks[task].primary_metric
        point = from_estimate(length, baseline[0].scores.get(task, {}).get(metric))
        if point is not None:
            points.append(point)
    return points


# ---- the sink profile ---------------------------------------------------------------------


def depth_curve(record: Record, layers: list[float] | None = None) -> list[Point]:
    """First-token attention by relative depth: layer index / number of layers (means only: the record keeps no
    per-text value per layer)."""
    by_layer = record.profile.alpha_by_layer if layers is None else layers
    return [Point(index / len(by_layer), value) for index, value in enumerate(by_layer) if value is not None]


def layer_curve(values: list[float | None], keep: set[int] | None = None) -> list[Point]:
    """(layer, value) for the layers with a value (α is null where no query could see the first token,
    or the layer has no softmax attention), and only those in `keep` when given."""
    return [Point(index, value) for index, value in enumerate(values)
            if value is not None and (keep is None or index in keep)]


def layer_types(record: Record) -> dict[str, set[int]]:
    """Layer indices by attention type (full, sliding, chunked, none) from the profile's layer table;
    {} for a record without one (schema 2.0)."""
    types: dict[str, set[int]] = {}
    for layer in record.profile.layers or []:  # ABSENT in a record of schema 2.0
        types.setdefault(layer.type, set()).add(layer.index)
    return types


def mixed_layers(record: Record) -> bool:
    """Whether the model has attention layers of more than one kind (a global-only line is worth drawing)."""
    return len(set(layer_types(record)) - {"none"}) > 1


def _mean_by_layer(rows: list[list[float | None]]) -> list[float | None]:
    """Per layer, the mean over rows of the defined values; None where no row has one."""
    table = np.asarray([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
    defined = ~np.isnan(table)
    counts = defined.sum(axis=0)
    sums = np.where(defined, table, 0.0).sum(axis=0)
    return [float(s / c) if c else None for s, c in zip(sums, counts)]


def first_token_by_type(record: Record, kind: str) -> list[Point]:
    """Attention to the first token against stress-prefix length over the layers of one type only:
    the mean over the sweep tasks of each task's mean over those layers (the conditions' own sink
    metrics; means only)."""
    chosen = layer_types(record).get(kind, set())
    tasks = sweep_tasks(record)
    points = []
    for condition in prefix_sweep(record):
        per_task = []
        for task in tasks:
            by_layer = condition.sinks[task].alpha_by_layer if task in condition.sinks else []
            values = [v for i, v in enumerate(by_layer) if i in chosen and v is not None]
            if values:
                per_task.append(sum(values) / len(values))
        if per_task:
            points.append(Point(condition.spec.prefix_length, sum(per_task) / len(per_task)))
    return points


def sweep_by_type(record: Record, kind: str) -> list[Point]:
    """Mean α over the layers of one type at each profiled length (means only)."""
    return [Point(p.T, p.alpha_mean_by_type[kind]) for p in record.profile.length_sweep.points
            if (p.alpha_mean_by_type or {}).get(kind) is not None]


def length_sweep(record: Record) -> list[Point]:
    """Mean α at each profiled context length T, with the t interval over the texts of that length (cut to
    [0, 1]: α is a share of attention)."""
    points = []
    for point in record.profile.length_sweep.points:
        entry = stats.mean(point.per_text.alpha_mean, "texts", within=(0.0, 1.0))
        if entry["value"] is not None:
            points.append(from_estimate(point.T, entry))
    return points


def massive_by_layer(record: Record) -> list[Point]:
    """Top |h| / median |h| per layer: the mean over texts with its t interval (profile.massive_activations)."""
    massive = record.profile.massive_activations
    table = np.asarray(massive.ratio_by_text, dtype=float)  # (texts, layers)
    if table.size == 0:
        return layer_curve(massive.ratio_by_layer)
    return [from_estimate(layer, stats.mean(table[:, layer], "texts")) for layer in range(table.shape[1])]


def overmixing_by_layer(record: Record) -> dict[str, list[Point]]:
    """Relative change of the later tokens per layer after one token is swapped, with and without <bos>."""
    curves = {}
    pair = record.profile.overmixing
    for variant, entry in (("with_bos", pair.with_bos), ("without_bos", pair.without_bos)):
        if entry is not None and entry.relative_change_by_layer:
            curves[variant] = layer_curve(entry.relative_change_by_layer)
    return curves

