"""`sinkbench board build`: every submission into README.md, leaderboard.csv, board.json, site/index.html and a
page per record under site/models/.

The same submissions always give byte-identical files: rows are ranked deterministically, numbers
are printed with fixed precision, and nothing about the build itself (time, host, version) is
written. A page whose record left the board is removed, so the site holds exactly the board.
"""

from __future__ import annotations

import hashlib

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


def outputs_of(submissions: list, board: Path | None = None, cache: CheckCache | None = None) -> dict[str, str | None]:
    """Every file the build writes (relative path -> text), from submissions already loaded and checked. With the
    board and a cache: None for a record's page that is on disk as this sinkbench draws it from this record (see
    cache.py), and each page drawn is remembered."""
    rows = table.ranked(submissions)
    verdicts = plots.Verdicts(cache=cache)  # each pair of releases compared once: for the index and the pages
    texts = {
        "README.md": table.markdown(rows),
        "leaderboard.csv": table.csv(rows),
        "board.json": boardjson.board_json(rows),
        "site/index.html": site.index_page(rows, verdicts),
    }
    names = plots.labels(submissions)
    releases = _family_releases(submissions, verdicts)
    for s in submissions:
        label = names[s.path]
        # A page shows its family's releases too: it is current only if none of them changed either.
        charts, family_key = releases.get((s.family, s.suite), ([], ""))
        digest = None if s.digest is None else s.digest + family_key
        if cache is not None and digest is not None and cache.page_current(digest, label, Path(board) / s.page):
            texts[str(s.page)] = None
            continue
        texts[str(s.page)] = site.model_page(s, label, charts)
        if cache is not None and digest is not None:
            cache.remember_page(digest, label, texts[str(s.page)])
    return texts


def _family_releases(submissions: list, verdicts: plots.Verdicts) -> dict[tuple, tuple[list, str]]:
    """(family, suite) -> (its release charts, a key of its records' contents) for the families with two or more
    dated records of a suite; the charts are drawn once per family and shown on each of its pages."""
    groups: dict[tuple, list] = {}
    for s in submissions:
        groups.setdefault((s.family, s.suite), []).append(s)
    styles = plots.family_styles(s.family for s in submissions)
    found = {}
    for (family, suite), members in groups.items():
        series = [plots.Series(s, None, *styles[family]) for s in members]
        charts = plots.release_plots(f"plot-releases-{suite[0]}", series, verdicts)
        if charts:
            key = "+" + hashlib.sha256(" ".join(sorted(str(s.digest) for s in members)).encode()).hexdigest()[:16]
            found[family, suite] = (charts, key)
    return found


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
    """Check every submission (as submit does) and write the outputs; the paths written or already current. A
    record file checked before, and a page drawn before from the same record, are taken from the cache (cache.py)."""
    board = Path(board)
    cache = CheckCache.default() if cache is None else cache
    return write_outputs(board, outputs_of(load_board(board, cache), board, cache))


def write_outputs(board: Path, texts: dict[str, str | None]) -> list[Path]:
    """Write what outputs_of() made (None: a page already current), remove the pages of records that left the
    board; the paths of `texts`."""
    root = (board / SITE / MODELS).resolve()
    for name, text in texts.items():
        target = board / name
        if name.startswith(f"{SITE}/{MODELS}/") and not target.resolve().is_relative_to(root):
            raise SinkbenchError(f"{name}: the board's site folders contain a link; refusing to write through it")
        if text is not None:
            write_output(target, text)
    for path in _stale_pages(board, set(texts)):
        path.unlink()
    for folder, _, _ in sorted(os.walk(board / SITE / MODELS, followlinks=False), reverse=True):
        if Path(folder) != board / SITE / MODELS and not any(Path(folder).iterdir()):
            Path(folder).rmdir()  # a family or model that left the board
    return [board / name for name in texts]
