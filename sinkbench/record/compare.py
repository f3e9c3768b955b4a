"""Two records compared document by document: each column's change with a paired interval, and a verdict.

Documents are matched by id and content hash. Both records are cut to the documents (and
profile texts) they share, in the same order, and every column is measured on both through one
shared resampler: the k-th bootstrap replicate of A and of B read the same documents, so their
difference is a paired bootstrap replicate of the change. Accuracy tasks also get McNemar's exact
test. A verdict needs the interval: a change whose interval holds 0 is within noise.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from sinkbench.errors import SinkbenchError
from sinkbench.record import stats
from sinkbench.record.columns import COLUMNS, HIGHER, LOWER, MACHINE, Column, Context, measure
from sinkbench.record.types import Documents, Estimate, Outcome, PerText, Record, as_record
from sinkbench.record.views import BASELINE, RETRIEVAL, accuracy_tasks, conditions_of

REGRESSION, IMPROVEMENT, WORSE, BETTER, SMALL, CHANGED, NOISE, UNTESTED = (
    "regression", "improvement", "worse", "better", "worse, below the threshold", "changed", "within noise", "not tested")


@dataclass(frozen=True)
class Thresholds:
    """How much worse a watched column may get before a real change is a regression (absolute)."""

    # A twentieth of the suite score more lost when the sink is removed: a real change of mechanism.
    max_dependence_rise: float = 0.05
    # About the minimal detectable change of the quick suite (its MDE for the suite score is ~0.03).
    max_score_drop: float = 0.02

    def __post_init__(self):
        if self.max_dependence_rise < 0 or self.max_score_drop < 0:
            raise SinkbenchError("--max-dependence-rise and --max-score-drop must be >= 0")

    def limit(self, column: Column) -> float | None:
        """How much worse the column may get; None for a column that decides no regression. A deciding
        column that should rise is a score, one that should fall a dependence (columns.py says which)."""
        if not column.decides_regression:
            return None
        return self.max_score_drop if column.direction == HIGHER else self.max_dependence_rise

    def describe(self) -> str:
        return (f"regression: a real change (95% interval clear of 0) of sink dependence rising by more than "
                f"{self.max_dependence_rise:g} or the suite score falling by more than {self.max_score_drop:g}")


@dataclass(frozen=True)
class ColumnChange:
    column: Column
    before: float | None
    after: float | None
    change: dict  # an estimate of after - before (value, stderr, interval, method, n, note)
    mde: float | None  # the smallest change this comparison could detect at 80% power
    verdict: str
    note: str | None = None


@dataclass(frozen=True)
class TaskTest:
    """McNemar's exact test on one accuracy task's shared documents under the baseline."""

    task: str
    n: int
    lost: int  # right in A, wrong in B
    gained: int  # wrong in A, right in B
    p_value: float
    before: float
    after: float


@dataclass(frozen=True)
class Comparison:
    paired: bool
    shared: dict[str, int]  # task -> documents compared
    changed: list[str]  # tasks whose shared ids hold other content
    columns: list[ColumnChange]
    tasks: list[TaskTest]
    same_model: bool
    regression_test: bool  # whether a regression can be called (one family)
    per_tokenizer: list[str] = field(default_factory=list)  # synthetic tasks left out: built per model, not pairable

    @property
    def regressions(self) -> list[ColumnChange]:
        return [c for c in self.columns if c.verdict == REGRESSION]


def shared_documents(a: Record, b: Record) -> tuple[dict[str, tuple[list[int], list[int]]], list[str]]:
    """Per task both records list: (positions in A, positions in B) of the documents with the same
    id and hash, in id order; and the tasks where a shared id holds different content."""
    matched, changed = {}, []
    for task in sorted(set(a.tasks) & set(b.tasks)):
        docs_a, docs_b = a.tasks[task].documents, b.tasks[task].documents
        where_b = {doc: (i, h) for i, (doc, h) in enumerate(zip(docs_b.ids, docs_b.hashes))}
        pairs = []
        for i, (doc, h) in enumerate(zip(docs_a.ids, docs_a.hashes)):
            if doc in where_b:
                if where_b[doc][1] != h:
                    changed.append(task)
                    break
                pairs.append((i, where_b[doc][0]))
        else:
            if pairs:
                matched[task] = ([p for p, _ in pairs], [q for _, q in pairs])
    return matched, changed


def shared_texts(a: list[str], b: list[str]) -> tuple[list[int], list[int]]:
    """Positions of the texts (by hash) both lists hold, in A's order."""
    where_b = {h: i for i, h in enumerate(b)}
    pairs = [(i, where_b[h]) for i, h in enumerate(a) if h in where_b]
    return [p for p, _ in pairs], [q for _, q in pairs]


