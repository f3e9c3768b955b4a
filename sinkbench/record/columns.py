"""The summary columns of a record: one table of name, description, unit, direction and formula.

`sinkbench run` fills a record's `summary` from this table, `sinkbench validate` recomputes it
from the record's own numbers, and the board reads names, descriptions and directions from it.
Each column is a pure function of a record (a dict as loaded from JSON): no torch, no model.

A value is `{"value": float | None, "note": str | None}`: the note says why a value is missing,
or flags how to read it (e.g. `<bos>` dependence is 0 by construction for a tokenizer that adds
no `<bos>`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sinkbench.grid.conditions import BASELINE, BOS_DROP, KNOCKOUT, PREFIX, WINDOW_ONLY, WINDOW_SINKS

HIGHER, LOWER, NEUTRAL = "higher", "lower", "neutral"  # which way is better; neutral: descriptive


@dataclass(frozen=True)
class Column:
    name: str
    title: str  # short header for tables
    description: str  # one line
    unit: str
    direction: str  # HIGHER, LOWER or NEUTRAL
    formula: str  # how it is computed, in words a reader can check against the record
    compute: Callable[[dict], tuple[float | None, str | None]]


class Missing(Exception):
    """A column cannot be computed from this record; the message is the reason."""


# ---- finding conditions in a record -----------------------------------------------------


def conditions_of(record: dict, role: str) -> list[dict]:
    """The record's conditions that play `role` (sinkbench.grid.conditions), in the record's order."""
    return [c for c in record["conditions"] if c["role"] == role]


def find_condition(record: dict, role: str) -> dict:
    """The condition playing `role`; of several (the prefix sweep), the one with the longest stress prefix."""
    found = conditions_of(record, role)
    if not found:
        raise Missing(f"no {role.replace('_', ' ')} condition in the record")
    return max(found, key=lambda c: c["spec"]["prefix_length"])


def accuracy_tasks(record: dict) -> dict[str, str]:
    """task -> primary metric, for the record's accuracy tasks."""
    return {name: task["primary_metric"] for name, task in record["tasks"].items() if task["kind"] == "accuracy"}


def score(condition: dict, task: str, metric: str) -> float:
    entry = (condition["scores"].get(task) or {}).get(metric)
    if entry is None or entry["value"] is None:
        raise Missing(f"no {metric} for {task} under {condition['name']}")
    return entry["value"]


def suite_score(condition: dict, tasks: dict[str, str]) -> float:
    """Mean primary metric over the accuracy tasks run under `condition`."""
    values = [score(condition, task, metric) for task, metric in tasks.items() if task in condition["scores"]]
    if not values:
        raise Missing(f"no accuracy task was run under {condition['name']}")
    return sum(values) / len(values)


def _relative_drop(record: dict, role: str) -> float:
    """(S_keep - S_role) / S_keep over the accuracy tasks both conditions ran."""
    baseline, other = find_condition(record, BASELINE), find_condition(record, role)
    shared = {t: m for t, m in accuracy_tasks(record).items() if t in baseline["scores"] and t in other["scores"]}
    if not shared:
        raise Missing(f"baseline and {other['name']} share no accuracy task")
    base = suite_score(baseline, shared)
    if base == 0:
        raise Missing("the baseline suite score is 0: a relative drop is undefined")
    return (base - suite_score(other, shared)) / base


# ---- the columns -------------------------------------------------------------------------


def _sink_rate(eps: str):
    def compute(record):
        return record["profile"]["sink_rate"][eps], None

    return compute


def _alpha_mean(record):
    return record["profile"]["alpha_mean"], None


def _suite_score(record):
    return suite_score(find_condition(record, BASELINE), accuracy_tasks(record)), None


def no_bos(record: dict) -> bool:
    """Whether <bos> dependence is 0 by construction: the tokenizer adds no <bos>, so keep and drop are one condition."""
    return not record["model"]["adds_bos"]


def _bos_dependence(record):
    if no_bos(record):
        return 0.0, "the tokenizer adds no <bos>: keep and drop see the same tokens (see knockout dependence)"
    return _relative_drop(record, BOS_DROP), None


def _knockout_dependence(record):
    return _relative_drop(record, KNOCKOUT), None


def _length_robustness(record):
    baseline, stressed = find_condition(record, BASELINE), find_condition(record, PREFIX)
    tasks = {t: m for t, m in accuracy_tasks(record).items() if t in baseline["scores"] and t in stressed["scores"]}
    if not tasks:
        raise Missing(f"baseline and {stressed['name']} share no accuracy task")
    base = suite_score(baseline, tasks)
    if base == 0:
        raise Missing("the baseline suite score is 0: a ratio is undefined")
    return suite_score(stressed, tasks) / base, f"prefix={stressed['spec']['prefix_length']} tokens"


def _streaming_gap(record):
    long_text = [name for name, task in record["tasks"].items() if task["kind"] == "perplexity"]
    if not long_text:
        raise Missing("no perplexity task in the record")
    task = long_text[0]
    metric = record["tasks"][task]["primary_metric"]
    only, kept = find_condition(record, WINDOW_ONLY), find_condition(record, WINDOW_SINKS)
    return score(only, task, metric) / score(kept, task, metric), f"{task} {metric}, window={only['spec']['window']}"


def _sink_growth(record):
    points = record["profile"]["length_sweep"]["points"]
    if len(points) < 2:
        raise Missing("the length sweep has fewer than two lengths")
    first, last = points[0], points[-1]
    if first["alpha_mean"] == 0:
        raise Missing(f"alpha at T={first['T']} is 0")
    return last["alpha_mean"] / first["alpha_mean"], f"T={last['T']} over T={first['T']}"


