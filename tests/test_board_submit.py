"""`sinkbench submit`: a good record is filed where its family, model and revision say; every refusal
exits 2 with the field at fault named, no traceback, and leaves the board folder byte-identical."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from board_helpers import STANDARD, record, run_cli, snapshot, write, write_json
from sinkbench.board.store import path_component, plain_strings, record_problems, string_problems, submission_path
from sinkbench.files import field_path
from sinkbench.grid.suite import SUITES
from sinkbench.record import stats
from sinkbench.testing.records import resummarised
from sinkbench.record.format import MAX_RECORD_BYTES, dumps
from sinkbench.record.link import sink_correctness_link
from sinkbench.record.scores import WEIGHTED, metric_estimate, uses_loglik

ROOT = Path(__file__).resolve().parents[1]
SUITE = SUITES["quick"]


@pytest.fixture
def board(tmp_path):
    """A board holding one submission and a built README, as a board in git would."""
    board = tmp_path / "board"
    filed = record(model="gemma-7b", revision="b1")
    write(filed, board / submission_path(filed))
    (board / "README.md").write_text("# built earlier\n")
    return board


def test_submit_files_the_record_where_its_identity_says(tmp_path, board, capsys):
    new = record(model="gemma-2b", revision="a1")
    code = run_cli(["submit", write(new, tmp_path / "new.json"), "--board", board])
    assert code == 0
    filed = board / "submissions" / "gemma" / "gemma-2b" / "a1.json"
    assert filed.read_text(encoding="utf-8") == dumps(new)  # canonical text
    assert "filed" in capsys.readouterr().out


def test_revision_falls_back_to_the_weights_hash(tmp_path, board):
    sha = "ab" * 32
    new = record(model="local-ckpt", revision=None, weights_sha256=sha)
    assert run_cli(["submit", write(new, tmp_path / "new.json"), "--board", board]) == 0
    assert (board / "submissions" / "gemma" / "local-ckpt" / f"{sha[:12]}.json").is_file()


def test_replace_overwrites_the_same_model_and_revision(tmp_path, board):
    again = record(model="gemma-7b", revision="b1", score=0.65)
    path = write(again, tmp_path / "again.json")
    assert run_cli(["submit", path, "--board", board]) == 2
    assert run_cli(["submit", path, "--board", board, "--replace"]) == 0
    filed = json.loads((board / "submissions/gemma/gemma-7b/b1.json").read_text())
    assert filed["summary"]["suite_score"]["value"] == pytest.approx(0.65)


def test_a_first_submission_creates_the_board(tmp_path):
    board = tmp_path / "fresh"
    assert run_cli(["submit", write(record(), tmp_path / "r.json"), "--board", board]) == 0
    assert (board / "submissions" / "gemma" / "gemma-7b" / "r1.json").is_file()


@pytest.mark.parametrize("text, component", [
    ("gemma-7b", "gemma-7b"), ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB__SmolLM2-135M"),
    ("Qwen2.5 0.5B (instruct)", "Qwen2.5-0.5B-instruct"), ("..", None), (".hidden", None), ("../../etc", None),
    ("/abs", None), ("<>|", None), ("CON", None), ("nul.txt", None), ("a" * 101, None), ("v1.", None),
])
def test_path_components(text, component):
    assert path_component(text) == component


def _mutated(change):
    def make(tmp_path):
        r = record()
        change(r)
        return write_json(r, tmp_path / "bad.json")  # ASCII JSON: a lone surrogate travels as \ud800

    return make


def _text(text):
    def make(tmp_path):
        path = tmp_path / "bad.json"
        path.write_text(text, encoding="utf-8")
        return path

    return make


def _bytes(data):
    def make(tmp_path):
        path = tmp_path / "bad.json"
        path.write_bytes(data)
        return path

    return make


def _too_large(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_RECORD_BYTES + 1)  # sparse: no time spent writing
    return path


def _set(path, value):
    def change(r):
        *parents, last = path
        target = r
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _drop_condition(r):
    r["conditions"] = [c for c in r["conditions"] if c["name"] != "bos=drop,prefix=4096"]


def _drop_scores(r):
    del r["conditions"][0]["scores"]["sinkbench_piqa_quick"]
    r["summary"] = resummarised(r)  # still a valid record: only the board's grid check fails


def _partial(r):
    r["status"], r["missing"] = "partial", ["the run was stopped"]


REJECTIONS = {
    "missing file": (lambda tmp_path: tmp_path / "nothing.json", "record not found"),
    "not JSON": (_text("{not json"), "not valid record JSON"),
    "NaN": (_text('{"a": NaN}'), "NaN is not allowed"),
    "duplicate key": (_text('{"a": 1, "a": 2}'), "duplicate key 'a'"),
    "not an object": (_text("[1, 2]"), "a record is a JSON object"),
    "too large": (_too_large, "more than the"),
    "nested too deeply": (_text("[" * 200_000 + "]" * 200_000), "nested too deeply"),
    "not UTF-8": (_bytes(b"\xff\xfe{}"), "not UTF-8"),
    "schema": (_mutated(lambda r: r["model"].pop("family")), "model: 'family' is a required property"),
    "wrong summary": (_mutated(_set(["summary", "suite_score", "value"], 0.99)), "summary.suite_score.value"),
    "partial": (_mutated(_partial), "status: the record is partial"),
    "custom grid": (_mutated(_set(["provenance", "suite", "custom_grid"], True)), "provenance.suite.custom_grid"),
    "unknown suite": (_mutated(_set(["provenance", "suite", "name"], "mine")), "provenance.suite.name: 'mine'"),
    "old suite version": (_mutated(_set(["provenance", "suite", "version"], "0.9")), "provenance.suite.version: '0.9'"),
    "grid incomplete": (_mutated(_drop_condition), "lacks the suite's condition bos=drop,prefix=4096"),
    "scores incomplete": (_mutated(_drop_scores), "conditions[0].skipped: sinkbench_piqa_quick neither scored nor said why not"),
    "no revision": (_mutated(_set(["model", "revision"], None)), "model.revision: null"),
    "family ..": (_mutated(_set(["model", "family"], "..")), "model.family: '..' cannot become a file name"),
    "model escapes": (_mutated(_set(["model", "name"], "../../../etc/passwd")), "model.name: '../../../etc/passwd'"),
    "absolute revision": (_mutated(_set(["model", "revision"], "/tmp/x")), "model.revision: '/tmp/x'"),
    "long string": (_mutated(_set(["model", "name"], "m" * 5000)), "model.name: 5000 characters"),
    "control character": (_mutated(_set(["model", "name"], "evil\x1b[31m")), "model.name: contains the control character U+001B"),
    "lone surrogate": (_mutated(_set(["model", "family"], "\ud800")), "model.family: contains the control character U+D800"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejections_leave_the_board_byte_identical(case, tmp_path, board, capsys):
    make, expected = REJECTIONS[case]
    path = make(tmp_path)
    before = snapshot(board)
    assert run_cli(["submit", path, "--board", board]) == 2
    err = capsys.readouterr().err
    assert snapshot(board) == before
    assert err.startswith("sinkbench: error: ") and err.count("\n") == 1, err  # one line
    assert expected in err
    assert "Traceback" not in err


def test_duplicate_is_refused_without_replace(tmp_path, board, capsys):
    before = snapshot(board)
    assert run_cli(["submit", write(record(model="gemma-7b", revision="b1"), tmp_path / "r.json"), "--board", board]) == 2
    assert "already on the board; --replace overwrites it" in capsys.readouterr().err
    assert snapshot(board) == before


def test_a_name_colliding_with_another_model_is_refused_even_with_replace(tmp_path, board, capsys):
    before = snapshot(board)
    other = record(model="gemma 7b", revision="b1")  # the same file name as gemma-7b
    assert run_cli(["submit", write(other, tmp_path / "r.json"), "--board", board, "--replace"]) == 2
    assert "already holds 'gemma-7b'" in capsys.readouterr().err
    assert snapshot(board) == before


def test_another_suite_version_on_the_board_is_named(tmp_path, capsys):
    board = tmp_path / "board"
    old = record(suite_version="1.0", check=False)  # filed by hand before the suite changed
    write(old, board / submission_path(old))
    before = snapshot(board)
    assert run_cli(["submit", write(record(model="gemma-2b"), tmp_path / "r.json"), "--board", board]) == 2
    err = capsys.readouterr().err
    assert f"the record is quick {SUITE.version}, the board holds quick 1.0: 1 record" in err
    assert snapshot(board) == before


def test_records_of_another_suite_share_the_board(tmp_path, board):
    other = record(**STANDARD)
    assert run_cli(["submit", write(other, tmp_path / "r.json"), "--board", board]) == 0
    assert (board / submission_path(other)).is_file()
    assert run_cli(["board", "build", "--board", board]) == 0
    assert "## Suite standard 4.0" in (board / "README.md").read_text(encoding="utf-8")


def test_one_model_and_revision_holds_a_record_of_each_suite(tmp_path, board):
    quick, standard = record(**{**STANDARD, "suite": "quick"}), record(**STANDARD)
    for made, name in ((quick, "q1.json"), (standard, "q1.standard.json")):
        assert run_cli(["submit", write(made, tmp_path / name), "--board", board]) == 0
        assert (board / "submissions" / "qwen2" / "Qwen2.5-0.5B" / name).is_file()
    assert run_cli(["submit", write(standard, tmp_path / "again.json"), "--board", board]) == 2  # still one per suite
    assert run_cli(["board", "build", "--board", board]) == 0
    pages = board / "site" / "models" / "qwen2" / "Qwen2.5-0.5B"
    assert (pages / "q1.html").is_file() and (pages / "q1.standard.html").is_file()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this system")
def test_a_link_inside_the_board_is_not_written_through(tmp_path, board, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (board / "submissions" / "linked").symlink_to(outside, target_is_directory=True)
    before = snapshot(board)
    assert run_cli(["submit", write(record(family="linked"), tmp_path / "r.json"), "--board", board]) == 2
    assert "contain a link" in capsys.readouterr().err
    assert snapshot(board) == before and list(outside.iterdir()) == []


def test_refusal_from_the_command_line_is_one_line_without_traceback(tmp_path):
    """The real entry point in a fresh process (once sinkbench/cli.py calls add_commands)."""
    if "add_commands" not in (ROOT / "sinkbench" / "cli.py").read_text():
        pytest.skip("sinkbench/cli.py does not call sinkbench.board.cli.add_commands yet")
    bad = write_json({"schema_version": "2.0"}, tmp_path / "bad.json")
    done = subprocess.run([sys.executable, "-m", "sinkbench.cli", "submit", str(bad), "--board", str(tmp_path / "b")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("sinkbench: error: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "b").exists()


def test_a_broken_file_on_the_board_is_named_and_nothing_is_filed(tmp_path, board, capsys):
    broken = board / "submissions" / "x" / "y" / "z.json"
    write_json({"model": 1}, broken)
    before = snapshot(board)
    assert run_cli(["submit", write(record(model="gemma-2b"), tmp_path / "r.json"), "--board", board]) == 2
    err = capsys.readouterr().err
    assert "submissions/x/y/z.json: not a record the board can read (record: missing 'schema_version')" in err
    assert err.rstrip().endswith("fix the board first")
    assert snapshot(board) == before


@pytest.mark.parametrize("name", ["evil\x1b[31m", "\ud800", "m" * 1001, "c1\x85", "del\x7f", "bell\x07"])
def test_the_fast_string_check_never_passes_what_the_walk_refuses(name):
    bad = record()
    bad["model"]["name"] = name
    assert string_problems(bad)
    assert not plain_strings(dumps(bad)) and not plain_strings(json.dumps(bad))  # ours, and ASCII JSON


def test_the_fast_string_check_passes_a_clean_record():
    clean = record()
    clean["model"]["name"] = "line\nbreak\tand é"  # allowed: newline, tab, any letter
    assert string_problems(clean) == [] and plain_strings(dumps(clean))


# ---- a value of the wrong type at every per-document list and every summary field of a real record ----------

REAL = ROOT / "leaderboard" / "submissions" / "smollm2" / "smollm2-135m" / "b179c9523d0e.json"
KEPT_DOCUMENTS = 24  # the real record cut to its first 24 documents per task: every list and field stays, validation is fast


def _cut_to_first_documents(real: dict, keep: int) -> dict:
    """The real record with each task cut to its first `keep` documents; scores, links and summary made again
    from what is left, as `sinkbench run` makes them (the same functions, the same seeds)."""
    cut = json.loads(json.dumps(real))
    seed = cut["provenance"]["seed"]
    for entry in cut["tasks"].values():
        entry["documents"] = {name: None if values is None else values[:keep] for name, values in entry["documents"].items()}
    for condition in cut["conditions"]:
        for task, outcome in condition["outcomes"].items():
            n = min(outcome["n"], keep)
            condition["outcomes"][task] = {name: n if name == "n" else values[:n] for name, values in outcome.items()}
            documents = cut["tasks"][task]["documents"]
            for metric in condition["scores"][task]:
                sizes = documents.get(WEIGHTED.get(metric, ""))
                loglik = condition["outcomes"][task].get("loglik")
                condition["scores"][task][metric] = metric_estimate(
                    metric, None if uses_loglik(metric) else np.asarray(condition["outcomes"][task][metric], dtype=float),
                    None if loglik is None else np.asarray(loglik), None if sizes is None else np.asarray(sizes[:n], dtype=float),
                    stats.seed_for(seed, task, metric))
        for task, link in condition["link"].items():
            outcome = condition["outcomes"][task]
            condition["link"][task] = {"metric": link["metric"], **sink_correctness_link(
                dict(enumerate(outcome[link["metric"]])), dict(enumerate(outcome["alpha"])), seed=seed)}
    cut["summary"] = resummarised(cut)
    return cut


def _per_document_lists(r: dict) -> list[tuple]:
    """The path of every per-document (per-text, per-sequence) list of a record."""
    paths = [("tasks", task, "documents", name) for task, entry in r["tasks"].items()
             for name, values in entry["documents"].items() if values is not None]
    paths += [("conditions", i, "outcomes", task, name) for i, c in enumerate(r["conditions"])
              for task, outcome in c["outcomes"].items() for name in outcome if name != "n"]
    points = r["profile"]["length_sweep"]["points"]
    for part in [("profile",)] + [("profile", "length_sweep", "points", i) for i in range(len(points))]:
        per_text = r["profile"]["per_text"] if len(part) == 1 else points[part[-1]]["per_text"]
        paths += [(*part, "per_text", "hashes"), (*part, "per_text", "alpha_mean")]
        paths += [(*part, "per_text", "sink_rate", eps) for eps in per_text["sink_rate"]]
    paths.append(("profile", "massive_activations", "ratio_by_text"))
    paths += [("profile", "overmixing", variant, "last_layer_by_sequence")
              for variant, entry in r["profile"]["overmixing"].items() if entry is not None]
    return paths


# Wrong values for an item of a list of numbers (ids and hashes included: a number where a string belongs
# is tried through the nested list and the object), and for each type of summary field.
WRONG_ITEMS = ("0.5", True, [0.5], None, {"value": 0.5})
WRONG_FIELDS = {
    "number": ("0.5", True, [0.5], {"value": 0.5}, None),  # None: only where the record states a number
    "n": (None, "8", 1.5, True),
    "method": (None, 3, ["none"]),
    "note": (3, True, ["why"]),
    "by_construction": (None, 0, "false"),
}


NULLABLE_ITEMS = ("alpha", "text_start")


def _hostile_cases() -> list[tuple]:
    """(id, path, how, wrong value): each list gets one wrong item (the kinds taken in turn) and one entry
    too few; each summary field one wrong value of its kind (in turn)."""
    real = json.loads(REAL.read_text(encoding="utf-8"))
    cases = []
    for index, path in enumerate(_per_document_lists(real)):
        # A document's α may be null (no query of it could see the first token in any layer): not a wrong item there.
        choices = [w for w in WRONG_ITEMS if not (w is None and path[-1] in NULLABLE_ITEMS)]
        cases.append((f"{field_path(path)} item", path, "item", choices[index % len(choices)]))
        cases.append((f"{field_path(path)} length", path, "length", None))
    for index, (column, entry) in enumerate((c, e) for c, e in real["summary"].items()):
        for key, stated in entry.items():
            kind = key if key in WRONG_FIELDS else "number"
            choices = [w for w in WRONG_FIELDS[kind] if not (w is None and kind == "number" and stated is None)]
            cases.append((f"summary.{column}.{key}", ("summary", column, key), "set", choices[index % len(choices)]))
    return cases


HOSTILE_CASES = _hostile_cases() if REAL.is_file() else []


@pytest.fixture(scope="module")
def small_real():
    real = json.loads(REAL.read_text(encoding="utf-8"))
    cut = _cut_to_first_documents(real, KEPT_DOCUMENTS)
    assert record_problems(cut) == []  # the cut record is itself a valid submission
    return cut


@pytest.fixture(scope="module")
def shared_board(tmp_path_factory):
    board = tmp_path_factory.mktemp("board")
    filed = record(model="gemma-7b", revision="b1")
    write(filed, board / submission_path(filed))
    return board, snapshot(board)


def _mutate(r: dict, path: tuple, how: str, wrong):
    *parents, last = path
    parent = r
    for part in parents:
        parent = parent[part]
    values = parent[last]
    if how == "set":
        parent[last] = wrong
    elif how == "length":
        parent[last] = values[:-1]
    else:
        changed = list(values)
        if isinstance(changed[0], list):  # texts x layers: an item of the first row
            changed[0] = [wrong, *changed[0][1:]]
        else:
            changed[len(changed) // 2] = wrong
        parent[last] = changed


def _named(path: tuple, how: str) -> str:
    """What the one line must name: the field; for a list one entry short, the part that holds it (the list
    or its aligned neighbour may be the one at fault)."""
    return field_path(path if how != "length" else path[:-1])


def _kind(case) -> tuple:
    """Where a case is (documents, outcomes, profile, summary), how it breaks it and with what type of value."""
    _, path, how, wrong = case
    return path[0] if path[0] != "conditions" else "outcomes", how, type(wrong).__name__


ONE_OF_EACH_KIND = list({_kind(case): case for case in reversed(HOSTILE_CASES)}.values())[::-1]
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="the board's SmolLM2 record is not in this checkout")


@needs_real
@pytest.mark.slow
@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[c[0] for c in HOSTILE_CASES])
def test_a_malformed_value_anywhere_is_a_problem_naming_its_path(case, small_real):
    """Every per-document list and summary field of the real record (the checks submit and validate run,
    in process): no exception, and the first problem names the field."""
    _, path, how, wrong = case
    bad = copy.deepcopy(small_real)
    _mutate(bad, path, how, wrong)
    found = record_problems(bad)
    assert found and found[0].startswith(_named(path, how)), found[:3]


@needs_real
@pytest.mark.parametrize("case", ONE_OF_EACH_KIND, ids=[c[0] for c in ONE_OF_EACH_KIND])
def test_a_malformed_value_is_one_line_and_exit_2_from_submit_and_validate(case, small_real, shared_board, tmp_path,
                                                                           capsys):
    """One case of each kind (where, how, what type) through the command line: exit 2, one line naming the field,
    no traceback, the board untouched."""
    _, path, how, wrong = case
    bad = copy.deepcopy(small_real)
    _mutate(bad, path, how, wrong)
    file = write_json(bad, tmp_path / "bad.json")
    board, before = shared_board
    for argv in (["submit", file, "--board", board], ["validate", file]):
        assert run_cli(argv) == 2, argv[0]
        err = capsys.readouterr().err
        assert err.startswith("sinkbench: error: ") and err.count("\n") == 1, err
        assert f": {_named(path, how)}" in err and "Traceback" not in err, err
    assert snapshot(board) == before
