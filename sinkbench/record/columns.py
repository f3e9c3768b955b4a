"""The summary columns of a record: one table holding every fact about each column.

`sinkbench run` fills a record's `summary` from this table, `sinkbench validate` recomputes it
from the record's own per-document numbers, and the board, the report, `compare` and the
model-card export read each column's facts here (title, unit, decimals, direction, where its
numbers come from, how its interval is made, whether it states an MDE, whether it decides a
regression); no other module restates them. Each column is a pure function of a record
(sinkbench.record.types.Record): it raises views.Missing, with the reason, when the record lacks the part it
reads (the column is then null with that note); any other exception is a bug and propagates.

A summary entry is an estimate (sinkbench.record.stats: value, stderr, 95% interval, method, n,
note) plus `mde` (the minimal detectable change at 80% power, where the column states one) and
`by_construction` (the value is not a measurement: <bos> dependence when the tokenizer adds no
<bos>; the board and the model-card export read this flag, nothing re-derives it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sinkbench.grid.conditions import BASELINE, BOS_DROP, BOS_DROP_PREFIX, KNOCKOUT, PREFIX, WINDOW_ONLY, WINDOW_SINKS
from sinkbench.record import stats
from sinkbench.record.stats import with_replicates
from sinkbench.record.types import ABSENT, Condition, Estimate, Record, SummaryValue, as_record
from sinkbench.record.views import (PERPLEXITY, Missing, accuracy_tasks, conditions_of, find_condition, outcome,
                                    perplexity_documents, prefix_sweep, retrieval_curve, shared_tasks, tasks_of_kind,
                                    word_perplexity)

HIGHER, LOWER, NEUTRAL = "higher", "lower", "neutral"  # which way is better; neutral: descriptive
MODEL, MACHINE = "model", "machine"  # what a column describes: the model, or the machine that ran the record
PROFILE, TASKS, RUN = "profile", "tasks", "run"  # where its numbers come from: the sink profile's own texts, the
# conditions' task documents, or the whole run's timing (a machine fact)
ANALYTIC, BOOTSTRAP, NO_INTERVAL = "analytic", "bootstrap", "none"  # how its interval is made (validate
# recomputes an analytic one; a bootstrap one must hold its value)
SINK_RATE_EPS = (0.3, 0.8)  # the sink-rate thresholds with a column: Gu et al. and Barbero et al.
EFFECTIVE_THRESHOLD = 0.9  # RULER-style: accuracy kept at >= 0.9 of the shortest length's
RETRIEVAL_WORKS = 0.5  # below this at the shortest length, retrieval fails outright


@dataclass(frozen=True)
class Column:
    name: str
    title: str  # short header for tables
    description: str  # one line
    unit: str
    direction: str  # HIGHER, LOWER or NEUTRAL
    source: str  # PROFILE, TASKS or RUN
    interval: str  # ANALYTIC, BOOTSTRAP or NO_INTERVAL
    formula: str  # how it is computed, in words a reader can check against the record
    compute: Callable[[dict, "Context"], dict]  # -> an estimate (stats.estimate); raises Missing when it cannot
    decimals: int = 3  # places every table prints
    states_mde: bool = False  # the summary gives its minimal detectable change: stats.mde(stderr)
    decides_regression: bool = False  # compare calls a real change past its threshold a regression
    on_index: bool = True  # a column of the board's index table (else: model pages, CSV and board.json only)

    @property
    def kind(self) -> str:
        """MODEL, or MACHINE for a fact of the machine that ran the record (listed apart, never ranked)."""
        return MACHINE if self.source == RUN else MODEL

    @property
    def higher_is_better(self) -> bool | None:
        return {HIGHER: True, LOWER: False}.get(self.direction)


class Context:
    """What every column of one record shares: the record's seed, and one resampler of documents
    and one of texts, so that paired columns read the same documents. bootstrap=False: values
    (and analytic intervals) only, every bootstrap left undefined (what validate needs, fast)."""

    def __init__(self, record: Record, bootstrap: bool = True):
        self.record = record
        seed = record.provenance.seed
        resampler = stats.Resampler if bootstrap else stats.NoResampler
        self.documents = resampler(stats.seed_for(seed, "documents"))
        self.texts = resampler(stats.seed_for(seed, "texts"))


# ---- scores of conditions, with their resamples -------------------------------------------


def suite_estimate(condition: Condition, tasks: dict[str, str]) -> dict:
    """Mean primary metric over `tasks`, stderr from the tasks' analytic stderrs."""
    parts = []
    for task, metric in tasks.items():
        entry = (condition.scores.get(task) or {}).get(metric)
        if entry is None:
            raise Missing(f"no {metric} for {task} under {condition.name}")
        parts.append(entry.to_json())
    if not parts:
        raise Missing(f"no accuracy task was run under {condition.name}")
    return stats.mean_over_tasks(parts)


