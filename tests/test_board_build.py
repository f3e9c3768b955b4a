"""`sinkbench board build`: README.md, leaderboard.csv and site/index.html from the submissions,
byte-identical on rebuild, every record string escaped in every output, no torch imported."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from board_records import BOARD, HOSTILE, HOSTILE_NAME, record, run_cli, snapshot, write
from sinkbench.board import plots
from sinkbench.board.store import load_board, submission_path
from sinkbench.record.columns import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("README.md", "leaderboard.csv", "site/index.html")


def file_board(board: Path, options_list) -> Path:
    for options in options_list:
        r = record(**options)
        write(r, board / submission_path(r))
    return board


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A board of the standard records plus the hostile one, built once for the module."""
    board = file_board(tmp_path_factory.mktemp("built") / "board", [*BOARD, HOSTILE])
    assert run_cli(["board", "build", "--board", board]) == 0
    return board


def outputs(board: Path) -> dict[str, bytes]:
    return {name: (board / name).read_bytes() for name in OUTPUTS}


def test_build_writes_the_three_outputs(built):
    readme = (built / "README.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert column.name in readme  # the column table: name, direction, description
    assert "suite score ↑" in readme and "&lt;bos&gt; dependence ↓" in readme
    assert "higher is better" in readme and "lower is better" in readme
    rows = list(csv.DictReader(io.StringIO((built / "leaderboard.csv").read_text(encoding="utf-8"), newline="")))
    assert len(rows) == len(BOARD) + 1
    assert [float(r["suite_score"]) for r in rows] == sorted((float(r["suite_score"]) for r in rows), reverse=True)
    assert rows[0]["model"] == "gemma-7b" and rows[0]["revision"] == "b2"  # the best suite score first
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    for plot_id in ("plot-bos_dependence", "plot-knockout_dependence", "plot-prefix", "plot-length"):
        assert f'id="{plot_id}"' in page
    assert page.count('class="heatmap"') == len(BOARD) + 1
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # offline


def test_rebuild_is_byte_identical_whatever_the_filing_order(built, tmp_path):
    first = outputs(built)
    assert run_cli(["board", "build", "--board", built]) == 0
    assert outputs(built) == first
    other = file_board(tmp_path / "other", list(reversed([*BOARD, HOSTILE])))
    time.sleep(0.01)
    assert run_cli(["board", "build", "--board", other]) == 0
    assert outputs(other) == first
    today = time.strftime("%Y-%m-%d").encode()
    assert all(today not in data for data in first.values())  # nothing about the build itself


def test_empty_board_builds(tmp_path):
    assert run_cli(["board", "build", "--board", tmp_path / "empty"]) == 0
    assert "No submissions yet." in (tmp_path / "empty" / "README.md").read_text(encoding="utf-8")
    assert "No submissions yet." in (tmp_path / "empty" / "site" / "index.html").read_text(encoding="utf-8")


def test_build_refuses_a_misfiled_or_invalid_record_and_writes_nothing(tmp_path, capsys):
    board = file_board(tmp_path / "board", BOARD[:1])
    misfiled = record(model="gemma-9b")
    write(misfiled, board / "submissions" / "gemma" / "gemma-7b" / "wrong.json")
    before = snapshot(board)
    assert run_cli(["board", "build", "--board", board]) == 2
    assert "submissions/gemma/gemma-7b/wrong.json: its record belongs at submissions/gemma/gemma-9b/r1.json" in capsys.readouterr().err
    assert snapshot(board) == before
    (board / "submissions" / "gemma" / "gemma-7b" / "wrong.json").write_text('{"schema_version": "1.0"}')
    assert run_cli(["board", "build", "--board", board]) == 2
    assert "wrong.json: (record): 'conditions' is a required property" in capsys.readouterr().err


# ---- hostile strings ----------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_table_survives_hostile_strings(built):
    lines = (built / "README.md").read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| # |"))
    rows = [line for line in lines if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(BOARD) + 1  # a newline in a name did not start a new line
    for row in rows:
        assert _unescaped_pipes(row) == _unescaped_pipes(header)
    hostile = next(row for row in rows if "pwned" in row)
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile and "<i>" not in hostile
    assert r"x\|y" in hostile and r"r\|1&lt;b&gt;" in hostile


def test_csv_keeps_hostile_strings_in_their_cells(built):
    rows = list(csv.DictReader(io.StringIO((built / "leaderboard.csv").read_text(encoding="utf-8"), newline="")))
    hostile = next(r for r in rows if "pwned" in r["model"])
    assert hostile["model"] == HOSTILE_NAME  # quotes, commas and the newline stay inside the cell
    assert hostile["family"] == HOSTILE["family"] and hostile["revision"] == HOSTILE["revision"]


def test_csv_defuses_spreadsheet_formulas(tmp_path):
    board = file_board(tmp_path / "board", [dict(model="=HYPERLINK(1)", revision="r1")])
    assert run_cli(["board", "build", "--board", board]) == 0
    rows = list(csv.DictReader(io.StringIO((board / "leaderboard.csv").read_text(encoding="utf-8"), newline="")))
    assert rows[0]["model"] == "'=HYPERLINK(1)"


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_page_escapes_hostile_strings(built):
    page = (built / "site" / "index.html").read_text(encoding="utf-8")
    parsed = Tags()
    parsed.feed(page)
    assert parsed.tags.count("script") == 1  # ours only
    assert "i" not in parsed.tags and "b" not in parsed.tags  # the family's <i>, the revision's <b>
    assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert 'data-family="fam&#34;&lt;i&gt;|ly"' in page  # attribute context: the quote cannot end the value
    assert any("window.pwned=1" in text for text in parsed.text)  # shown as text
    assert "Content-Security-Policy" in page and "script-src 'sha256-" in page


def test_svg_titles_and_labels_escape_hostile_strings(built):
    submissions = load_board(built)
    charts, heatmaps = plots.board_plots(submissions)
    for chart in [c.svg for c in charts] + [svg for _, svg in heatmaps]:
        tree = ET.fromstring(chart)  # well-formed: nothing broke out of a text or attribute
        assert not tree.findall(".//{http://www.w3.org/2000/svg}script")
    titles = [t.text for chart in charts for t in ET.fromstring(chart.svg).iter("{http://www.w3.org/2000/svg}title")]
    assert any(HOSTILE_NAME in title for title in titles)  # hover names the model, intact


def test_board_never_imports_torch_or_transformers(tmp_path):
    """Import every board module, build, track, compare and export in a fresh interpreter."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
import sinkbench.board, sinkbench.board.cli, sinkbench.board.store, sinkbench.board.table, sinkbench.board.svg
import sinkbench.board.plots, sinkbench.board.site, sinkbench.board.build, sinkbench.board.track, sinkbench.board.export
from pathlib import Path
from board_records import BOARD, make_record, write, run_cli
from sinkbench.board.store import submission_path
board = Path({str(tmp_path / "board")!r})
paths = []
for options in BOARD[1:3]:
    r = make_record(**options)
    paths.append(write(r, board / submission_path(r)))
assert run_cli(["board", "build", "--board", board]) == 0
assert run_cli(["board", "track", "gemma", "--board", board]) in (0, 1)
assert run_cli(["board", "compare", *paths]) in (0, 1)
assert run_cli(["export", "--model-index", paths[0]]) == 0
leaked = sorted(name for name in ("torch", "transformers") if name in sys.modules)
assert not leaked, leaked
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_record_without_release_date_shows_a_dash(tmp_path):
    board = file_board(tmp_path / "board", [dict(family="smol", model="smol-1", release_date=None),
                                            dict(family="smol", model="smol-2", release_date="2025-01-02")])
    assert run_cli(["board", "build", "--board", board]) == 0
    row = next(line for line in (board / "README.md").read_text(encoding="utf-8").splitlines() if "smol-1" in line)
    assert row.split(" | ")[4] == "—", row
    assert "nan" not in (board / "leaderboard.csv").read_text() + (board / "site" / "index.html").read_text()