def _massive(record):
    ratios = record["profile"]["massive_activations"]["ratio_by_layer"]
    values = [r for r in ratios if r is not None]
    if not values:
        raise Missing("no massive-activation ratio was measured")
    layer = ratios.index(max(values))
    return max(values), f"layer {layer}"


def _overmixing(variant: str):
    def compute(record):
        entry = record["profile"]["overmixing"][variant]
        if entry is None or not entry["relative_change_by_layer"]:
            raise Missing(f"over-mixing {variant.replace('_', ' ')} was not measured (no <bos> token?)")
        return entry["relative_change_by_layer"][-1], None

    return compute


def _computed(record):
    return [c for c in record["conditions"] if c["identical_to"] is None]


def _throughput(record):
    conditions = _computed(record)
    seconds = sum(c["wall_time_s"] for c in conditions)
    if seconds <= 0:
        raise Missing("no condition was timed")
    return sum(c["tokens_processed"] for c in conditions) / seconds, None


def _wall_time(record):
    return sum(c["wall_time_s"] for c in _computed(record)) + record["profile"]["wall_time_s"], None


COLUMNS: tuple[Column, ...] = (
    Column("sink_rate_0_3", "sink rate ε=0.3", "share of (layer, head) pairs whose attention to the first token exceeds 0.3 (Gu et al.)",
           "fraction", NEUTRAL, "profile.sink_rate['0.3']", _sink_rate("0.3")),
    Column("sink_rate_0_8", "sink rate ε=0.8", "share of (layer, head) pairs whose attention to the first token exceeds 0.8 (Barbero et al.)",
           "fraction", NEUTRAL, "profile.sink_rate['0.8']", _sink_rate("0.8")),
    Column("alpha_mean", "mean α", "attention to the first token, averaged over layers, heads, queries and texts",
           "fraction", NEUTRAL, "profile.alpha_mean", _alpha_mean),
    Column("suite_score", "suite score", "mean primary metric of the accuracy tasks with <bos> kept and no stress",
           "fraction", HIGHER, "mean over accuracy tasks of scores[task][primary] under the baseline condition", _suite_score),
    Column("bos_dependence", "<bos> dependence", "relative drop of the suite score when <bos> is removed",
           "fraction", LOWER, "(S(keep) - S(drop)) / S(keep); 0 when the tokenizer adds no <bos>", _bos_dependence),
    Column("knockout_dependence", "sink-knockout dependence", "relative drop of the suite score when no query may attend to the first token, in every layer",
           "fraction", LOWER, "(S(keep) - S(knockout=all)) / S(keep)", _knockout_dependence),
    Column("length_robustness", "length robustness", "suite score with a long distractor prefix relative to none",
           "ratio", HIGHER, "S(keep, prefix=P) / S(keep), P the longest stress prefix", _length_robustness),
    Column("streaming_gap", "StreamingLLM gap", "long-text perplexity with window attention only, over the same window plus 4 sink tokens",
           "ratio", NEUTRAL, "ppl(window=W, sinks=0) / ppl(window=W, sinks=k)", _streaming_gap),
    Column("sink_growth", "sink growth with length", "mean α at the longest profiled length over mean α at 64 tokens",
           "ratio", NEUTRAL, "length_sweep[-1].alpha_mean / length_sweep[0].alpha_mean", _sink_growth),
    Column("massive_activation_ratio", "massive activation", "largest top |h| / median |h| over layers (Sun et al.)",
           "ratio", NEUTRAL, "max over layers of profile.massive_activations.ratio_by_layer", _massive),
    Column("overmixing_with_bos", "over-mixing with <bos>", "last-layer relative movement of later tokens after one token is swapped, <bos> in front",
           "relative change", NEUTRAL, "profile.overmixing.with_bos.relative_change_by_layer[-1]", _overmixing("with_bos")),
    Column("overmixing_without_bos", "over-mixing without <bos>", "the same with no <bos> in front (Barbero et al.: sinks slow mixing)",
           "relative change", NEUTRAL, "profile.overmixing.without_bos.relative_change_by_layer[-1]", _overmixing("without_bos")),
    Column("throughput", "throughput", "tokens of the evaluated sequences per second, over the conditions that were computed",
           "tokens/s", HIGHER, "sum tokens_processed / sum wall_time_s over computed conditions", _throughput),
    Column("wall_time_s", "wall time", "seconds spent on the computed conditions and the profile (model load excluded)",
           "s", LOWER, "sum wall_time_s over computed conditions + profile.wall_time_s", _wall_time),
)
COLUMNS_BY_NAME = {column.name: column for column in COLUMNS}


def compute_summary(record: dict) -> dict[str, dict]:
    """{column name: {"value", "note", "by_construction"}} for every column. `by_construction`: the
    value is not a measurement (<bos> dependence when the tokenizer adds no <bos>): the board and
    the model-card export read this flag, nothing re-derives it."""
    summary = {}
    for column in COLUMNS:
        try:
            value, note = column.compute(record)
        except Missing as missing:
            value, note = None, str(missing)
        except (KeyError, TypeError, IndexError) as err:  # a record without the part the column reads
            value, note = None, f"record has no {err}"
        summary[column.name] = {"value": None if value is None else float(value), "note": note,
                                "by_construction": column.name == "bos_dependence" and no_bos(record)}
    return summary