def suite_scores(ctx: Context, conditions: list[Condition], shared: dict[str, tuple[str, int]]):
    """(S per condition, resampled S per condition (N_BOOTSTRAP,)) over the shared tasks' first n documents."""
    if not shared:
        raise Missing(f"{', '.join(c.name for c in conditions)} share no accuracy task")
    resampler = ctx.documents
    values, replicates = [], []
    for condition in conditions:
        per_task = [outcome(condition, task, metric, n) for task, (metric, n) in shared.items()]
        values.append(float(np.mean([v.mean() for v in per_task])))
        replicates.append(np.mean([resampler.means(task, v) for task, v in zip(shared, per_task)], axis=0))
    return values, replicates


def _relative_drop(ctx: Context, role: str) -> dict:
    """(S_baseline - S_role) / S_baseline on the accuracy tasks and documents both ran; paired bootstrap."""
    baseline, other = find_condition(ctx.record, BASELINE), find_condition(ctx.record, role)
    shared = shared_tasks(ctx.record, [baseline, other])
    (base, worse), (base_r, worse_r) = suite_scores(ctx, [baseline, other], shared)
    if base == 0:
        raise Missing("the baseline suite score is 0: a relative drop is undefined")
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = np.where(base_r > 0, (base_r - worse_r) / base_r, np.nan)
    return with_replicates((base - worse) / base, replicates, stats.PAIRED, sum(n for _, n in shared.values()),
                           fewest=min(n for _, n in shared.values()))


# ---- the columns -------------------------------------------------------------------------


def eps_key(eps: float) -> str:
    """The key of a sink rate in a record: 0.3 -> '0.3' (as sinkbench.measure.metrics writes it)."""
    return f"{eps:g}"


def _profile_mean(eps: float | None = None, part: str | None = None):
    """Mean over the profile's texts of each text's α (eps None) or sink rate at eps; with `part`,
    over the sequences of that part of the profile (random_tokens)."""

    def compute(record, ctx):
        profile = record.profile
        if part is not None and getattr(profile, part) in (None, ABSENT):
            raise Missing(f"the profile has no {part.replace('_', ' ')} part (a schema {record.schema_version} record)")
        per_text = (getattr(profile, part) if part else profile).per_text
        if eps is None:
            values = per_text.alpha_mean
        elif eps_key(eps) in per_text.sink_rate:
            values = per_text.sink_rate[eps_key(eps)]
        else:
            raise Missing(f"the profile has no sink rate at eps={eps_key(eps)}")
        values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
        if len(values) == 0:
            raise Missing("the profile has no texts")
        if np.isnan(values).any():
            raise Missing("texts with no layer where the first token is visible (their α is undefined)")
        resampled = ctx.texts.means(part or "profile", values)
        return with_replicates(float(values.mean()), resampled, stats.TEXTS, len(values))

    return compute


def _suite_score(record, ctx):
    baseline = find_condition(record, BASELINE)
    tasks = accuracy_tasks(record)
    result = suite_estimate(baseline, tasks)
    # Its MDE: against another record of the same documents whose outcomes correlate 0.5 with these
    # (and vary as much), var(d) = var(S), so the MDE of a change is (z + z_power) * stderr(S).
    shared = shared_tasks(record, [baseline])
    shared = {t: shared[t] for t in tasks if t in shared}
    _, (replicates,) = suite_scores(ctx, [baseline], shared)
    few = stats.too_few(min(n for _, n in shared.values()))
    return {**result, "replicates": None if few else replicates}


