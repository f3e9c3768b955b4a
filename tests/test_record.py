"""The record: schema and `validate` reject each kind of malformed record; the link and the columns on known cases."""

import copy
import json
import math

import numpy as np
import pytest

from sinkbench.cli import main
from sinkbench.record.columns import COLUMNS, compute_summary
from sinkbench.record.link import point_biserial, quartiles, sink_correctness_link
from sinkbench.record.format import dumps, loads
from sinkbench.record.validate import problems


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """A real record of a tiny model (every grid role but the stress prefix), made once for this module."""
    from dataclasses import replace

    import sinkbench.grid.suite as suite
    from conftest import make_model, make_tokenizer
    from lm_tasks import write_tasks
    from sinkbench.run.runner import RunConfig, run
    from test_run import CELLS

    root = tmp_path_factory.mktemp("record")
    folder = root / "tiny"
    make_model("llama").save_pretrained(folder)
    make_tokenizer(adds_bos=True).save_pretrained(folder)
    plan = suite.ProfilePlan(T=16, n=6, sweep_lengths=(16, 64), sweep_texts=(3, 2), overmixing_sequences=2)
    saved = suite.SUITES["quick"]
    suite.SUITES["quick"] = replace(saved, profile=plan)
    try:
        path = run(RunConfig(model=str(folder), out=root / "out", cells=CELLS, include_path=write_tasks(root / "tasks"),
                             batch_size=2), log=lambda m: None)
    finally:
        suite.SUITES["quick"] = saved
    return loads(path.read_text())


def test_the_record_is_valid_and_its_text_canonical(record):
    assert problems(record) == []
    assert loads(dumps(record)) == record and dumps(loads(dumps(record))) == dumps(record)


def _set(record, path, value):
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


DELETE = object()
SCORE = ("conditions", 0, "scores", "tiny_choice", "acc")

# (what is wrong, where, new value, the field the first problem must name)
OUTCOMES = ("conditions", 0, "outcomes", "tiny_choice")
MUTATIONS = [
    ("required field missing", ("model", "n_layers"), DELETE, "model"),
    ("unknown field", ("model", "favourite_colour"), "blue", "model"),
    ("string where a number belongs", SCORE + ("value",), "N/A", "conditions[0].scores.tiny_choice.acc.value"),
    ("old schema version", ("schema_version",), "1.0", "schema_version"),
    ("bad sha256", ("model", "weights_sha256"), "xyz", "model.weights_sha256"),
    ("bad release date", ("model", "release_date"), "May 2025", "model.release_date"),
    ("over-long string", ("model", "family"), "x" * 500, "model.family"),
    ("fraction above 1", ("profile", "alpha_mean"), 1.5, "profile.alpha_mean"),
    ("an alpha above 1 in a table", ("profile", "alpha_by_head", 0, 0), 1.5, "profile.alpha_by_head"),
    ("accuracy that its documents do not give", SCORE + ("value",), 0.9, "conditions[0].scores.tiny_choice.acc.value"),
    ("stderr that its documents do not give", SCORE + ("stderr",), 0.5, "conditions[0].scores.tiny_choice.acc.stderr"),
    ("interval that does not hold the value", SCORE + ("ci_high",), 0.0, "conditions[0].scores.tiny_choice.acc"),
    ("an outcome that is not 0 or 1", OUTCOMES + ("acc", 0), 2, "conditions[0]"),
    ("outcomes not aligned with n", OUTCOMES + ("acc",), [0, 1], "conditions[0].outcomes.tiny_choice.acc"),
    ("more documents than the task lists", OUTCOMES + ("n",), 9, "conditions[0].outcomes.tiny_choice"),
    ("a document id out of order", ("tasks", "tiny_choice", "documents", "ids", 0), 7, "tasks.tiny_choice.documents.ids"),
    ("partial without a reason", ("status",), "partial", "status"),
    ("name does not match spec", ("conditions", 1, "name"), "bos=keep,prefix=9", "conditions[1].name"),
    ("role does not match spec", ("conditions", 1, "role"), "knockout", "conditions[1].role"),
    ("identical_to names no earlier condition", ("conditions", 1, "identical_to"), "bos=double", "conditions[1].identical_to"),
    ("task not described", ("conditions", 0, "tasks", 0), "tiny_unknown", "conditions[0].tasks"),
    ("alpha table of the wrong shape", ("profile", "alpha_by_head", 0), [0.1], "profile.alpha_by_head"),
    ("alpha mean inconsistent", ("profile", "alpha_mean"), 0.999, "profile.alpha_mean"),
    ("per-text values that do not give the mean", ("profile", "per_text", "alpha_mean", 0), 0.9, "profile.per_text.alpha_mean"),
    ("sweep lengths not increasing", ("profile", "length_sweep", "points", 1, "T"), 8, "profile.length_sweep.points"),
    ("link counts inconsistent", ("conditions", 0, "link", "tiny_choice", "n"), 99, "conditions[0].link.tiny_choice"),
    ("summary disagrees with the record", ("summary", "suite_score", "value"), 0.123, "summary.suite_score.value"),
    ("summary interval disagrees", ("summary", "suite_score", "ci_high"), 0.99, "summary.suite_score.ci_high"),
    ("summary column missing", ("summary", "sink_growth"), DELETE, "summary.sink_growth"),
]


