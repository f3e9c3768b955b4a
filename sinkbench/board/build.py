"""`sinkbench board build`: every submission into README.md, leaderboard.csv, board.json, site/index.html and a
page per record under site/models/.

The same submissions always give byte-identical files: rows are ranked deterministically, numbers
are printed with fixed precision, and nothing about the build itself (time, host, version) is
written. A page whose record left the board is removed, so the site holds exactly the board.
"""

from __future__ import annotations

import os
from pathlib import Path

from sinkbench.board import boardjson, plots, site, table
from sinkbench.board.cache import CheckCache
from sinkbench.board.store import MODELS, SITE, load_board, write_output
from sinkbench.errors import SinkbenchError

OUTPUTS = ("README.md", "leaderboard.csv", "board.json", "site/index.html")


def outputs(board: Path, cache: CheckCache | None = None) -> dict[str, str]:
    """Every file the build writes (relative path -> text), from the board's checked submissions."""
    return outputs_of(load_board(board, cache))


def outputs_of(submissions: list) -> dict[str, str]:
    """Every file the build writes (relative path -> text), from submissions already loaded and checked."""
    frame = table.frame(submissions)
    texts = {
        "README.md": table.markdown(frame),
        "leaderboard.csv": table.csv(frame),
        "board.json": boardjson.board_json(submissions, frame),
        "site/index.html": site.index_page(submissions, frame),
    }
    names = plots.labels(submissions)
    for s in submissions:
        texts[str(s.page)] = site.model_page(s, names[s.path])
    return texts


def _stale_pages(board: Path, kept: set[str]) -> list[Path]:
    """Pages under site/models that no submission makes any more (links are never followed)."""
    root = board / SITE / MODELS
    stale = []
    for folder, _, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if name.endswith(".html") and path.relative_to(board).as_posix() not in kept:
                stale.append(path)
    return sorted(stale)


def build(board: Path, cache: CheckCache | None = None) -> list[Path]:
    """Check every submission (as submit does; once per content, see cache.py) and write the outputs; the paths
    written or already current."""
    return write_outputs(Path(board), outputs(board, cache))


def write_outputs(board: Path, texts: dict[str, str]) -> list[Path]:
    """Write what outputs() made, remove the pages of records that left the board; the paths of `texts`."""
    root = (board / SITE / MODELS).resolve()
    for name, text in texts.items():
        target = board / name
        if name.startswith(f"{SITE}/{MODELS}/") and not target.resolve().is_relative_to(root):
            raise SinkbenchError(f"{name}: the board's site folders contain a link; refusing to write through it")
        write_output(target, text)
    for path in _stale_pages(board, set(texts)):
        path.unlink()
    for folder, _, _ in sorted(os.walk(board / SITE / MODELS, followlinks=False), reverse=True):
        if Path(folder) != board / SITE / MODELS and not any(Path(folder).iterdir()):
            Path(folder).rmdir()  # a family or model that left the board
    return [board / name for name in texts]