def _take(values, positions: list[int]):
    return None if values is None else [values[i] for i in positions]


def restrict(record: Record, documents: dict[str, list[int]], scored: dict[tuple[str, str], list[int]],
             texts: dict) -> Record:
    """The record cut to the given documents per task (positions, in order) and, per (condition, task),
    the ones both records scored there; scores of 0/1 metrics recomputed on them; profile texts likewise."""
    cut = copy.deepcopy(record)
    for task, entry in cut.tasks.items():
        positions = documents.get(task, [])
        docs = entry.documents
        entry.documents = Documents(*(_take(getattr(docs, name), positions) for name in ("ids", "hashes", "words", "bytes")))
    for condition in cut.conditions:
        for task in list(condition.outcomes):
            outcome = condition.outcomes[task]
            positions = scored.get((condition.name, task), [])
            if not positions:
                del condition.outcomes[task]
                condition.scores.pop(task, None)
                continue
            cut_outcome = Outcome.from_json({name: len(positions) if name == "n" else _take(values, positions)
                                             for name, values in outcome.to_json().items()})
            condition.outcomes[task] = cut_outcome
            for metric in condition.scores.get(task, {}):
                values = cut_outcome.values(metric)
                if values is not None and set(values) <= {0, 1}:
                    condition.scores[task][metric] = Estimate.from_json(stats.proportion(values))
    profile = cut.profile
    if "profile" in texts:
        keep = texts["profile"]
        profile.per_text = _cut_texts(profile.per_text, keep)
        profile.massive_activations.ratio_by_text = _take(profile.massive_activations.ratio_by_text, keep)
        profile.n_sequences = len(keep)
        for entry in (profile.overmixing.with_bos, profile.overmixing.without_bos):
            if entry is not None:
                kept = [i for i in keep if i < len(entry.last_layer_by_sequence)]
                entry.last_layer_by_sequence = _take(entry.last_layer_by_sequence, kept)
    for point in profile.length_sweep.points:
        keep = texts.get(("sweep", point.T))
        if keep is not None:
            point.per_text = _cut_texts(point.per_text, keep)
    return cut


def _cut_texts(per_text: PerText, keep: list[int]) -> PerText:
    return PerText(_take(per_text.hashes, keep), _take(per_text.alpha_mean, keep),
                   {eps: _take(values, keep) for eps, values in per_text.sink_rate.items()})


def _text_pairs(a: Record, b: Record) -> tuple[dict, dict]:
    """Matching profile texts of A and B: the protocol's and each sweep length's, by hash."""
    left, right = {}, {}
    left["profile"], right["profile"] = shared_texts(a.profile.per_text.hashes, b.profile.per_text.hashes)
    points_b = {p.T: p for p in b.profile.length_sweep.points}
    for point in a.profile.length_sweep.points:
        if point.T in points_b:
            key = ("sweep", point.T)
            left[key], right[key] = shared_texts(point.per_text.hashes, points_b[point.T].per_text.hashes)
    return left, right


def _scored_pairs(a: Record, b: Record, matched: dict) -> tuple[dict, dict]:
    """Per (condition, task) both records ran: the shared documents both scored there, as positions
    in A and in B (a prefix of the shared list: document lists are in id order)."""
    in_b = {c.name: c for c in b.conditions}
    left, right = {}, {}
    for condition in a.conditions:
        other = in_b.get(condition.name)
        if other is None:
            continue
        for task, outcome in condition.outcomes.items():
            if task not in matched or task not in other.outcomes:
                continue
            pairs = [(i, j) for i, j in zip(*matched[task]) if i < outcome.n and j < other.outcomes[task].n]
            left[condition.name, task] = [i for i, _ in pairs]
            right[condition.name, task] = [j for _, j in pairs]
    return left, right


def _verdict(column: Column, change: dict, limit: float | None, regression_test: bool) -> str:
    if column.kind == MACHINE:
        return UNTESTED
    value, low, high = change["value"], change["ci_low"], change["ci_high"]
    if value is None or low is None:
        return UNTESTED
    if low <= 0 <= high:
        return NOISE
    if column.direction not in (HIGHER, LOWER):
        return CHANGED
    worse = value < 0 if column.direction == HIGHER else value > 0
    if not worse:
        return IMPROVEMENT if limit is not None and regression_test else BETTER
    if limit is None or not regression_test:
        return WORSE
    return REGRESSION if abs(value) > limit + 1e-12 else SMALL


