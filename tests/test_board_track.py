"""`board track`, `board compare` and `export --model-index`: paired changes with intervals, MDE and verdicts,
McNemar per task, what is being compared, exit codes (0 fine, 1 regression, 2 bad input), model-card YAML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml

from board_helpers import (HOSTILE, HOSTILE_NAME, degraded, record, rehashed, run_cli, with_heads, with_identity,
                           write)
from sinkbench.board.store import submission_path
from sinkbench.record.columns import COLUMNS_BY_NAME

SVG = "{http://www.w3.org/2000/svg}"
BASE = dict(family="acme", model="acme-1b", revision="a2", release_date="2024-03-01")


def file_records(board, records):
    for r in records:
        write(r, board / submission_path(r))
    return board


def release(revision: str, date: str | None, source: dict | None = None) -> dict:
    """A release of acme-1b: the base record's numbers (or `source`'s) under another revision and date."""
    return with_identity(source or record(**BASE), revision=revision, release_date=date)


def column_line(out: str, title: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(title))


# ---- track ------------------------------------------------------------------------------


def test_track_lists_releases_by_date_then_revision(tmp_path, capsys):
    base = record(**BASE)
    board = file_records(tmp_path / "board", [release("a2", "2024-03-01"), release("z9", "2024-01-01"),
                                              release("b1", "2024-03-01"), record(family="other", model="o-1")])
    assert run_cli(["board", "track", "acme", "--board", board]) == 0
    out = capsys.readouterr().out
    assert [line.split("revision ")[1] for line in out.splitlines() if line.startswith("[")] == ["z9", "a2", "b1"]
    score = column_line(out, "suite score ↑")
    assert f"{base['summary']['suite_score']['value']:.3f}" in score and score.endswith("within noise")
    assert "No regression of the latest release [3] against [2] on suite quick 4.0." in out


def test_track_exit_1_when_the_latest_release_regresses(tmp_path, capsys):
    worse = release("c1", "2024-06-01", degraded(record(**BASE), 0.3))
    board = file_records(tmp_path / "board", [release("z9", "2024-01-01"), release("a2", "2024-03-01"), worse])
    assert run_cli(["board", "track", "acme", "--board", board]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION of [3] against [2]: suite score ↑ fell by 0.183" in out
    assert "REGRESSION: the latest release [3] against [2] on suite quick 4.0." in out
    assert run_cli(["board", "track", "acme", "--board", board, "--max-score-drop", "0.5"]) == 0
    assert "worse, below the threshold" in capsys.readouterr().out


def test_track_ignores_an_old_regression(tmp_path, capsys):
    worse = degraded(record(**BASE), 0.3)
    board = file_records(tmp_path / "board", [release("a2", "2024-03-01"), release("c1", "2024-06-01", worse),
                                              release("d1", "2024-09-01", worse)])
    assert run_cli(["board", "track", "acme", "--board", board]) == 0  # [2] regressed, the latest [3] did not
    out = capsys.readouterr().out
    assert out.count("REGRESSION of [2] against [1]") == 1 and "No regression of the latest release [3]" in out


def test_track_puts_undated_releases_last_and_filters_by_model(tmp_path, capsys):
    board = file_records(tmp_path / "board", [release("a2", "2024-03-01"), release("z9", "2024-01-01"),
                                              with_identity(record(**BASE), name="acme-7b", revision="a0",
                                                            release_date=None)])
    assert run_cli(["board", "track", "acme", "--board", board]) == 0
    assert [line.split("revision ")[1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("[")] == ["z9", "a2", "a0"]
    assert run_cli(["board", "track", "acme", "--model", "acme-7b", "--board", board]) == 0
    assert "One release: nothing to compare yet." in capsys.readouterr().out


def test_track_refuses_releases_that_cannot_be_paired(tmp_path, capsys):
    board = file_records(tmp_path / "board", [release("a2", "2024-03-01"),
                                              release("b1", "2024-06-01", rehashed(record(**BASE), "sinkbench_piqa_quick"))])
    assert run_cli(["board", "track", "acme", "--board", board]) == 2
    err = capsys.readouterr().err
    assert "release [2] (acme-1b b1) against [1] (acme-1b a2): documents of sinkbench_piqa_quick" in err
    assert run_cli(["board", "track", "acme", "--board", board, "--unpaired"]) == 0
    assert "UNPAIRED" in capsys.readouterr().out


def test_track_unknown_family_and_bad_thresholds_exit_2(tmp_path, capsys):
    board = file_records(tmp_path / "board", [release("a2", "2024-03-01"), record(family="other", model="o-1")])
    assert run_cli(["board", "track", "nope", "--board", board]) == 2
    assert "no submissions of family 'nope' on the board (families: 'acme', 'other')" in capsys.readouterr().err
    assert run_cli(["board", "track", "acme", "--board", board, "--max-score-drop", "-1"]) == 2
    assert run_cli(["board", "track", "acme", "--board", board, "--max-score-drop", "nan"]) == 2


# ---- compare --------------------------------------------------------------------------------


def test_two_records_of_one_model_are_within_noise_everywhere(tmp_path, capsys):
    a = write(record(**BASE), tmp_path / "a.json")
    b = write(release("b1", "2024-06-01"), tmp_path / "b.json")
    assert run_cli(["board", "compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "Two records of one model (acme-1b, family acme): a regression test." in out
    assert "Paired on the documents both records hold (same id and content hash): sinkbench_arc_easy_quick 40" in out
    verdicts = [line for line in out.splitlines() if line.startswith("    ") and "  " in line.strip()]
    for name, column in COLUMNS_BY_NAME.items():
        line = column_line(out, column.title)
        expected = "not tested" if column.kind == "machine" else "within noise"
        assert expected in line, line
    assert verdicts and "No regression of B against A." in out


def test_a_large_real_drop_on_every_document_is_a_regression(tmp_path, capsys):
    before = record(**BASE)
    a = write(before, tmp_path / "a.json")
    b = write(release("b1", "2024-06-01", degraded(before, 0.3)), tmp_path / "b.json")
    assert run_cli(["board", "compare", a, b]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION of B against A: suite score ↑ fell by 0.183 (0.600 -> 0.417; 95% interval of the change" in out
    line = column_line(out, "suite score ↑")
    assert "-0.183" in line and line.endswith("REGRESSION")
    # McNemar: 30% of lambada's 22 right documents (7) turned wrong, none the other way: p = 2 * 0.5^7
    test = next(line for line in out.splitlines() if line.strip().startswith("sinkbench_lambada_quick"))
    assert test.split() == ["sinkbench_lambada_quick", "40", "0.550", "0.375", "7", "0", "0.0156"]
    assert run_cli(["board", "compare", a, b, "--max-score-drop", "0.5"]) == 0
    assert column_line(capsys.readouterr().out, "suite score ↑").endswith("worse, below the threshold")


def test_two_families_are_compared_but_never_regress(tmp_path, capsys):
    smol = write(record(family="smollm2", model="SmolLM2-135M", adds_bos=False, score=0.6), tmp_path / "smol.json")
    gemma = write(degraded(record(family="gemma3", model="gemma3-270m"), 0.3), tmp_path / "gemma.json")
    assert run_cli(["board", "compare", smol, gemma]) == 0
    out = capsys.readouterr().out
    assert ("Two models of different families (A: smollm2, B: gemma3): a comparison, not a regression test; "
            "verdicts say worse or better, never regression, and the exit status is 0.") in out
    assert column_line(out, "suite score ↑").endswith("worse")
    assert "0 by construction in A: left out of the test" in column_line(out, "<bos> dependence ↓")
    assert "REGRESSION" not in out and "Not a regression test (different families); worse in B: suite score ↑" in out


def test_records_with_changed_documents_cannot_be_paired(tmp_path, capsys):
    a = write(record(**BASE), tmp_path / "a.json")
    b = write(rehashed(release("b1", "2024-06-01"), "sinkbench_lambada_quick"), tmp_path / "b.json")
    assert run_cli(["board", "compare", a, b]) == 2
    err = capsys.readouterr().err
    assert "documents of sinkbench_lambada_quick have the same ids but other content in A and B" in err
    assert err.count("\n") == 1
    assert run_cli(["board", "compare", a, b, "--unpaired"]) == 0
    out = capsys.readouterr().out
    assert "UNPAIRED (asked for with --unpaired)" in out and "McNemar's exact test per" not in out


def test_compare_lists_the_heads_that_changed(tmp_path, capsys):
    base = record(**BASE)
    table = base["profile"]["alpha_by_head"]
    after = with_heads(base, {(0, 0): table[0][0] + 0.3, (1, 1): table[1][1] - 0.3,
                              (3, 3): table[3][3] + 0.02, (3, 2): table[3][2] - 0.02})
    a, b = write(base, tmp_path / "a.json"), write(release("b1", None, after), tmp_path / "b.json")
    assert run_cli(["board", "compare", a, b, "--svg", tmp_path / "diff.svg", "--top", "4"]) == 0
    out = capsys.readouterr().out
    assert "1 gained a sink (α > 0.3), 1 lost one" in out
    heads = [line.split() for line in out.splitlines() if line.strip().startswith("layer")]
    assert [(h[1], h[3]) for h in heads] == [("0", "0"), ("1", "1"), ("3", "2"), ("3", "3")]  # largest first
    assert "gained its sink" in " ".join(heads[0]) and "lost its sink" in " ".join(heads[1])
    tree = ET.parse(tmp_path / "diff.svg").getroot()
    cells = tree.findall(f".//{SVG}g[@class='cells']/{SVG}rect")
    assert len(cells) == 16 and sum(c.get("stroke") is not None for c in cells) == 2  # the two heads that crossed
    assert len({c.get("fill") for c in cells}) > 3  # a diverging scale, not one colour


def test_compare_refuses_bad_input(tmp_path, capsys):
    a = write(record(), tmp_path / "a.json")
    other = write(record(layers=5), tmp_path / "other.json")
    assert run_cli(["board", "compare", a, other]) == 0  # columns still compare; heads do not
    assert "Heads not compared: A has 4 x 4 (layers x heads), B has 5 x 4." in capsys.readouterr().out
    assert run_cli(["board", "compare", a, other, "--svg", tmp_path / "x.svg"]) == 2
    assert not (tmp_path / "x.svg").exists()
    old_suite = write(record(suite_version="1.0", check=False), tmp_path / "old.json")
    assert run_cli(["board", "compare", a, old_suite]) == 2
    assert "compare records of one suite version" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text('{"schema_version": "2.0", "status": "complete"}')
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
    suite_score = r["summary"]["suite_score"]
    assert metrics["suite_score"]["value"] == pytest.approx(suite_score["value"])
    assert metrics["suite_score"]["args"] == {"stderr": pytest.approx(suite_score["stderr"], abs=1e-6),
                                              "ci_low": pytest.approx(suite_score["ci_low"], abs=1e-6),
                                              "ci_high": pytest.approx(suite_score["ci_high"], abs=1e-6),
                                              "n": suite_score["n"], "confidence": 0.95}
    assert metrics["suite_score"]["name"] == "suite score" and metrics["suite_score"]["verified"] is False
    assert set(metrics) <= set(COLUMNS_BY_NAME) and not {"throughput", "wall_time_s"} & set(metrics)  # machine facts


def test_export_leaves_out_a_dependence_that_is_zero_by_construction(tmp_path, capsys):
    path = write(record(adds_bos=False), tmp_path / "r.json")
    assert run_cli(["export", "--model-index", path, "--name", "org/model"]) == 0
    [entry] = yaml.safe_load(capsys.readouterr().out)["model-index"]
    assert entry["name"] == "org/model"
    types = {m["type"] for m in entry["results"][0]["metrics"]}
    assert "bos_dependence" not in types and "bos_dependence_under_prefix" not in types
    assert "knockout_dependence" in types


def test_export_refuses_an_invalid_record(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("[]")
    assert run_cli(["export", "--model-index", tmp_path / "bad.json"]) == 2
    assert "a record is a JSON object" in capsys.readouterr().err


# ---- releases as a picture ------------------------------------------------------------------


def test_release_charts_on_the_index_and_the_familys_pages_mark_the_regression(tmp_path):
    """Three dated acme releases, the last one degraded (as track decides: a regression of the suite score
    against the one before); another family with one record gets no release chart."""
    worse = release("c1", "2024-06-01", degraded(record(**BASE), 0.3))
    board = file_records(tmp_path / "board", [release("z9", "2024-01-01"), release("a2", "2024-03-01"), worse,
                                              record(family="other", model="o-1")])
    assert run_cli(["board", "build", "--board", board]) == 0
    index = (board / "site" / "index.html").read_text(encoding="utf-8")
    assert 'id="plot-quick-releases-suite_score"' in index
    figure = index.split('id="plot-quick-releases-suite_score"')[1].split("</figure>")[0]
    root = ET.fromstring(figure[figure.index("<svg"):figure.index("</svg>") + len("</svg>")])
    series = [g for g in root.iter(f"{SVG}g") if g.get("class") == "s"]
    assert [g.find(f"{SVG}title").text for g in series] == ["acme: releases"]  # "other" has one release
    # Three points on the line, one error bar each (the suite score has an interval at every release).
    path = series[0].find(f"{SVG}path").get("d")
    assert path.count("L") == 2 and path.count("V") == 3
    rings = [g for g in root.iter(f"{SVG}g") if g.get("class") == "ring"]
    assert len(rings) == 1 and "acme-1b @ c1" in rings[0].find(f"{SVG}title").text
    assert "2024-01-01" in figure and "2024-06-01" in figure  # dates on the x axis
    assert "1 here" in figure  # the caption counts the rings
    # The <bos> dependence did not regress: no ring there.
    bos = index.split('id="plot-quick-releases-bos_dependence"')[1].split("</figure>")[0]
    assert 'class="ring"' not in bos
    # Each acme page shows its family's releases; the other family's page does not.
    page = (board / "site" / "models" / "acme" / "acme-1b" / "a2.html").read_text(encoding="utf-8")
    assert 'id="releases"' in page and 'class="ring"' in page
    other = next((board / "site" / "models" / "other").rglob("*.html")).read_text(encoding="utf-8")
    assert 'id="releases"' not in other