def no_bos(record: Record) -> bool:
    """Whether <bos> dependence is 0 by construction: the tokenizer adds no <bos>, so keep and drop are one condition."""
    return not record.model.adds_bos


NO_BOS = "the tokenizer adds no <bos>: keep and drop see the same tokens (see knockout dependence)"


def _bos_dependence(record, ctx):
    if no_bos(record):
        return {**stats.estimate(0.0, note=NO_BOS), "by_construction": True}
    return _relative_drop(ctx, BOS_DROP)


def _bos_dependence_under_prefix(record, ctx):
    if no_bos(record):
        return {**stats.estimate(0.0, note=NO_BOS), "by_construction": True}
    stressed, dropped = find_condition(record, PREFIX), find_condition(record, BOS_DROP_PREFIX)
    if stressed.spec.prefix_length != dropped.spec.prefix_length:
        raise Missing(f"{dropped.name} has no <bos>-kept twin at its prefix length")
    shared = shared_tasks(record, [stressed, dropped])
    (keep, drop), (keep_r, drop_r) = suite_scores(ctx, [stressed, dropped], shared)
    if keep == 0:
        raise Missing("the suite score at the longest prefix is 0: a relative drop is undefined")
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = np.where(keep_r > 0, (keep_r - drop_r) / keep_r, np.nan)
    return with_replicates((keep - drop) / keep, replicates, stats.PAIRED, sum(n for _, n in shared.values()),
                           f"prefix={stressed.spec.prefix_length} tokens", min(n for _, n in shared.values()))


def _knockout_dependence(record, ctx):
    return _relative_drop(ctx, KNOCKOUT)


def _length_robustness(record, ctx):
    sweep = prefix_sweep(record)
    if len(sweep) < 2 or sweep[0].role != BASELINE:
        raise Missing("no prefix condition in the record")
    shared = shared_tasks(record, sweep)
    values, replicates = suite_scores(ctx, sweep, shared)
    if values[0] == 0:
        raise Missing("the suite score without a prefix is 0: a ratio is undefined")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.mean([r / replicates[0] for r in replicates[1:]], axis=0)
        ratio = np.where(replicates[0] > 0, ratio, np.nan)
    lengths = ", ".join(str(c.spec.prefix_length) for c in sweep[1:])
    value = float(np.mean([v / values[0] for v in values[1:]]))
    return with_replicates(value, ratio, stats.PAIRED, sum(n for _, n in shared.values()),
                           f"prefix = {lengths} tokens; tasks {', '.join(shared)}", min(n for _, n in shared.values()))


def _first_token_attention(ctx: Context, conditions: list[Condition], shared: dict[str, tuple[str, int]]):
    """Mean first-token attention per condition (mean over tasks of the documents' mean), with resamples."""
    resampler = ctx.documents
    values, replicates = [], []
    for condition in conditions:
        per_task = [outcome(condition, task, "alpha", n) for task, (_, n) in shared.items()]
        values.append(float(np.mean([v.mean() for v in per_task])))
        replicates.append(np.mean([resampler.means(task, v) for task, v in zip(shared, per_task)], axis=0))
    return values, replicates


def _sink_share(record, ctx):
    sweep = prefix_sweep(record)
    if len(sweep) < 2 or sweep[0].role != BASELINE:
        raise Missing("no prefix condition in the record")
    first, last = sweep[0], sweep[-1]
    shared = shared_tasks(record, [first, last])
    (none, longest), (none_r, longest_r) = _first_token_attention(ctx, [first, last], shared)
    if none == 0:
        raise Missing("first-token attention without a prefix is 0: a ratio is undefined")
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = np.where(none_r > 0, longest_r / none_r, np.nan)
    return with_replicates(longest / none, replicates, stats.PAIRED, sum(n for _, n in shared.values()),
                           f"prefix={last.spec.prefix_length} tokens over none", min(n for _, n in shared.values()))