@pytest.mark.parametrize("what, path, value, field", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_validate_rejects(record, what, path, value, field):
    broken = copy.deepcopy(record)
    _set(broken, path, value)
    if path == ("status",):
        broken["missing"] = []  # without the data directory the fixture's record is partial with its reason
    found = problems(broken)
    assert found, what
    assert found[0].startswith(field), found[0]


def test_a_flipped_document_outcome_disagrees_with_its_aggregate(record):
    """The aggregate and every analytic interval are recomputed from the documents: one flip is caught."""
    broken = copy.deepcopy(record)
    outcomes = broken["conditions"][0]["outcomes"]["tiny_cloze"]["acc"]
    outcomes[0] = 1 - outcomes[0]
    found = problems(broken)
    assert found and found[0].startswith("conditions[0].scores.tiny_cloze.acc.value: ") and "per-document" in found[0]


def test_a_duplicate_condition_and_a_twin_that_differs_are_caught(record):
    twice = copy.deepcopy(record)
    twice["conditions"].append(copy.deepcopy(twice["conditions"][0]))
    assert any("appears twice" in p for p in problems(twice))
    twin = copy.deepcopy(record)
    twin["conditions"][1]["identical_to"] = "bos=keep"  # bos=drop's scores differ from keep's here
    assert any("differ from 'bos=keep'" in p for p in problems(twin))


def test_a_complete_suite_record_needs_the_whole_grid(record):
    claimed = copy.deepcopy(record)
    claimed["provenance"]["suite"]["custom_grid"] = False
    claimed["status"], claimed["missing"] = "complete", []  # as it is with the data directory
    assert any("lacks the suite's condition bos=keep,prefix=256" in p for p in problems(claimed))


def test_json_that_is_not_a_record(tmp_path, capsys):
    for text, message in [('{"a": NaN}', "NaN is not allowed"), ('{"a": 1, "a": 2}', "duplicate key 'a'")]:
        path = tmp_path / "bad.json"
        path.write_text(text)
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_validate_cli(record, tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(dumps(record))
    assert main(["validate", str(good)]) == 0
    assert "valid sinkbench record" in capsys.readouterr().out
    broken = copy.deepcopy(record)
    broken["profile"]["alpha_mean"] = 1.5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sinkbench: error: {bad}: profile.alpha_mean: 1.5 is greater than the maximum of 1")
    assert err.count("\n") == 1


# ---- the per-example link on hand-made cases -----------------------------------------------


def test_point_biserial_on_a_known_case():
    correct = np.array([0, 0, 1, 1], dtype=float)
    alpha = np.array([0.1, 0.2, 0.3, 0.4])
    # cov = 0.2 / 4, var(correct) = 1 / 4, var(alpha) = 0.05 / 4  ->  r = 0.2 / sqrt(0.05)
    assert point_biserial(correct, alpha) == pytest.approx(0.2 / math.sqrt(0.05))
    assert point_biserial(correct, -alpha) == pytest.approx(-0.2 / math.sqrt(0.05))
    assert point_biserial(np.ones(4), alpha) is None


def test_accuracy_by_quartile_of_first_token_attention():
    alpha = {doc: doc / 10 for doc in range(8)}  # docs 0..7, alpha rising with the id
    correct = {doc: float(doc in (1, 4, 5, 6, 7)) for doc in range(8)}
    link = sink_correctness_link(correct, alpha, seed=0)
    assert [q["accuracy"] for q in link["quartiles"]] == [0.5, 0.0, 1.0, 1.0]
    assert [(q["alpha_low"], q["alpha_high"]) for q in link["quartiles"]] == [(0.0, 0.1), (0.2, 0.3), (0.4, 0.5), (0.6, 0.7)]
    assert link["n"] == 8 and link["ci_low"] <= link["point_biserial"] <= link["ci_high"]
    assert link == sink_correctness_link(correct, alpha, seed=0)  # seeded bootstrap: deterministic


def test_the_link_says_why_it_has_no_correlation():
    link = sink_correctness_link({0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, {d: d / 10 for d in range(5)})
    assert link["point_biserial"] is None and "correctness is the same" in link["note"]
    assert sink_correctness_link({0: 1.0}, {0: 0.5})["note"].startswith("only 1 documents")


def test_quartiles_of_fewer_than_four_documents():
    assert [q["n"] for q in quartiles(np.array([1.0, 0.0]), np.array([0.2, 0.1]))] == [1, 1]


# ---- the summary columns -------------------------------------------------------------------


def test_column_names_are_unique_and_directions_known():
    names = [c.name for c in COLUMNS]
    assert len(names) == len(set(names))
    assert {c.direction for c in COLUMNS} <= {"higher", "lower", "neutral"}


def _exact(**options):
    from sinkbench.testing.records import make_record

    return make_record(docs=100, sweep_docs=100, retrieval_docs=20, **options)


def test_dependence_columns_on_hand_made_records():
    # docs=100, task offsets -0.04/0/+0.04: keep 0.56/0.60/0.64 (S = 0.6), drop x0.75 -> 0.42/0.45/0.48
    # (S = 0.45), knockout x0.5 -> 0.28/0.30/0.32 (S = 0.3): every count a whole number of documents.
    summary = _exact(score=0.6, bos_dependence=0.25, knockout_dependence=0.5)["summary"]
    assert summary["suite_score"]["value"] == pytest.approx(0.6)
    assert summary["bos_dependence"]["value"] == pytest.approx(0.25)  # (0.6 - 0.45) / 0.6
    assert summary["knockout_dependence"]["value"] == pytest.approx(0.5)  # (0.6 - 0.3) / 0.6
    for name in ("bos_dependence", "knockout_dependence"):
        entry = summary[name]
        assert entry["ci_low"] < entry["value"] < entry["ci_high"] and "paired" in entry["method"]
        assert entry["mde"] == pytest.approx(2.801585 * entry["stderr"], rel=1e-5)
    flagged = _exact(adds_bos=False)["summary"]["bos_dependence"]
    assert flagged["value"] == 0 and flagged["by_construction"] and "adds no <bos>" in flagged["note"]


def test_length_robustness_is_the_mean_normalised_score_over_the_sweep():
    # Sweep tasks LAMBADA and ARC-Easy (0.56, 0.64: S(0) = 0.6); robustness 0.7 over three lengths scales
    # them by 0.9, 0.8, 0.7 -> S = 0.54, 0.48, 0.42 (50+58, 45+51, 39+45 of 100 documents each).
    entry = _exact(score=0.6, robustness=0.7)["summary"]["length_robustness"]
    assert entry["value"] == pytest.approx((0.9 + 0.8 + 0.7) / 3)
    assert "256, 1024, 4096" in entry["note"]


def test_effective_context_on_a_known_curve():
    # 20 documents per length, accuracies 1.0, 0.95, 0.9, 0.75 at 512..4096: >= 0.9 of 1.0 up to 2048.
    entry = _exact(retrieval=(1.0, 0.95, 0.9, 0.75))["summary"]["effective_context"]
    assert entry["value"] == 2048
    assert entry["ci_low"] <= 2048 <= entry["ci_high"]
    failing = _exact(retrieval=(0.4, 0.3, 0.2, 0.1))["summary"]["effective_context"]
    assert failing["value"] is None and "fails at the shortest length (512 tokens" in failing["note"]
    from sinkbench.record.columns import effective_length

    assert effective_length([512, 1024, 2048], [0.8, 0.6, 0.79]) == 512  # must stay above: no comeback counts


def test_effective_context_interval_on_hand_computed_bounds():
    from sinkbench.record.columns import effective_bounds
    from sinkbench.record.stats import simultaneous_wilson

    lengths = [512, 1024, 2048, 4096]
    # k = 4: z = Phi^-1(1 - 0.05 / 8) = 2.49771. All n of n right: Wilson bounds [1 / (1 + z^2 / n), 1].
    z2 = 2.4977054744787656 ** 2
    (low, high), = simultaneous_wilson([12], [12], confidence=1 - 0.05 / 4)  # one length at the level of four
    assert low == pytest.approx(1 / (1 + z2 / 12)) and high == 1.0  # 0.6580
    # 12/12 everywhere: the others' lower bounds (0.658) fall under 0.9 x 1.0 -> 512; at their best, the
    # shortest at 0.658 asks only 0.592 of the others -> 4096. Few documents cannot pin it down.
    assert effective_bounds(lengths, [12] * 4, [12] * 4) == (512, 4096)
    # 100/100 everywhere: lower bounds 1 / (1 + z^2 / 100) = 0.9413 >= 0.9 x 1.0 -> 4096 at the worst too.
    assert 1 / (1 + z2 / 100) > 0.9
    assert effective_bounds(lengths, [100] * 4, [100] * 4) == (4096, 4096)
    # The shortest at 6/10: its simultaneous lower bound is under 0.5 -> the interval starts at 0 (may fail).
    lows = simultaneous_wilson([6, 10, 10, 10], [10] * 4)
    assert lows[0][0] < 0.5
    assert effective_bounds(lengths, [6, 10, 10, 10], [10] * 4)[0] == 0


def test_effective_context_entry_carries_the_simultaneous_interval():
    entry = _exact(retrieval=(1.0, 1.0, 1.0, 1.0))["summary"]["effective_context"]  # 20 documents per length
    # 20/20: lower bounds 1 / (1 + z^2 / 20) = 0.762 < 0.9 -> the worst case is 512; the best is 4096.
    assert (entry["value"], entry["ci_low"], entry["ci_high"]) == (4096, 512, 4096)
    assert "simultaneous" in entry["method"] and "4096 is the longest length tested" in entry["note"]


def test_a_length_beyond_the_context_is_skipped_and_the_longest_computed_prefix_is_used():
    record = _exact(max_context=2048)
    skipped = {c["name"]: c["skipped"] for c in record["conditions"] if c["skipped"]}
    assert "beyond the model's context" in next(iter(skipped["bos=keep,prefix=4096"].values()))
    assert set(skipped) >= {"bos=keep,prefix=4096", "bos=keep"}  # and the 4096-token pass-key under the baseline
    assert record["summary"]["sink_share_at_longest_prefix"]["note"] == "prefix=1024 tokens over none"
    assert "256, 1024 tokens" in record["summary"]["length_robustness"]["note"]


def test_streaming_gap_sink_growth_and_massive_activation_by_hand():
    from sinkbench.testing.records import make_record

    record = make_record()
    only = next(c for c in record["conditions"] if c["role"] == "window_only")
    sinks = next(c for c in record["conditions"] if c["role"] == "window_sinks")
    words = record["tasks"]["sinkbench_book_ppl_quick"]["documents"]["words"]
    only["outcomes"]["sinkbench_book_ppl_quick"]["loglik"] = [-2.0 * w for w in words]  # ppl e^2
    sinks["outcomes"]["sinkbench_book_ppl_quick"]["loglik"] = [-1.0 * w for w in words]  # ppl e
    points = record["profile"]["length_sweep"]["points"]
    points[0]["per_text"]["alpha_mean"] = [0.4, 0.4, 0.4, 0.4]
    points[-1]["per_text"]["alpha_mean"] = [0.1, 0.1, 0.1, 0.1]
    record["profile"]["massive_activations"]["ratio_by_text"] = [[1.0, 10.0, 2.0, 3.0], [3.0, 30.0, 2.0, 1.0]] * 10
    summary = compute_summary(record)
    assert summary["streaming_gap"].value == pytest.approx(math.e)
    assert summary["sink_growth"].value == pytest.approx(0.25)
    # 4 texts per length: too few for a bootstrap interval, and the record says so rather than understate it.
    assert summary["sink_growth"].ci_low is None and "4 texts at T=" in summary["sink_growth"].note
    points[0]["per_text"]["alpha_mean"] = [0.4, 0.5] * 4
    points[-1]["per_text"]["alpha_mean"] = [0.1, 0.15] * 4  # 8 texts each: ratio of means 0.125 / 0.45
    growth = compute_summary(record)["sink_growth"]
    assert growth.value == pytest.approx(0.125 / 0.45)
    assert growth.ci_low < growth.value < growth.ci_high and "bootstrap" in growth.method
    assert summary["massive_activation_ratio"].value == pytest.approx(20.0) and summary["massive_activation_ratio"].note == "layer 1"


def test_machine_facts_carry_no_interval_and_say_why():
    summary = _exact()["summary"]
    for name in ("throughput", "wall_time_s"):
        assert summary[name]["ci_low"] is None and "machine" in summary[name]["note"]
