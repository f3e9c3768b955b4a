"""`board track FAMILY`: a family's releases in order, each against the one before it, with paired intervals.

Releases are ordered by release date, then revision (undated ones last), within each suite (a
suite's records are compared only with records of the same suite version). Each consecutive pair
goes through sinkbench.record.compare; the CLI exits 1 when the latest release regresses against
the one before it (earlier regressions are shown but do not fail), 2 on bad input, including two
releases that cannot be paired (their documents changed).
"""

from __future__ import annotations

from sinkbench.board.comparison import column_lines, plain, verdict_line
from sinkbench.board.store import Submission, quote
from sinkbench.errors import SinkbenchError
from sinkbench.record.compare import Comparison, Thresholds, compare


def releases(submissions: list[Submission], family: str, model: str | None = None) -> list[Submission]:
    """The family's records (of one model, if given) by suite, then release date, then revision; undated ones last."""
    chosen = [s for s in submissions if s.family == family and (model is None or s.name == model)]
    if not chosen:
        families = ", ".join(sorted({quote(s.family) for s in submissions})) or "none"
        what = f"model {quote(model)} of family {quote(family)}" if model else f"family {quote(family)}"
        raise SinkbenchError(f"no submissions of {what} on the board (families: {families})")
    return sorted(chosen, key=lambda s: (s.suite, s.release_date is None, s.release_date or "", s.revision, s.name))


def _by_suite(chosen: list[Submission]) -> list[list[Submission]]:
    groups: dict[tuple[str, str], list[Submission]] = {}
    for s in chosen:
        groups.setdefault(s.suite, []).append(s)
    return [groups[suite] for suite in sorted(groups)]


def _compare(before: Submission, after: Submission, index: int, thresholds: Thresholds, unpaired: bool) -> Comparison:
    try:
        return compare(before.record, after.record, thresholds, unpaired=unpaired)
    except SinkbenchError as err:
        raise SinkbenchError(f"release [{index + 1}] ({plain(after.name)} {plain(after.revision)}) against [{index}] "
                             f"({plain(before.name)} {plain(before.revision)}): {err}") from None


def track(chosen: list[Submission], thresholds: Thresholds, unpaired: bool = False) -> tuple[str, list]:
    """The report, and the regressions of each suite's latest release against the one before it."""
    lines, latest = [], []
    for group in _by_suite(chosen):
        suite = " ".join(group[0].suite)
        lines += [f"{plain(group[0].family)} on suite {suite}: {len(group)} release{'s' * (len(group) != 1)}, oldest "
                  "first; each against the release before it, paired on their shared documents"
                  + (" (UNPAIRED: --unpaired)" if unpaired else "") + ".", thresholds.describe() + ".", ""]
        comparison = None
        for index, s in enumerate(group):
            lines.append(f"[{index + 1}] {s.release_date or 'no date'}  {plain(s.name)}  revision {plain(s.revision)}")
            if index == 0:
                lines.append("    (the first release: nothing before it)")
            else:
                comparison = _compare(group[index - 1], s, index, thresholds, unpaired)
                lines += column_lines(comparison)
                lines.append("    " + verdict_line(comparison, thresholds, f"[{index + 1}] against [{index}]"))
            lines.append("")
        last = len(group)
        if comparison is None:
            lines.append("One release: nothing to compare yet.")
        elif comparison.regressions:
            latest += comparison.regressions
            lines.append(f"REGRESSION: the latest release [{last}] against [{last - 1}] on suite {suite}.")
        else:
            lines.append(f"No regression of the latest release [{last}] against [{last - 1}] on suite {suite}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n", latest