def effective_length(lengths: list[int], accuracies) -> float | None:
    """The longest length whose accuracy, and every shorter one's, stays >= 0.9 of the shortest length's;
    None when the shortest length already fails (accuracy < 0.5)."""
    if accuracies[0] < RETRIEVAL_WORKS:
        return None
    kept = lengths[0]
    for length, accuracy in zip(lengths, accuracies):
        if accuracy < EFFECTIVE_THRESHOLD * accuracies[0]:
            break
        kept = length
    return float(kept)


def _effective_context(record, ctx):
    curve = retrieval_curve(record, "passkey")
    if not curve:
        raise Missing("no pass-key retrieval task in the record")
    baseline = find_condition(record, BASELINE)
    lengths = [length for length, _ in curve]
    outcomes = [outcome(baseline, task, record.tasks[task].primary_metric) for _, task in curve]
    accuracies = [float(o.mean()) for o in outcomes]
    value = effective_length(lengths, accuracies)
    n = sum(len(o) for o in outcomes)
    if value is None:
        return stats.estimate(None, n=n, note=f"retrieval fails at the shortest length ({lengths[0]} tokens: accuracy "
                                              f"{accuracies[0]:.2f} < {RETRIEVAL_WORKS})")
    low, high = effective_bounds(lengths, [float(o.sum()) for o in outcomes], [len(o) for o in outcomes])
    note = f"pass-key at {', '.join(map(str, lengths))} tokens"
    if low == 0:
        note += "; interval from 0: retrieval may fail even at the shortest length"
    if high == lengths[-1]:
        note += f"; {lengths[-1]} is the longest length tested"
    # A percentile bootstrap collapses here (a length where every document is retrieved is retrieved in
    # every resample), so the interval is the simultaneous one. The resamples still serve paired comparisons.
    result = stats.estimate(value, None, low, high, stats.SIMULTANEOUS, n, note)
    if stats.too_few(min(len(o) for o in outcomes)):
        return {**result, "replicates": None}  # too few documents at some length for a bootstrap in compare
    resampler = ctx.documents
    resampled = np.stack([resampler.means(task, o) for (_, task), o in zip(curve, outcomes)], axis=1)  # (B, lengths)
    replicates = np.array([np.nan if (e := effective_length(lengths, row)) is None else e for row in resampled])
    return {**result, "replicates": replicates}


def effective_bounds(lengths: list[int], successes: list[float], ns: list[int]) -> tuple[float, float]:
    """A 95% interval for the effective context: with every length's accuracy inside its simultaneous
    Wilson interval, the definition is smallest with the shortest length at its upper bound and the others
    at their lower bounds, and largest the other way round (0: retrieval may fail at the shortest)."""
    bounds = stats.simultaneous_wilson(successes, ns)
    lows, highs = [b[0] for b in bounds], [b[1] for b in bounds]
    worst = effective_length(lengths, [highs[0], *lows[1:]]) if lows[0] >= RETRIEVAL_WORKS else None
    best = effective_length(lengths, [max(lows[0], RETRIEVAL_WORKS), *highs[1:]])
    return (0.0 if worst is None else worst), (0.0 if best is None else best)


def _streaming_gap(record, ctx):
    long_text = list(tasks_of_kind(record, PERPLEXITY))
    if not long_text:
        raise Missing("no perplexity task in the record")
    task = long_text[0]
    only, kept = find_condition(record, WINDOW_ONLY), find_condition(record, WINDOW_SINKS)
    n = min(only.outcomes[task].n, kept.outcomes[task].n) if task in only.outcomes and task in kept.outcomes else 0
    if not n:
        raise Missing(f"{task} was not scored under both window conditions")
    words, _ = perplexity_documents(record, task)
    words = words[:n]
    if words.sum() <= 0:
        raise Missing(f"{task}'s documents hold no words")
    ll_only, ll_kept = outcome(only, task, "loglik", n), outcome(kept, task, "loglik", n)
    value = word_perplexity(ll_only, words) / word_perplexity(ll_kept, words)
    resampler = ctx.documents
    w = resampler.sums(task, words)
    replicates = np.exp(-resampler.sums(task, ll_only) / w) / np.exp(-resampler.sums(task, ll_kept) / w)
    return with_replicates(value, replicates, stats.PAIRED, n,
                                 f"{task} word perplexity, window={only.spec.window}")


