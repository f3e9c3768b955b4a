"""`board track`, `board compare` and `export --model-index`: release order, column and head changes,
regression thresholds with their exit codes (0 fine, 1 regression, 2 bad input), model-card YAML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml

from board_records import HOSTILE, HOSTILE_NAME, alpha_table, record, run_cli, write
from sinkbench.board.store import submission_path
from sinkbench.board.track import Thresholds, regressions
from sinkbench.record.columns import COLUMNS_BY_NAME

SVG = "{http://www.w3.org/2000/svg}"


def file_board(board, options_list):
    for options in options_list:
        r = record(**options)
        write(r, board / submission_path(r))
    return board


# Releases of one family, filed out of order; revision "z9" came out first.
ACME = [
    dict(family="acme", model="acme-1b", revision="a2", release_date="2024-03-01", score=0.62, bos_dependence=0.30),
    dict(family="acme", model="acme-1b", revision="z9", release_date="2024-01-01", score=0.60, bos_dependence=0.30),
    dict(family="acme", model="acme-1b", revision="b1", release_date="2024-03-01", score=0.63, bos_dependence=0.31),
    dict(family="other", model="o-1", revision="r1", release_date="2024-02-01"),
]


def _order(out: str) -> list[str]:
    return [line.split("revision ")[1] for line in out.splitlines() if line.startswith("[")]


def test_track_lists_releases_by_date_then_revision(tmp_path, capsys):
    board = file_board(tmp_path / "board", ACME)
    assert run_cli(["board", "track", "acme", "--board", board]) == 0
    out = capsys.readouterr().out
    assert _order(out) == ["z9", "a2", "b1"]
    assert "suite score ↑                       0.620     +0.020" in out  # a2 against z9
    assert "No regression of the latest release [3] against [2]." in out


def test_track_exit_1_when_the_latest_release_regresses(tmp_path, capsys):
    board = file_board(tmp_path / "board", [*ACME, dict(family="acme", model="acme-1b", revision="c1",
                                                        release_date="2024-06-01", score=0.63, bos_dependence=0.40)])
    assert run_cli(["board", "track", "acme", "--board", board]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: the latest release [4] against [3]: <bos> dependence ↓ rose by 0.090" in out
    assert run_cli(["board", "track", "acme", "--board", board, "--max-dependence-rise", "0.1"]) == 0


def test_track_exit_1_on_a_score_drop_and_ignores_an_old_regression(tmp_path, capsys):
    drop = dict(family="acme", model="acme-1b", revision="c1", release_date="2024-06-01", score=0.58, bos_dependence=0.31)
    board = file_board(tmp_path / "board", [*ACME, drop])
    assert run_cli(["board", "track", "acme", "--board", board]) == 1
    assert "suite score ↑ fell by 0.050" in capsys.readouterr().out
    assert run_cli(["board", "track", "acme", "--board", board, "--max-score-drop", "0.06"]) == 0
    recovered = dict(drop, revision="d1", release_date="2024-09-01", score=0.585)
    board = file_board(tmp_path / "board", [recovered])
    assert run_cli(["board", "track", "acme", "--board", board]) == 0  # [4] regressed, the latest [5] did not
    out = capsys.readouterr().out
    assert out.count("  REGRESSION") == 1 and "No regression of the latest release [5]" in out


def test_track_puts_undated_releases_last_and_filters_by_model(tmp_path, capsys):
    board = file_board(tmp_path / "board", [*ACME, dict(family="acme", model="acme-7b", revision="a0", release_date=None, score=0.63)])
    assert run_cli(["board", "track", "acme", "--board", board]) == 0
    assert _order(capsys.readouterr().out) == ["z9", "a2", "b1", "a0"]
    assert run_cli(["board", "track", "acme", "--model", "acme-7b", "--board", board]) == 0
    assert "One release: nothing to compare yet." in capsys.readouterr().out


def test_track_unknown_family_and_bad_thresholds_exit_2(tmp_path, capsys):
    board = file_board(tmp_path / "board", ACME)
    assert run_cli(["board", "track", "nope", "--board", board]) == 2
    assert "no submissions of family 'nope' on the board (families: 'acme', 'other')" in capsys.readouterr().err
    assert run_cli(["board", "track", "acme", "--board", board, "--max-score-drop", "-1"]) == 2
    assert run_cli(["board", "track", "acme", "--board", board, "--max-score-drop", "nan"]) == 2


def test_regression_rule_follows_column_directions():
    base = record(score=0.6, bos_dependence=0.3, knockout_dependence=0.5)["summary"]
    limits = Thresholds()
    assert regressions(base, base, limits) == []
    worse_knockout = record(score=0.6, bos_dependence=0.3, knockout_dependence=0.56)["summary"]
    [found] = regressions(base, worse_knockout, limits)
    assert found.column is COLUMNS_BY_NAME["knockout_dependence"]
    better = record(score=0.7, bos_dependence=0.1, knockout_dependence=0.2)["summary"]
    assert regressions(base, better, limits) == []  # falling dependence, rising score: improvements
    at_limit = record(score=0.58, bos_dependence=0.35, knockout_dependence=0.5)["summary"]
    assert regressions(base, at_limit, limits) == []  # exactly the limit passes


# ---- compare --------------------------------------------------------------------------------


def _tables():
    before = alpha_table(4, 4, 0.6, seed=7)
    after = [row[:] for row in before]
    before[1][2], after[1][2] = 0.1, 0.9  # gains a sink
    before[2][0], after[2][0] = 0.8, 0.05  # loses it
    after[3][3] = before[3][3] + 0.02
    return before, after


def test_compare_lists_columns_and_the_heads_that_changed(tmp_path, capsys):
    before, after = _tables()
    a = write(record(revision="old", alpha_by_head=before), tmp_path / "a.json")
    b = write(record(revision="new", alpha_by_head=after), tmp_path / "b.json")
    assert run_cli(["board", "compare", a, b, "--svg", tmp_path / "diff.svg", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "1 gained a sink (α > 0.3), 1 lost one" in out
    heads = [line.split() for line in out.splitlines() if line.strip().startswith("layer")]
    assert [(h[1], h[3]) for h in heads] == [("1", "2"), ("2", "0"), ("3", "3")]  # largest |change| first
    assert "gained its sink" in " ".join(heads[0]) and "lost its sink" in " ".join(heads[1])
    assert "mean α                              0." in out and "No regression of B against A." in out
    tree = ET.parse(tmp_path / "diff.svg").getroot()
    cells = tree.findall(f".//{SVG}g[@class='cells']/{SVG}rect")
    assert len(cells) == 16 and sum(c.get("stroke") is not None for c in cells) == 2  # the two heads that crossed
    fills = {c.get("fill") for c in cells}
    assert len(fills) > 3  # a diverging scale, not one colour


@pytest.mark.parametrize("new, flags, code", [
    (dict(bos_dependence=0.4), [], 1),
    (dict(bos_dependence=0.4), ["--max-dependence-rise", "0.2"], 0),
    (dict(knockout_dependence=0.6), [], 1),
    (dict(score=0.55), [], 1),
    (dict(score=0.55), ["--max-score-drop", "0.1"], 0),
    (dict(score=0.65, bos_dependence=0.25), [], 0),
])
def test_compare_exit_codes(tmp_path, capsys, new, flags, code):
    a = write(record(score=0.6, bos_dependence=0.3, knockout_dependence=0.5), tmp_path / "a.json")
    b = write(record(**{"score": 0.6, "bos_dependence": 0.3, "knockout_dependence": 0.5, **new}), tmp_path / "b.json")
    assert run_cli(["board", "compare", a, b, *flags]) == code
    out = capsys.readouterr().out
    assert ("REGRESSION of B against A" in out) == (code == 1)


def test_compare_refuses_bad_input(tmp_path, capsys):
    a = write(record(), tmp_path / "a.json")
    other = write(record(layers=5), tmp_path / "other.json")
    assert run_cli(["board", "compare", a, other]) == 0  # columns still compare; heads do not
    assert "Heads not compared: A has 4 x 4 (layers x heads), B has 5 x 4." in capsys.readouterr().out
    assert run_cli(["board", "compare", a, other, "--svg", tmp_path / "x.svg"]) == 2
    assert not (tmp_path / "x.svg").exists()
    old_suite = write(record(suite_version="1.0"), tmp_path / "old.json")
    assert run_cli(["board", "compare", a, old_suite]) == 2
    assert "compare records of one suite version" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text('{"schema_version": "1.0", "status": "complete"}')
    assert run_cli(["board", "compare", a, tmp_path / "broken.json"]) == 2
    assert "broken.json: (record): 'conditions' is a required property" in capsys.readouterr().err


def test_compare_prints_hostile_names_on_one_line(tmp_path, capsys):
    a = write(record(**HOSTILE), tmp_path / "a.json")
    assert run_cli(["board", "compare", a, a]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("A: x|y <script>") and "pwned" in first


# ---- export ---------------------------------------------------------------------------------


def test_export_model_index_yaml(tmp_path, capsys):
    r = record(**HOSTILE)
    assert run_cli(["export", "--model-index", write(r, tmp_path / "r.json")]) == 0
    card = yaml.safe_load(capsys.readouterr().out)
    [entry] = card["model-index"]
    assert entry["name"] == HOSTILE_NAME  # quotes, newline and <script> survive as one YAML string
    [result] = entry["results"]
    assert result["task"]["type"] == "text-generation"
    assert result["dataset"]["name"] == f"sinkbench quick {r['provenance']['suite']['version']}"
    metrics = {m["type"]: m for m in result["metrics"]}
    assert metrics["suite_score"]["value"] == pytest.approx(r["summary"]["suite_score"]["value"])
    assert metrics["suite_score"]["name"] == "suite score" and metrics["suite_score"]["verified"] is False
    assert set(metrics) <= set(COLUMNS_BY_NAME)


def test_export_leaves_out_a_dependence_that_is_zero_by_construction(tmp_path, capsys):
    path = write(record(adds_bos=False), tmp_path / "r.json")
    assert run_cli(["export", "--model-index", path, "--name", "org/model"]) == 0
    [entry] = yaml.safe_load(capsys.readouterr().out)["model-index"]
    assert entry["name"] == "org/model"
    types = {m["type"] for m in entry["results"][0]["metrics"]}
    assert "bos_dependence" not in types and "knockout_dependence" in types


def test_export_refuses_an_invalid_record(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("[]")
    assert run_cli(["export", "--model-index", tmp_path / "bad.json"]) == 2
    assert "a record is a JSON object" in capsys.readouterr().err
