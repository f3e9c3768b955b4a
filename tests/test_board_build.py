"""`sinkbench board build`: README.md, leaderboard.csv, board.json, site/index.html and a page per record from
the submissions; byte-identical on rebuild; every record string escaped in every output; no torch imported."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from board_helpers import (BOARD, HOSTILE, HOSTILE_NAME, HOSTILE_TEXT, STANDARD, file_board, record, rename_task, run_cli,
                           snapshot, write)
from sinkbench.board import boardjson, plots
from sinkbench.board.ranks import rank_bands
from sinkbench.record.types import Estimate, Record
from sinkbench.board.site import index_page, model_page
from sinkbench.board.store import Submission, load_board, submission_path
from sinkbench.board.table import ranked
from sinkbench.record.columns import COLUMNS, MACHINE

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("README.md", "leaderboard.csv", "board.json", "site/index.html")
RECORDS = [*BOARD, HOSTILE, STANDARD]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A board of the standard records, the hostile one and a standard-suite record, built once for the module."""
    board = file_board(tmp_path_factory.mktemp("built") / "board", RECORDS)
    assert run_cli(["board", "build", "--board", board]) == 0
    return board


def outputs(board: Path) -> dict[str, bytes]:
    return {str(p.relative_to(board)): p.read_bytes() for p in sorted((board / "site").rglob("*.html"))} | {
        name: (board / name).read_bytes() for name in OUTPUTS}


def csv_rows(board: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((board / "leaderboard.csv").read_text(encoding="utf-8"), newline="")))


