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
MUTATIONS = [
    ("required field missing", ("model", "n_layers"), DELETE, "model"),
    ("unknown field", ("model", "favourite_colour"), "blue", "model"),
    ("string where a number belongs", SCORE + ("value",), "N/A", "conditions[0].scores.tiny_choice.acc.value"),
    ("wrong schema version", ("schema_version",), "0.9", "schema_version"),
    ("bad sha256", ("model", "weights_sha256"), "xyz", "model.weights_sha256"),
    ("bad release date", ("model", "release_date"), "May 2025", "model.release_date"),
    ("over-long string", ("model", "family"), "x" * 500, "model.family"),
    ("fraction above 1", ("profile", "alpha_mean"), 1.5, "profile.alpha_mean"),
    ("accuracy outside [0, 1]", SCORE + ("value",), 1.5, "conditions[0].scores.tiny_choice.acc.value"),
    ("null value without a note", SCORE + ("stderr",), None, "conditions[0].scores.tiny_choice.acc"),
    ("partial without a reason", ("status",), "partial", "status"),
    ("name does not match spec", ("conditions", 1, "name"), "bos=keep,prefix=9", "conditions[1].name"),
    ("identical_to names no earlier condition", ("conditions", 1, "identical_to"), "bos=double", "conditions[1].identical_to"),
    ("task not described", ("conditions", 0, "tasks", 0), "tiny_unknown", "conditions[0].tasks"),
    ("alpha table of the wrong shape", ("profile", "alpha_by_head", 0), [0.1], "profile.alpha_by_head"),
    ("alpha mean inconsistent", ("profile", "alpha_mean"), 0.999, "profile.alpha_mean"),
    ("sweep lengths not increasing", ("profile", "length_sweep", "points", 1, "T"), 8, "profile.length_sweep.points"),
    ("link counts inconsistent", ("conditions", 0, "link", "tiny_choice", "n"), 99, "conditions[0].link.tiny_choice"),
    ("summary disagrees with the record", ("summary", "suite_score", "value"), 0.123, "summary.suite_score.value"),
    ("summary column missing", ("summary", "sink_growth"), DELETE, "summary.sink_growth"),
]


@pytest.mark.parametrize("what, path, value, field", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_validate_rejects(record, what, path, value, field):
    broken = copy.deepcopy(record)
    _set(broken, path, value)
    found = problems(broken)
    assert found, what
    assert found[0].startswith(field), found[0]


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
    assert any("lacks the suite's condition bos=keep,prefix=1024" in p for p in problems(claimed))


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


def test_dependence_columns_on_hand_made_scores(record):
    made = copy.deepcopy(record)
    accuracy = [t for t, spec in made["tasks"].items() if spec["kind"] == "accuracy"]
    for condition, value in zip(made["conditions"][:3], (0.8, 0.2, 0.4)):  # keep, drop, knockout
        for task in accuracy:
            condition["scores"][task]["acc"]["value"] = value
    summary = compute_summary(made)
    assert summary["suite_score"]["value"] == pytest.approx(0.8)
    assert summary["bos_dependence"]["value"] == pytest.approx(0.75)  # (0.8 - 0.2) / 0.8
    assert summary["knockout_dependence"]["value"] == pytest.approx(0.5)
    made["model"]["adds_bos"] = False
    flagged = compute_summary(made)["bos_dependence"]
    assert flagged["value"] == 0 and "adds no <bos>" in flagged["note"]