def _sink_growth(record, ctx):
    points = record.profile.length_sweep.points
    if len(points) < 2:
        raise Missing("the length sweep has fewer than two lengths")
    first, last = points[0], points[-1]
    a = np.asarray(first.per_text.alpha_mean, dtype=float)
    b = np.asarray(last.per_text.alpha_mean, dtype=float)
    if a.mean() == 0:
        raise Missing(f"alpha at T={first.T} is 0")
    value, note = float(b.mean() / a.mean()), f"T={last.T} over T={first.T}"
    fewest = min(len(a), len(b))
    few = stats.too_few(fewest, f"texts at T={last.T if len(b) == fewest else first.T}")
    if few:  # said with the length at fault, rather than from_replicates' general words
        return {**stats.estimate(value, n=len(a) + len(b), note=f"{note}; {few}"), "replicates": None}
    resampler = ctx.texts
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = resampler.means(("sweep", last.T), b) / resampler.means(("sweep", first.T), a)
    method = f"percentile bootstrap over texts, each length resampled on its own ({stats.N_BOOTSTRAP} resamples, seeded)"
    return with_replicates(value, replicates, method, len(a) + len(b), note, fewest)


def _massive(record, ctx):
    massive = record.profile.massive_activations
    table = np.asarray(massive.ratio_by_text, dtype=float)  # (texts, layers)
    if table.size == 0:
        raise Missing("no massive-activation ratio was measured")
    by_layer = table.mean(axis=0)
    layer = int(by_layer.argmax())
    indices = ctx.texts.indices("profile", len(table))
    replicates = table[indices].mean(axis=1).max(axis=1)  # (B,)
    return with_replicates(float(by_layer.max()), replicates, stats.TEXTS, len(table), f"layer {layer}")


def _overmixing(variant: str):
    def compute(record, ctx):
        entry = getattr(record.profile.overmixing, variant)
        if entry is None or not entry.last_layer_by_sequence:
            raise Missing(f"over-mixing {variant.replace('_', ' ')} was not measured (no <bos> token?)")
        values = np.asarray(entry.last_layer_by_sequence, dtype=float)
        replicates = ctx.texts.means(("overmixing", variant), values)
        method = f"percentile bootstrap over the perturbed sequences ({stats.N_BOOTSTRAP} resamples, seeded)"
        return with_replicates(float(values.mean()), replicates, method, len(values))

    return compute


MACHINE_NOTE = "one measurement of the machine that ran the record (provenance.device), not of the model"


def _computed(record):
    return [c for c in record.conditions if c.identical_to is None]


def _throughput(record, ctx):
    conditions = _computed(record)
    seconds = sum(c.wall_time_s for c in conditions)
    if seconds <= 0:
        raise Missing("no condition was timed")
    return stats.estimate(sum(c.tokens_processed for c in conditions) / seconds, note=MACHINE_NOTE)


def _wall_time(record, ctx):
    return stats.estimate(sum(c.wall_time_s for c in _computed(record)) + record.profile.wall_time_s,
                          note=MACHINE_NOTE)


def _sink_rate_column(eps: float, source_paper: str) -> Column:
    key = eps_key(eps)
    return Column(f"sink_rate_{key.replace('.', '_')}", f"sink rate ε={key}",
                  f"share of (layer, head) pairs whose attention to the first token exceeds {key} ({source_paper})",
                  unit="fraction", direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
                  formula=f"profile.sink_rate['{key}']: mean over texts of each text's share", compute=_profile_mean(eps))


