"""Two records compared document by document (sinkbench.record.compare), on hand-made records of known changes."""

import copy

import pytest

from sinkbench.testing.records import record
from sinkbench.errors import SinkbenchError
from sinkbench.record.build import build_record
from sinkbench.record.types import Record
from sinkbench.record.compare import IMPROVEMENT, NOISE, REGRESSION, UNTESTED, WORSE, Thresholds, compare
from sinkbench.record.validate import problems

TASK = "sinkbench_lambada_quick"


def _rebuilt(made: dict) -> dict:
    """The record with its scores, links and summary recomputed from its (edited) per-document outcomes."""
    from sinkbench.record import stats
    from sinkbench.record.link import sink_correctness_link

    for condition in made["conditions"]:
        for task, metrics in condition["scores"].items():
            outcome = condition["outcomes"][task]
            for metric in metrics:
                if outcome.get(metric) is not None:
                    metrics[metric] = stats.proportion(outcome[metric])
            if task in condition["link"]:
                condition["link"][task] = {"metric": "acc", **sink_correctness_link(
                    dict(enumerate(outcome["acc"])), dict(enumerate(outcome["alpha"])), seed=0)}
    typed = Record.from_json(made)
    rebuilt = build_record(model=typed.model, provenance=typed.provenance, tasks=typed.tasks, profile=typed.profile,
                           conditions=typed.conditions, missing=typed.missing).to_json()
    assert problems(rebuilt) == [], problems(rebuilt)[:2]
    return rebuilt


def _flip(made: dict, role: str, task: str, count: int, to: int) -> dict:
    """The first `count` documents of `task` that are not `to` under the `role` condition set to `to`."""
    changed = copy.deepcopy(made)
    condition = next(c for c in changed["conditions"] if c["role"] == role)
    outcomes = condition["outcomes"][task]["acc"]
    flipped = 0
    for i, value in enumerate(outcomes):
        if value != to and flipped < count:
            outcomes[i] = to
            flipped += 1
    assert flipped == count
    return _rebuilt(changed)


def by_name(comparison):
    return {c.column.name: c for c in comparison.columns}


def test_a_record_against_itself_is_within_noise_everywhere_with_a_zero_width_interval():
    a = record(docs=60, sweep_docs=30)
    result = compare(a, copy.deepcopy(a), Thresholds())
    assert result.paired and result.same_model and not result.regressions
    for change in result.columns:
        assert change.verdict in (NOISE, UNTESTED), (change.column.name, change.verdict)
        if change.change["ci_low"] is not None:
            assert change.change["value"] == 0 and change.change["ci_low"] == change.change["ci_high"] == 0
    assert all(t.lost == t.gained == 0 and t.p_value == 1.0 for t in result.tasks)


def test_documents_lost_are_counted_by_mcnemar_and_the_change_is_exact():
    a = record(docs=60, sweep_docs=30)
    b = _flip(a, "baseline", TASK, 9, to=0)  # 9 of LAMBADA's right answers now wrong
    result = compare(a, b, Thresholds())
    test = next(t for t in result.tasks if t.task == TASK)
    assert (test.lost, test.gained, test.n) == (9, 0, 60)
    assert test.p_value == pytest.approx(2 / 2 ** 9)  # exact binomial, two-sided: 2 * 0.5^9
    change = by_name(result)["suite_score"]
    assert change.change["value"] == pytest.approx(-9 / 60 / 3)  # one task of three lost 9 of 60 documents
    assert change.change["ci_high"] < 0  # paired: the other tasks' documents did not move, so no noise from them
    assert change.mde is not None and change.mde > 0


def test_a_large_real_drop_on_every_document_is_a_regression_and_a_gain_an_improvement():
    a = record(docs=60, sweep_docs=30)
    worse = a
    for task in ("sinkbench_lambada_quick", "sinkbench_piqa_quick", "sinkbench_arc_easy_quick"):
        worse = _flip(worse, "baseline", task, 12, to=0)
    result = compare(a, worse, Thresholds())
    assert by_name(result)["suite_score"].verdict == REGRESSION and result.regressions
    better = by_name(compare(worse, a, Thresholds()))
    assert better["suite_score"].verdict == IMPROVEMENT
    # Only the baseline moved back up while <bos> removed stayed where it was: the model now loses
    # more without <bos>, a real rise of its dependence.
    assert better["bos_dependence"].verdict == REGRESSION and better["bos_dependence"].change["value"] > 0.05
    lenient = compare(a, worse, Thresholds(max_score_drop=0.5))  # a real change smaller than the threshold
    assert by_name(lenient)["suite_score"].verdict == "worse, below the threshold" and not lenient.regressions


def test_across_families_nothing_is_a_regression():
    a = record(docs=60, sweep_docs=30)
    other = copy.deepcopy(a)
    other["model"]["family"], other["model"]["name"] = "other", "other-model"
    worse = other
    for task in ("sinkbench_lambada_quick", "sinkbench_piqa_quick", "sinkbench_arc_easy_quick"):
        worse = _flip(worse, "baseline", task, 12, to=0)
    result = compare(a, worse, Thresholds())
    assert not result.same_model and not result.regression_test and not result.regressions
    assert by_name(result)["suite_score"].verdict == WORSE


def test_a_value_that_is_zero_by_construction_is_left_out():
    a = record(docs=60, sweep_docs=30)
    no_bos = record(docs=60, sweep_docs=30, adds_bos=False)
    result = by_name(compare(a, no_bos, Thresholds()))
    assert result["bos_dependence"].verdict == UNTESTED and "0 by construction in B" in result["bos_dependence"].note


def test_records_that_cannot_be_paired_are_refused():
    a = record(docs=60, sweep_docs=30)
    changed = copy.deepcopy(a)
    changed["tasks"][TASK]["documents"]["hashes"][0] = "0" * 12  # same id, other content
    with pytest.raises(SinkbenchError, match="other content"):
        compare(a, changed, Thresholds())
    assert compare(a, changed, Thresholds(), unpaired=True).paired is False  # unless asked for, and labelled
    other_version = copy.deepcopy(a)
    other_version["provenance"]["suite"]["version"] = "9.9"
    with pytest.raises(SinkbenchError, match="different suite versions"):
        compare(a, other_version, Thresholds())


def test_synthetic_documents_of_two_models_are_left_out_not_refused():
    # Pass-key documents are built to a length in each model's own tokens: two models see other texts
    # under the same ids. Between two models they are left out (and said so); within one model, refused.
    a = record(docs=60, sweep_docs=30)
    other = copy.deepcopy(a)
    other["model"] = {**other["model"], "family": "smollm2", "name": "smollm2-135m"}
    passkey = [t for t, entry in a["tasks"].items() if entry["kind"] == "retrieval"]
    assert passkey
    for task in passkey:
        other["tasks"][task]["documents"]["hashes"] = ["f" * 12 for _ in other["tasks"][task]["documents"]["hashes"]]
    result = compare(a, other, Thresholds())
    assert result.paired and sorted(result.per_tokenizer) == sorted(passkey)
    assert not set(passkey) & set(result.shared) and TASK in result.shared
    assert by_name(result)["suite_score"].change["value"] == 0  # the same outcomes on the paired documents
    same_model = copy.deepcopy(other)
    same_model["model"] = a["model"]
    with pytest.raises(SinkbenchError, match="other content"):
        compare(a, same_model, Thresholds())
