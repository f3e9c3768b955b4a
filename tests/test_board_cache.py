"""Work done once per content: a rebuild neither checks an unchanged record again nor draws its page again, and
does both for a changed record, checks a refused one every time, redoes everything under other code or with
--no-cache, and draws again a page changed on disk."""

from __future__ import annotations

import pytest

from board_helpers import BOARD, file_board, record, run_cli, with_identity, write
from sinkbench.board import cache, site, store
from sinkbench.board.build import OUTPUTS, build
from sinkbench.board.cache import CheckCache
from sinkbench.board.store import submission_path


@pytest.fixture
def checks(monkeypatch):
    """The record files' checks, counted: each call of sinkbench.record.validate.problems, by model and revision."""
    seen = []
    real = store.problems

    def counted(data):
        seen.append((data["model"]["name"], data["model"]["revision"]))
        return real(data)

    monkeypatch.setattr(store, "problems", counted)
    return seen


@pytest.fixture
def drawn(monkeypatch):
    """The model pages drawn, counted by model and revision."""
    seen = []
    real = site.model_page

    def counted(submission, label, releases=None):
        seen.append((submission.name, submission.revision))
        return real(submission, label, releases)

    monkeypatch.setattr(site, "model_page", counted)
    return seen


def built(board):
    """Every built file's bytes."""
    return {p.relative_to(board).as_posix(): p.read_bytes() for p in sorted(board.rglob("*.html"))} | {
        name: (board / name).read_bytes() for name in OUTPUTS}


def test_a_rebuild_draws_only_the_pages_whose_record_changed(tmp_path, drawn):
    board = file_board(tmp_path / "board", BOARD[:3])
    own = CheckCache(tmp_path / "cache")
    build(board, own)
    first = built(board)
    assert len(drawn) == 3
    drawn.clear()
    build(board, own)
    assert drawn == [] and built(board) == first  # nothing drawn, every file as before
    changed = with_identity(record(**BOARD[1]), release_date="2024-03-01")
    write(changed, board / submission_path(changed))
    build(board, own)
    # Every page of the family shows its release charts, which the changed record moved: all three are drawn.
    assert sorted(drawn) == [("gemma-2b", "a1"), ("gemma-7b", "b1"), ("gemma-7b", "b2")]
    drawn.clear()
    build(board, own)
    assert drawn == []
    current = built(board)
    page = next(board.rglob("a1.html"))
    page.write_text("edited by hand", encoding="utf-8")
    drawn.clear()
    build(board, own)
    assert drawn == [("gemma-2b", "a1")] and page.read_bytes() == current[page.relative_to(board).as_posix()]
    fresh = tmp_path / "fresh"  # the same records built with nothing cached: the same bytes
    file_board(fresh, BOARD[:3])
    write(changed, fresh / submission_path(changed))
    build(fresh, CheckCache(None))
    assert built(fresh) == built(board)


def test_a_rebuild_checks_only_what_changed(tmp_path, checks):
    board = file_board(tmp_path / "board", BOARD[:3])
    own = CheckCache(tmp_path / "cache")
    build(board, own)
    assert sorted(checks) == [("gemma-2b", "a1"), ("gemma-7b", "b1"), ("gemma-7b", "b2")]
    checks.clear()
    build(board, own)
    assert checks == []  # nothing changed: nothing checked
    changed = with_identity(record(**BOARD[1]), release_date="2024-03-01")  # same file, other bytes
    write(changed, board / submission_path(changed))
    build(board, own)
    assert checks == [("gemma-7b", "b1")]
    checks.clear()
    build(board, CheckCache(None))  # --no-cache
    assert len(checks) == 3


def test_a_refused_record_is_checked_and_refused_every_time(tmp_path, checks, capsys):
    board = file_board(tmp_path / "board", BOARD[:1])
    bad = record(**BOARD[1])
    bad["summary"]["suite_score"]["value"] += 0.1
    write(bad, board / submission_path(bad))
    for _ in range(2):
        assert run_cli(["board", "build", "--board", board]) == 2
        assert "summary.suite_score.value" in capsys.readouterr().err
    assert checks.count(("gemma-7b", "b1")) == 2


def test_other_checking_code_checks_again(tmp_path, checks, monkeypatch):
    board = file_board(tmp_path / "board", BOARD[:1])
    own = CheckCache(tmp_path / "cache")
    build(board, own)
    build(board, own)
    assert len(checks) == 1
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "another sinkbench")
    build(board, own)
    assert len(checks) == 2


def test_the_fingerprint_follows_the_package_source():
    fingerprint = cache.code_fingerprint()
    assert len(fingerprint) == 64 and fingerprint == cache.code_fingerprint()
    assert (cache.PACKAGE / "record" / "validate.py").is_file()  # what it hashes is the package being run


def test_the_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SINKBENCH_CACHE_DIR", str(tmp_path / "c"))
    assert CheckCache.default().folder == tmp_path / "c"
    monkeypatch.delenv("SINKBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert CheckCache.default().folder == tmp_path / "x" / "sinkbench"


def test_an_unwritable_cache_costs_time_not_the_build(tmp_path, checks):
    board = file_board(tmp_path / "board", BOARD[:1])
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    build(board, CheckCache(blocker))  # cannot make folders under a file
    build(board, CheckCache(blocker))
    assert len(checks) == 2 and (board / "README.md").is_file()


def test_release_verdicts_are_compared_once_per_content(tmp_path, monkeypatch):
    """The release charts ring regressions as `board track` decides, which compares two records (a second for
    two standard records): each pair once per build (index and pages share it), and not again on a rebuild."""
    from sinkbench.board import plots

    calls = []
    real = plots.compare

    def counted(a, b, thresholds):
        calls.append((a.model.revision, b.model.revision))
        return real(a, b, thresholds)

    monkeypatch.setattr(plots, "compare", counted)
    board = file_board(tmp_path / "board", BOARD[:3])  # gemma: three dated releases, two consecutive pairs
    own = CheckCache(tmp_path / "cache")
    build(board, own)
    assert sorted(calls) == [("a1", "b1"), ("b1", "b2")]
    calls.clear()
    build(board, own)
    assert calls == []
    build(board, CheckCache(None))  # nothing cached: compared again, once per pair
    assert len(calls) == 2