_FRACTION, _RATIO = "fraction", "ratio"
COLUMNS: tuple[Column, ...] = (
    *(_sink_rate_column(eps, paper) for eps, paper in zip(SINK_RATE_EPS, ("Gu et al.", "Barbero et al."))),
    Column("alpha_mean", "mean α", "attention to the first token, averaged over the queries that can see it, the layers where it is "
           "defined, heads and texts",
           unit=_FRACTION, direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
           formula="profile.alpha_mean: mean over texts of each text's mean α", compute=_profile_mean()),
    Column("random_sink_rate_0_3", "random-token sink rate ε=0.3", "the sink rate ε=0.3 on uniformly random token sequences "
           "(Gu et al.'s probe: 70-91% for GPT-2 XL to Llama-3-8B)",
           unit=_FRACTION, direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
           formula="profile.random_tokens.sink_rate['0.3']: mean over sequences of each one's share",
           compute=_profile_mean(SINK_RATE_EPS[0], "random_tokens"), on_index=False),
    Column("random_alpha_mean", "random-token mean α", "attention to the first token on uniformly random token sequences",
           unit=_FRACTION, direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
           formula="profile.random_tokens.alpha_mean: mean over sequences of each one's mean α",
           compute=_profile_mean(None, "random_tokens"), on_index=False),
    Column("suite_score", "suite score", "mean primary metric of the accuracy tasks with <bos> kept and no stress",
           unit=_FRACTION, direction=HIGHER, source=TASKS, interval=ANALYTIC,
           formula="mean over accuracy tasks of scores[task][primary] under the baseline condition", compute=_suite_score,
           states_mde=True, decides_regression=True),
    Column("bos_dependence", "<bos> dependence", "relative drop of the suite score when <bos> is removed",
           unit=_FRACTION, direction=LOWER, source=TASKS, interval=BOOTSTRAP,
           formula="(S(keep) - S(drop)) / S(keep); 0 when the tokenizer adds no <bos>", compute=_bos_dependence,
           states_mde=True, decides_regression=True),
    Column("knockout_dependence", "sink-knockout dependence",
           "relative drop of the suite score when no query may attend to the first token, in every layer",
           unit=_FRACTION, direction=LOWER, source=TASKS, interval=BOOTSTRAP,
           formula="(S(keep) - S(knockout=all)) / S(keep)", compute=_knockout_dependence,
           states_mde=True, decides_regression=True),
    Column("bos_dependence_under_prefix", "<bos> dependence under stress",
           "relative drop of the suite score when <bos> is removed, with the longest stress prefix in front",
           unit=_FRACTION, direction=LOWER, source=TASKS, interval=BOOTSTRAP,
           formula="(S(keep, P) - S(drop, P)) / S(keep, P) on the sweep tasks, P the longest prefix; 0 when the "
                   "tokenizer adds no <bos>", compute=_bos_dependence_under_prefix, states_mde=True),
    Column("length_robustness", "length robustness",
           "suite score with a distractor prefix relative to none, averaged over the swept prefix lengths",
           unit=_RATIO, direction=HIGHER, source=TASKS, interval=BOOTSTRAP,
           formula="mean over swept P > 0 of S(keep, P) / S(keep, 0), on the sweep tasks and documents",
           compute=_length_robustness),
    Column("effective_context", "effective context",
           "the longest pass-key length whose accuracy stays >= 0.9 of the shortest length's (RULER-style)",
           unit="tokens", decimals=0, direction=HIGHER, source=TASKS, interval=ANALYTIC,
           formula="largest L with acc(l) >= 0.9 acc(shortest) for every l <= L; null when acc(shortest) < 0.5",
           compute=_effective_context),
    Column("sink_share_at_longest_prefix", "sink share under stress",
           "attention to the sequence's first token at the longest prefix over with none",
           unit=_RATIO, direction=NEUTRAL, source=TASKS, interval=BOOTSTRAP,
           formula="mean document α at the longest prefix / mean document α without one, on the sweep tasks",
           compute=_sink_share),
    Column("streaming_gap", "StreamingLLM gap",
           "long-text perplexity with window attention only, over the same window plus 4 sink tokens",
           unit=_RATIO, direction=NEUTRAL, source=TASKS, interval=BOOTSTRAP,
           formula="ppl(window=W, sinks=0) / ppl(window=W, sinks=k)", compute=_streaming_gap),
    Column("sink_growth", "sink growth with length", "mean α at the longest profiled length over mean α at 64 tokens",
           unit=_RATIO, direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
           formula="length_sweep[-1].alpha_mean / length_sweep[0].alpha_mean", compute=_sink_growth),
    Column("massive_activation_ratio", "massive activation", "largest top |h| / median |h| over layers (Sun et al.)",
           unit=_RATIO, direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
           formula="max over layers of the mean over texts of profile.massive_activations.ratio_by_text",
           compute=_massive),
    Column("overmixing_with_bos", "over-mixing with <bos>",
           "last-layer relative movement of later tokens after one token is swapped, <bos> in front",
           unit="relative change", direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
           formula="mean over sequences of profile.overmixing.with_bos.last_layer_by_sequence",
           compute=_overmixing("with_bos")),
    Column("overmixing_without_bos", "over-mixing without <bos>",
           "the same with no <bos> in front (Barbero et al.: sinks slow mixing)",
           unit="relative change", direction=NEUTRAL, source=PROFILE, interval=BOOTSTRAP,
           formula="mean over sequences of profile.overmixing.without_bos.last_layer_by_sequence",
           compute=_overmixing("without_bos")),
    Column("throughput", "throughput", "tokens of the evaluated sequences per second, over the conditions that were computed",
           unit="tokens/s", decimals=0, direction=HIGHER, source=RUN, interval=NO_INTERVAL,
           formula="sum tokens_processed / sum wall_time_s over computed conditions", compute=_throughput),
    Column("wall_time_s", "wall time", "seconds spent on the computed conditions and the profile (model load excluded)",
           unit="s", decimals=1, direction=LOWER, source=RUN, interval=NO_INTERVAL,
           formula="sum wall_time_s over computed conditions + profile.wall_time_s", compute=_wall_time),
)
COLUMNS_BY_NAME = {column.name: column for column in COLUMNS}