def compare(a: Record | dict, b: Record | dict, thresholds: Thresholds, unpaired: bool = False,
            seed: int = 0) -> Comparison:
    """B (new) against A (old), records or their JSON form, column by column; SinkbenchError when the two cannot be
    compared."""
    a, b = as_record(a), as_record(b)
    suite_a, suite_b = ((r.provenance.suite.name, r.provenance.suite.version) for r in (a, b))
    if suite_a != suite_b:
        raise SinkbenchError(f"A is suite {' '.join(suite_a)} and B is {' '.join(suite_b)}: records of different suite "
                             "versions score different documents; compare records of one suite version")
    matched, changed = shared_documents(a, b)
    model_a, model_b = a.model, b.model
    same_model = (model_a.family, model_a.name) == (model_b.family, model_b.name)
    # Synthetic documents are built to a length in each model's own tokens: between two models they
    # cannot pair, so they are left out (and named) rather than refusing the comparison.
    per_tokenizer = [] if unpaired or same_model else [t for t in changed if a.tasks[t].kind == RETRIEVAL]
    changed = [t for t in changed if t not in per_tokenizer]
    if changed and not unpaired:
        raise SinkbenchError(f"documents of {', '.join(changed)} have the same ids but other content in A and B "
                             "(their hashes differ): they cannot be paired; --unpaired compares them as independent samples")
    if not matched and not unpaired:
        raise SinkbenchError("A and B share no document (same id and content hash): nothing to pair; "
                             "--unpaired compares them as independent samples")
    regression_test = model_a.family == model_b.family
    if unpaired:
        before, after = measure(a, Context(a)), measure(b, Context(b))
        paired_docs = {}
    else:
        texts_a, texts_b = _text_pairs(a, b)
        scored_a, scored_b = _scored_pairs(a, b, matched)
        ra = restrict(a, {t: p for t, (p, _) in matched.items()}, scored_a, texts_a)
        rb = restrict(b, {t: q for t, (_, q) in matched.items()}, scored_b, texts_b)
        ctx_a = Context(ra)
        ctx_b = Context(rb)
        ctx_a.documents = ctx_b.documents = stats.Resampler(stats.seed_for(seed, "compare documents"))
        ctx_a.texts = ctx_b.texts = stats.Resampler(stats.seed_for(seed, "compare texts"))
        before, after = measure(ra, ctx_a), measure(rb, ctx_b)
        paired_docs = {t: len(p) for t, (p, _) in matched.items()}
    columns = []
    for column in COLUMNS:
        x, y = before[column.name], after[column.name]
        by_construction = x["by_construction"] or y["by_construction"]
        if by_construction or x["value"] is None or y["value"] is None:
            note = ("0 by construction in " + ("A and B" if x["by_construction"] and y["by_construction"] else
                                              "A" if x["by_construction"] else "B") + ": left out of the test") \
                if by_construction else (x["note"] if x["value"] is None else y["note"])
            columns.append(ColumnChange(column, x["value"], y["value"], stats.estimate(None, note=note), None, UNTESTED, note))
            continue
        value = y["value"] - x["value"]
        if column.kind == MACHINE or x.get("replicates") is None or y.get("replicates") is None:
            note = "a machine fact: not tested" if column.kind == MACHINE else "no bootstrap for this column"
            change = stats.estimate(value, note=note)
        else:
            method = (f"paired bootstrap over the shared documents and texts ({stats.N_BOOTSTRAP} resamples)" if not unpaired
                      else f"unpaired: independent bootstraps of A and B ({stats.N_BOOTSTRAP} resamples each)")
            change = stats.from_replicates(value, y["replicates"] - x["replicates"], method, max(x["n"], y["n"]))
        mde = stats.mde(change["stderr"]) if column.kind != MACHINE else None
        verdict = _verdict(column, change, thresholds.limit(column), regression_test)
        columns.append(ColumnChange(column, x["value"], y["value"], change, mde, verdict, change["note"]))
    return Comparison(not unpaired, paired_docs, changed, columns, [] if unpaired else _mcnemar(a, b, matched),
                      same_model, regression_test, per_tokenizer)


def _mcnemar(a: Record, b: Record, matched: dict) -> list[TaskTest]:
    tests = []
    base_a, base_b = conditions_of(a, BASELINE), conditions_of(b, BASELINE)
    if not base_a or not base_b:
        return tests
    for task, metric in accuracy_tasks(a).items():
        if task not in matched or task not in base_a[0].outcomes or task not in base_b[0].outcomes:
            continue
        positions_a, positions_b = matched[task]
        out_a, out_b = base_a[0].outcomes[task], base_b[0].outcomes[task]
        pairs = [(i, j) for i, j in zip(positions_a, positions_b) if i < out_a.n and j < out_b.n]
        before = np.array([out_a.values(metric)[i] for i, _ in pairs])
        after = np.array([out_b.values(metric)[j] for _, j in pairs])
        result = stats.mcnemar(before, after)
        tests.append(TaskTest(task, result["n"], result["lost"], result["gained"], result["p_value"],
                              float(before.mean()), float(after.mean())))
    return tests