def test_build_writes_every_output(built):
    readme = (built / "README.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"`{column.name}`" in readme  # the column table: name, direction, description
    assert "suite score ↑" in readme and "&lt;bos&gt; dependence ↓" in readme
    assert "## Suite quick 4.0" in readme and "## Suite standard 4.0" in readme  # a section per suite
    assert "Chatbot Arena" in readme  # the rank rule, stated
    rows = csv_rows(built)
    assert len(rows) == len(RECORDS)
    assert rows[0]["model"] == "gemma-7b" and rows[0]["revision"] == "b2"  # the best suite score first
    quick = [r for r in rows if r["suite"] == "quick"]
    assert [float(r["suite_score"]) for r in quick] == sorted((float(r["suite_score"]) for r in quick), reverse=True)
    assert rows[-1]["suite"] == "standard" and rows[-1]["rank"] == "1"  # ranked within its own suite
    assert float(rows[0]["suite_score_ci_low"]) < float(rows[0]["suite_score"]) < float(rows[0]["suite_score_ci_high"])
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    for plot_id in ("depth", "bos_dependence", "knockout_dependence", "prefix", "retrieval-passkey", "attention",
                    "text-start", "length"):
        assert f'id="plot-quick-{plot_id}"' in page
    assert 'id="plot-standard-retrieval-kv"' in page  # the standard suite's second retrieval family
    assert 'class="heatmap"' not in page  # heatmaps live on the model pages
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # offline


def test_every_record_gets_its_page_linked_from_the_index(built):
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    for options in RECORDS:
        r = record(**options)
        filed = submission_path(r)
        model_page = built / "site" / "models" / filed.parts[1] / filed.parts[2] / (filed.stem + ".html")
        assert model_page.is_file(), model_page
        href = f'href="models/{filed.parts[1]}/{filed.parts[2]}/{filed.stem}.html"'
        assert href in page
        text = model_page.read_text(encoding="utf-8")
        assert 'href="../../../index.html"' in text and 'id="grid-table"' in text
        assert f'href="../../../../{filed}"' in text  # the record file itself


def test_model_page_shows_the_grid_link_and_charts(built):
    text = (built / "site" / "models" / "gemma" / "gemma-7b" / "b2.html").read_text(encoding="utf-8")
    r = record(**BOARD[2])
    for condition in r["conditions"]:
        assert f">{condition['name']}" in text  # a column per condition
    for task in r["tasks"]:
        assert f">{task} <small>" in text  # a row per task
    baseline = r["conditions"][0]["scores"]["sinkbench_lambada_quick"]["acc"]
    assert f"{baseline['value']:.3f}<span class=\"interval\">[{baseline['ci_low']:.3f}, {baseline['ci_high']:.3f}]" in text
    assert 'id="link-table"' in text and "point-biserial" in text
    for chart in ("plot-depth", "plot-length", "plot-prefix", "plot-retrieval", "plot-attention", "plot-sinks-by-layer",
                  "plot-text-start-by-layer", "plot-massive", "plot-overmixing"):
        assert f'id="{chart}"' in text
    assert text.count('<g class="cells">') == 1  # the layer x head heatmap
    assert "<pre id=\"command\">sinkbench run --model gemma-7b</pre>" in text  # how to reproduce it
    assert "<script" not in text  # model pages run nothing


def test_a_skipped_cell_shows_a_dash_with_its_reason(tmp_path):
    board = file_board(tmp_path / "board", [dict(model="short", max_context=2048)])
    assert run_cli(["board", "build", "--board", board]) == 0
    text = (board / "site" / "models" / "gemma" / "short" / "r1.html").read_text(encoding="utf-8")
    assert "title=\"skipped: beyond the model&#39;s context: 2048 tokens\">—</td>" in text


def test_machine_facts_are_apart_and_unranked(built):
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    main_table = page[page.index('id="board-quick"'):page.index("</table>", page.index('id="board-quick"'))]
    for column in (c for c in COLUMNS if c.kind == MACHINE):
        assert f'data-column="{column.name}"' not in main_table  # neither sortable nor ranked with the model
    facts = page[page.index('class="machine-facts"'):]
    assert "<th>device</th>" in facts and "<td>cpu</td>" in facts
    readme = (built / "README.md").read_text(encoding="utf-8")
    assert "### Machine facts, suite quick" in readme and "| device | model |" in readme


def test_board_json_follows_its_schema(built):
    data = json.loads((built / "board.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, boardjson.schema())
    assert {s["name"]: s["records"] for s in data["suites"]} == {"quick": len(RECORDS) - 1, "standard": 1}
    first = data["records"][0]
    assert first["page"] == "site/models/gemma/gemma-7b/b2.html" and first["rank"] == 1
    assert first["summary"]["suite_score"] == record(**BOARD[2])["summary"]["suite_score"]  # intervals and all
    smol = next(r for r in data["records"] if r["model"] == "SmolLM2-135M")
    assert smol["summary"]["bos_dependence"]["by_construction"] is True


def test_rebuild_is_byte_identical_whatever_the_filing_order(built, tmp_path):
    first = outputs(built)
    assert run_cli(["board", "build", "--board", built]) == 0
    assert outputs(built) == first
    other = file_board(tmp_path / "other", list(reversed(RECORDS)))
    time.sleep(0.01)
    assert run_cli(["board", "build", "--board", other]) == 0
    assert outputs(other) == first
    today = time.strftime("%Y-%m-%d").encode()
    assert all(today not in data for data in first.values())  # nothing about the build itself


def test_a_page_whose_record_left_the_board_is_removed(tmp_path):
    board = file_board(tmp_path / "board", BOARD[:2])
    assert run_cli(["board", "build", "--board", board]) == 0
    gone = board / "submissions" / "gemma" / "gemma-2b" / "a1.json"
    gone.unlink()
    gone.parent.rmdir()
    assert run_cli(["board", "build", "--board", board]) == 0
    assert not (board / "site" / "models" / "gemma" / "gemma-2b").exists()
    assert (board / "site" / "models" / "gemma" / "gemma-7b" / "b1.html").is_file()


def test_empty_board_builds(tmp_path):
    assert run_cli(["board", "build", "--board", tmp_path / "empty"]) == 0
    assert "No submissions yet." in (tmp_path / "empty" / "README.md").read_text(encoding="utf-8")
    assert "No submissions yet." in (tmp_path / "empty" / "site" / "index.html").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "empty" / "board.json").read_text())["records"] == []


def test_build_refuses_a_misfiled_or_invalid_record_and_writes_nothing(tmp_path, capsys):
    board = file_board(tmp_path / "board", BOARD[:1])
    misfiled = record(model="gemma-9b")
    write(misfiled, board / "submissions" / "gemma" / "gemma-7b" / "wrong.json")
    before = snapshot(board)
    assert run_cli(["board", "build", "--board", board]) == 2
    assert "submissions/gemma/gemma-7b/wrong.json: its record belongs at submissions/gemma/gemma-9b/r1.json" in capsys.readouterr().err
    assert snapshot(board) == before
    (board / "submissions" / "gemma" / "gemma-7b" / "wrong.json").write_text('{"schema_version": "2.0"}')
    assert run_cli(["board", "build", "--board", board]) == 2
    assert "wrong.json: (record): 'conditions' is a required property" in capsys.readouterr().err


def test_build_refuses_two_versions_of_one_suite(tmp_path, capsys):
    board = file_board(tmp_path / "board", [BOARD[0]])
    old = record(model="old", suite_version="2.0", check=False)  # filed by hand before the suite changed
    write(old, board / submission_path(old))
    assert run_cli(["board", "build", "--board", board]) == 2
    assert "provenance.suite.version: '2.0'" in capsys.readouterr().err


# ---- ranks ---------------------------------------------------------------------------------


def _estimate(value, low, high):
    return Estimate(value=value, stderr=None, ci_low=low, ci_high=high, method="hand-made", n=10, note=None)


def test_rank_bands_follow_the_overlap_rule():
    entries = [_estimate(0.70, 0.65, 0.75), _estimate(0.68, 0.62, 0.74),  # overlaps the leader: rank 1
               _estimate(0.55, 0.50, 0.60),  # two intervals wholly above it: rank 3
               _estimate(0.53, 0.45, 0.61), _estimate(0.30, None, None), _estimate(None, None, None)]
    assert rank_bands(entries) == [1, 1, 3, 3, 5, None]


def test_the_table_ranks_records_that_cannot_be_told_apart_together(built):
    rows = csv_rows(built)
    quick = {(r["model"], r["revision"]): int(r["rank"]) for r in rows if r["suite"] == "quick"}
    assert quick[("gemma-7b", "b2")] == quick[("gemma-7b", "b1")] == quick[("gemma-2b", "a1")] == 1  # they overlap
    assert quick[("SmolLM2-135M", "c1")] > 1  # 0.42: wholly below gemma-7b b2's interval
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    assert "Chatbot Arena" in page and 'id="rank-rule"' in page


# ---- hostile strings ----------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_table_survives_hostile_strings(built):
    lines = (built / "README.md").read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| # |"))
    rows = [line for line in lines if re.match(r"\| (\d+|—) \|", line)]
    assert len(rows) == len(RECORDS)  # a newline in a name did not start a new line
    for row in rows:
        assert _unescaped_pipes(row) == _unescaped_pipes(header)
    hostile = next(row for row in rows if "pwned" in row)
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile and "<i>" not in hostile
    assert r"x\|y" in hostile and r"r\|1&lt;b&gt;" in hostile


def test_csv_keeps_hostile_strings_in_their_cells(built):
    hostile = next(r for r in csv_rows(built) if "pwned" in r["model"])
    assert hostile["model"] == HOSTILE_NAME  # quotes, commas and the newline stay inside the cell
    assert hostile["family"] == HOSTILE["family"] and hostile["revision"] == HOSTILE["revision"]


def test_csv_defuses_spreadsheet_formulas(tmp_path):
    board = file_board(tmp_path / "board", [dict(model="=HYPERLINK(1)", revision="r1")])
    assert run_cli(["board", "build", "--board", board]) == 0
    assert csv_rows(board)[0]["model"] == "'=HYPERLINK(1)"


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Tags:
    parsed = Tags()
    parsed.feed(text)
    return parsed


def test_page_escapes_hostile_strings(built):
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    parsed = parse(page)
    assert parsed.tags.count("script") == 1  # ours only
    assert "i" not in parsed.tags and "b" not in parsed.tags  # the family's <i>, the revision's <b>
    assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert 'data-family="fam&#34;&lt;i&gt;|ly"' in page  # attribute context: the quote cannot end the value
    assert any("window.pwned=1" in text for text in parsed.text)  # shown as text
    assert "Content-Security-Policy" in page and "script-src 'sha256-" in page


def test_svg_titles_escape_hostile_strings(built):
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    charts = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(charts) >= 9
    titles = []
    for chart in charts:
        tree = ET.fromstring(chart)  # well-formed: nothing broke out of a text or attribute
        assert not tree.findall(".//{http://www.w3.org/2000/svg}script")
        titles += [t.text for t in tree.iter("{http://www.w3.org/2000/svg}title")]
    assert any(HOSTILE_NAME in title for title in titles)  # hover names the model, intact


def test_board_never_imports_torch_or_transformers(tmp_path):
    """Import every board module, build, track, compare and export in a fresh interpreter. (lm-eval: `import
    sinkbench` registers the backend's name with lm-eval's registry; tests/test_layers.py checks that no board
    module imports it.)"""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
import pkgutil, importlib, sinkbench.board
for module in pkgutil.iter_modules(sinkbench.board.__path__):
    importlib.import_module("sinkbench.board." + module.name)
from pathlib import Path
from board_helpers import BOARD, file_board, run_cli
from sinkbench.board.store import submission_path
board = file_board(Path({str(tmp_path / "board")!r}), BOARD[1:3])
paths = sorted((board / "submissions").rglob("*.json"))
assert run_cli(["board", "build", "--board", board]) == 0
assert run_cli(["board", "track", "gemma", "--board", board]) in (0, 1)
assert run_cli(["board", "compare", *paths]) in (0, 1)
assert run_cli(["export", "--model-index", paths[0]]) == 0
leaked = sorted(name for name in ("torch", "transformers") if name in sys.modules)
assert not leaked, leaked
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_record_without_release_date_shows_a_dash(tmp_path):
    board = file_board(tmp_path / "board", [dict(family="smol", model="smol-1", release_date=None),
                                            dict(family="smol", model="smol-2", release_date="2025-01-02")])
    assert run_cli(["board", "build", "--board", board]) == 0
    row = next(line for line in (board / "README.md").read_text(encoding="utf-8").splitlines() if "smol-1" in line)
    assert row.split(" | ")[4] == "—", row
    written = (board / "leaderboard.csv").read_text() + (board / "site" / "index.html").read_text()
    assert not re.search(r"\bnan\b", written, flags=re.I)


def test_a_value_zero_by_construction_is_never_ranked_or_plotted(built):
    submissions = load_board(built)
    page = index_page(ranked(submissions))
    smol_row = next(line for line in page.splitlines() if 'data-family="smollm2"' in line and "SmolLM2-135M" in line)
    bos_cell = re.findall(r'<td class="m" data-sort="" title="0 by construction[^"]*">0 †</td>', smol_row)
    assert len(bos_cell) == 2  # <bos> dependence, and under stress: sorted last with the missing values
    chart = page[page.index('id="plot-quick-bos_dependence"'):]
    chart = chart[:chart.index("</figure>")]
    assert "SmolLM2" not in chart and "Left out: 2 records whose tokenizer adds no &lt;bos&gt;" in chart
    assert plots.labels(submissions)  # every record has a label


def hostile_record() -> dict:
    """A record with hostile strings everywhere a model page shows one: identity, a task name, a skip reason,
    notes, the command and the device (rendered directly: no board would take the renamed task)."""
    r = rename_task(record(**HOSTILE, max_context=2048), "sinkbench_lambada_quick", HOSTILE_TEXT)
    r["provenance"]["command"] = ["sinkbench", "run", "--model", HOSTILE_TEXT]
    r["provenance"]["device"] = HOSTILE_TEXT
    r["summary"]["suite_score"]["note"] = HOSTILE_TEXT
    baseline = r["conditions"][0]
    baseline["skipped"] = {task: HOSTILE_TEXT for task in baseline["skipped"]}
    baseline["link"][HOSTILE_TEXT]["note"] = HOSTILE_TEXT
    return r


def test_model_page_escapes_hostile_strings():
    r = hostile_record()
    text = model_page(Submission(submission_path(record(**HOSTILE)), Record.from_json(r)), "label " + HOSTILE_TEXT)
    parsed = parse(text)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "i" not in parsed.tags
    assert "<script>window.pwned" not in text and "&lt;script&gt;window.pwned=2&lt;/script&gt;" in text
    assert 'title="skipped: &lt;script&gt;window.pwned=2' in text  # attribute context
    assert "<pre id=\"command\">sinkbench run --model &#39;" in text  # shell-quoted, then escaped
    for svg_text in re.findall(r"<svg .*?</svg>", text, flags=re.S):
        tree = ET.fromstring(svg_text)  # well-formed: nothing broke out
        assert not tree.findall(".//{http://www.w3.org/2000/svg}script")
    shown = " ".join(parsed.text)
    assert HOSTILE_TEXT in shown and " ".join(HOSTILE_NAME.split()) in " ".join(shown.split())


def test_the_scale_benchmark_board_builds(tmp_path):
    """bench/board_scale.py's board, small: several families, releases, suites and devices, all valid."""
    from sinkbench.testing.boards import generate, plan

    specs = plan(40)
    assert len({s["family"] for s in specs}) >= 5 and {s["suite"] for s in specs} == {"quick", "standard"}
    assert len({s["device"][0] for s in specs}) >= 2 and max(int(s["revision"][1:]) for s in specs) >= 2
    generate(tmp_path / "board", 24, distinct=4, realistic=False)
    assert run_cli(["board", "build", "--board", tmp_path / "board"]) == 0
    page = (tmp_path / "board" / "site" / "index.html").read_text(encoding="utf-8")
    assert page.count('<tr data-r="') == 2 * 24  # the table and the machine facts
    assert len(list((tmp_path / "board" / "site" / "models").rglob("*.html"))) == 24