def measure(record: Record | dict, ctx: Context | None = None) -> dict[str, dict]:
    """Every column's estimate (stats.estimate), with its bootstrap replicates (under "replicates") where it has
    them, of a record (or its JSON form). A column the record cannot give (Missing) is null with the reason; any
    other error is a bug and raises."""
    record = as_record(record)
    ctx = ctx or Context(record)
    measured = {}
    for column in COLUMNS:
        try:
            entry = column.compute(record, ctx)
        except Missing as missing:
            entry = stats.estimate(None, note=str(missing))
        entry["mde"] = stats.mde(entry["stderr"]) if column.states_mde else None
        if entry["mde"] is not None and not math.isfinite(entry["mde"]):
            entry["mde"] = None
        entry.setdefault("by_construction", False)
        measured[column.name] = entry
    return measured


def compute_summary(record: Record | dict) -> dict[str, SummaryValue]:
    """{column name: estimate + mde + by_construction} for every column."""
    return {name: SummaryValue.from_json({k: v for k, v in entry.items() if k != "replicates"}, f"summary.{name}")
            for name, entry in measure(record).items()}


def condition_suite_score(condition: Condition, record: Record) -> Estimate | None:
    """A condition's suite score over the accuracy tasks it ran (for tables), or None."""
    tasks = {t: m for t, m in accuracy_tasks(record).items() if t in condition.scores}
    try:
        return Estimate.from_json(suite_estimate(condition, tasks)) if tasks else None
    except Missing:
        return None


__all__ = ["COLUMNS", "COLUMNS_BY_NAME", "Column", "HIGHER", "LOWER", "NEUTRAL", "MODEL", "MACHINE", "PROFILE", "TASKS",
           "RUN", "ANALYTIC", "BOOTSTRAP", "NO_INTERVAL", "SINK_RATE_EPS", "Missing", "compute_summary", "measure",
           "Context", "condition_suite_score", "conditions_of", "accuracy_tasks", "eps_key", "no_bos", "effective_length"]
