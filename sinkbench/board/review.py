"""`board review`: what a change to a board (a pull request) does, as Markdown for a comment on it.

The records the change adds or alters are found with `git diff` against the base's fork point
(plus files git does not track yet), against a base folder, or named as paths. Each is checked in
full, whatever the check cache holds: a refused record is one line, and the review fails. Then the
board is rebuilt, and each changed record is read against its family: against the release before
it (the same model's, else the family's, in `board track`'s order) through sinkbench.record.compare,
or, where the family has nothing before it on that suite, by its rank band and the records nearest
to it by suite score. Nothing here computes a statistic of its own.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sinkbench.board.cache import CheckCache, content_digest
from sinkbench.board.comparison import interval_text, pairing, verdict_line, what_is_compared
from sinkbench.board.ranks import bounds
from sinkbench.board.store import (SUBMISSIONS, Submission, read_untrusted, record_problems, submission_files,
                                   submission_path, summarise)
from sinkbench.board.table import MISSING, MODEL_COLUMNS, Row, ranked, cell_text, format_change, format_value, heading, md
from sinkbench.board.track import releases
from sinkbench.errors import SinkbenchError
from sinkbench.record.compare import REGRESSION, UNTESTED, Comparison, Thresholds, compare
from sinkbench.record.columns import HIGHER, LOWER
from sinkbench.record.types import Record

MARKER = "<!-- sinkbench board review -->"  # lets a CI job find and update its own earlier comment
NEAREST = 4  # records shown around a new family's first record
JUDGED = tuple(c for c in MODEL_COLUMNS if c.direction in (HIGHER, LOWER))  # the columns a verdict can read
_SCORE = next(c for c in MODEL_COLUMNS if c.name == "suite_score")


@dataclass(frozen=True)
class Changes:
    """Record files (relative to the board) a change adds or alters, those it removes, and against what."""

    changed: list[PurePosixPath]
    removed: list[PurePosixPath]
    against: str


# ---- what changed -----------------------------------------------------------------------


def _git(board: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=board, capture_output=True, text=True)
    except FileNotFoundError:
        raise SinkbenchError("--base REF needs git; give a base folder or the changed records' paths instead") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["failed"])[0]
        raise SinkbenchError(f"git {args[0]}: {first}")
    return done.stdout


def _sorted(board: Path, paths) -> tuple[list[PurePosixPath], list[PurePosixPath]]:
    """Split the board-relative record paths into those present (changed) and gone (removed)."""
    paths = sorted({PurePosixPath(p) for p in paths if p.endswith(".json")})
    present = [p for p in paths if (board / p).exists() or (board / p).is_symlink()]
    return present, [p for p in paths if p not in present]


def changes_from_git(board: Path, base: str) -> Changes:
    """Against the fork point of `base` and HEAD (a pull request's own changes, whatever the base did since),
    the working tree included, and files git does not track yet (a record just filed with `submit`)."""
    fork = _git(board, "merge-base", base, "HEAD").strip()
    # --relative: names relative to the board folder, and only those under it.
    diff = _git(board, "diff", "--name-only", "--no-renames", "-z", "--relative", fork, "--", SUBMISSIONS)
    new = _git(board, "ls-files", "-z", "--others", "--exclude-standard", "--", SUBMISSIONS)
    changed, removed = _sorted(board, [p for p in (diff + new).split("\0") if p])
    return Changes(changed, removed, f"{md(base)} (fork point {fork[:12]})")


def changes_from_folder(board: Path, base: Path) -> Changes:
    """Against a copy of the board as it was: files added or whose bytes differ, and files gone."""
    if not (base / SUBMISSIONS).is_dir():
        raise SinkbenchError(f"--base {base}: neither a git ref nor a board folder (no {SUBMISSIONS}/ in it)")
    now = {PurePosixPath(f.relative_to(board).as_posix()): f for f in submission_files(board)}
    before = {PurePosixPath(f.relative_to(base).as_posix()): f for f in submission_files(base)}
    changed = [p for p, f in now.items() if p not in before or before[p].read_bytes() != f.read_bytes()]
    return Changes(sorted(changed), sorted(set(before) - set(now)), f"the board folder {md(base.name)}")


def changes_from_paths(board: Path, paths: list[str]) -> Changes:
    """Record files named on the command line, which must lie in the board's submissions folder."""
    root = (board / SUBMISSIONS).resolve()
    changed = []
    for path in paths:
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(root):
            raise SinkbenchError(f"{path}: not under {board / SUBMISSIONS}; `sinkbench submit` files a record there")
        changed.append(PurePosixPath(SUBMISSIONS, *resolved.relative_to(root).parts))
    return Changes(sorted(set(changed)), [], "the records named")


def find_changes(board: Path, base: str | None, paths: list[str]) -> Changes:
    if paths:
        return changes_from_paths(board, paths)
    if base is None:
        raise SinkbenchError("say what changed: --base REF (a git ref), --base FOLDER (the board before) or the "
                             "records' paths")
    return changes_from_folder(board, Path(base)) if Path(base).is_dir() else changes_from_git(board, base)


# ---- checks -----------------------------------------------------------------------------


def check_changed(board: Path, changes: Changes, cache: CheckCache) -> list[str]:
    """One line per refused record, each checked in full (never taken from the cache); passes are remembered,
    so the build that follows does not check them again."""
    refused = []
    for relative in changes.changed:
        file = board / relative
        if file.is_symlink() or not file.is_file():
            refused.append(f"{relative}: not a plain file (links are not allowed on a board)")
            continue
        try:
            record = read_untrusted(file)
        except SinkbenchError as err:
            refused.append(str(err))
            continue
        data = file.read_bytes()
        found = record_problems(record, data.decode("utf-8"))
        belongs = None if found else submission_path(Record.from_json(record))
        if belongs is not None and belongs != relative:
            found = [f"its record belongs at {belongs} (family/model/revision[.suite])"]
        if found:
            refused.append(summarise(relative, found))
        else:
            cache.remember(content_digest(data))
    return refused


# ---- Markdown ---------------------------------------------------------------------------


def _name(s: Submission) -> str:
    return f"{md(s.name)}, revision {md(s.revision)}"


def previous_release(submissions: list[Submission], new: Submission) -> tuple[Submission | None, str]:
    """The release before `new` on its suite: the same model's if it has one, else its family's (`board track`'s
    order); and which of the two it is."""
    for model, what in ((new.name, "the model's previous release"), (None, "the family's previous release")):
        group = [s for s in releases(submissions, new.family, model) if s.suite == new.suite]
        index = group.index(new)
        if index > 0:
            return group[index - 1], what
    return None, ""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _comparison_table(comparison: Comparison) -> list[str]:
    lines = ["| column | previous | this | change | 95% interval | MDE | verdict |",
             "| --- | ---: | ---: | ---: | --- | ---: | --- |"]
    for change in comparison.columns:
        verdict = f"**{change.verdict.upper()}**" if change.verdict == REGRESSION else md(change.verdict)
        if change.note and change.verdict == UNTESTED:  # why not, as `board compare` says it
            verdict += f" ({md(change.note.replace(': not tested', ''))})"
        mde = "" if change.mde is None else f"{change.mde:.3f}"
        lines.append(f"| {md(heading(change.column))} | {format_value(change.column, change.before)} | "
                     f"{format_value(change.column, change.after)} | "
                     f"{format_change(change.column, change.change['value'])} | {md(interval_text(change))} | {mde} | "
                     f"{verdict} |")
    return lines


def _rank_line(row: Row, suite_rows: list[Row]) -> str:
    s = row.submission
    rank = MISSING if row.rank is None else str(row.rank)
    return (f"Rank band {rank} of {len(suite_rows)} record{'s' * (len(suite_rows) != 1)} on suite "
            f"{md(s.suite[0])} {md(s.suite[1])}; suite score {cell_text(_SCORE, s.entry(_SCORE.name))}.")


def _overlaps(a: Row, b: Row) -> bool:
    ia, ib = bounds(a.submission.entry(_SCORE.name)), bounds(b.submission.entry(_SCORE.name))
    return ia is not None and ib is not None and ia[0] <= ib[1] and ib[0] <= ia[1]


def _nearest_table(row: Row, suite_rows: list[Row]) -> list[str]:
    """The records nearest to `row` by suite score (the row itself in bold), in rank order."""
    score = row.submission.value(_SCORE.name)
    others = [r for r in suite_rows if r is not row and r.submission.value(_SCORE.name) is not None]
    if score is None or not others:
        return ["No other record of this suite to place it among."]
    nearest = sorted(others, key=lambda r: (abs(r.submission.value(_SCORE.name) - score), str(r.submission.path)))[:NEAREST]
    shown = [r for r in suite_rows if r is row or r in nearest]
    lines = [f"The {len(nearest)} record{'s' * (len(nearest) != 1)} nearest by suite score (“same band”: the suite "
             "scores' 95% intervals overlap, so the two cannot be told apart):", "",
             "| rank | model | family | revision | " + " | ".join(md(heading(c)) for c in JUDGED) + " | same band |",
             "| ---: | --- | --- | --- | " + " | ".join("---:" for _ in JUDGED) + " | --- |"]
    for r in shown:
        s = r.submission
        bold = "**" if r is row else ""
        rank = MISSING if r.rank is None else str(r.rank)
        band = "(this record)" if r is row else ("yes" if _overlaps(r, row) else "no")
        lines.append(f"| {rank} | {bold}{md(s.name)}{bold} | {md(s.family)} | {md(s.revision)} | "
                     + " | ".join(cell_text(c, s.entry(c.name)) for c in JUDGED) + f" | {band} |")  # our own digits
    return lines


def record_section(s: Submission, submissions: list[Submission], rows: dict, thresholds: Thresholds) -> tuple[list[str], bool]:
    """The Markdown for one changed record, and whether it regresses against its previous release; `rows`: the
    board's rows (table.ranked) by submission path."""
    row = rows[s.path]
    suite_rows = [r for r in rows.values() if r.submission.suite[0] == s.suite[0]]
    released = f"released {s.release_date}" if s.release_date else "no release date"
    lines = [f"### {_name(s)} (family {md(s.family)}, suite {md(' '.join(s.suite))})", "",
             f"{md(s.path)}, {md(released)}. {_rank_line(row, suite_rows)}", ""]
    before, what = previous_release(submissions, s)
    if before is not None:
        try:
            comparison = compare(before.record, s.record, thresholds)
        except SinkbenchError as err:
            lines += [f"Against {what}, {_name(before)}: not compared ({md(err)}).", ""]
        else:
            lines += [f"Against {what}: {_name(before)} (released {md(before.release_date or 'no release date')}). "
                      f"{md(what_is_compared(comparison, before.record, s.record))} "
                      f"{md(pairing(comparison))} {md(_sentence(thresholds.describe()))}.", "",
                      *_comparison_table(comparison), "",
                      f"**{md(verdict_line(comparison, thresholds, 'this record against ' + what))}**", ""]
            return lines, bool(comparison.regressions)
    else:
        lines += [f"The first release of family {md(s.family)} on suite {md(' '.join(s.suite))} on this board: nothing "
                  "before it to compare with.", ""]
    return lines + _nearest_table(row, suite_rows) + [""], False


def markdown(changes: Changes, submissions: list[Submission], thresholds: Thresholds,
             current: bool) -> tuple[str, list[Submission]]:
    """The review of a change that checked and built, and the changed records that regress against their previous
    release; `current`: the built files in the change were up to date."""
    rows = {row.submission.path: row for row in ranked(submissions)}
    by_path = {s.path: s for s in submissions}
    count = len(changes.changed)
    lines = [MARKER, "## sinkbench board review", "",
             f"Against {changes.against}: {count} record{'s' * (count != 1)} added or changed, "
             f"{len(changes.removed)} removed. Every changed record is valid, and the board builds "
             f"({len(submissions)} records)."]
    lines.append("The built files (README.md, leaderboard.csv, board.json, site/) were current." if current else
                 "The built files (README.md, leaderboard.csv, board.json, site/) were not current: run "
                 "`sinkbench board build` and commit them, or leave it to the board's maintainers.")
    sections, regressed = [], []
    for relative in changes.changed:
        section, regression = record_section(by_path[relative], submissions, rows, thresholds)
        sections += section
        if regression:
            regressed.append(by_path[relative])
    if regressed:
        lines.append(f"**Regression** against the previous release: {', '.join(_name(s) for s in regressed)}.")
    lines += [""] + [f"Removed: {md(p)}" for p in changes.removed] + ([""] if changes.removed else []) + sections
    return "\n".join(lines).rstrip() + "\n", regressed


def refused_markdown(changes: Changes, refused: list[str]) -> str:
    lines = [MARKER, "## sinkbench board review", "",
             f"Against {changes.against}: {len(refused)} of {len(changes.changed)} changed records "
             f"{'are' if len(refused) != 1 else 'is'} refused; the board was not rebuilt.", "",
             *(f"- {md(line)}" for line in refused), "",
             "`sinkbench validate FILE` shows what is wrong with a record; `sinkbench submit` checks it before filing."]
    return "\n".join(lines) + "\n"


def failed_build_markdown(changes: Changes, error: SinkbenchError) -> str:
    return "\n".join([MARKER, "## sinkbench board review", "",
                      f"Against {changes.against}: every changed record is valid, but the board does not build: "
                      f"{md(error)}"]) + "\n"
