"""Release tracking and comparison: a family's releases in order, two records column by column and
head by head, and the regression rule a model team's CI runs on.

A regression is sink dependence (`bos_dependence`, `knockout_dependence`) rising by more than
`max_dependence_rise`, or `suite_score` falling by more than `max_score_drop`; both absolute,
and which way is worse comes from each column's direction in sinkbench.columns. The CLI exits 1
on a regression (`track`: the latest release against the one before it), 2 on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinkbench.board.store import Submission, quote, revision_label
from sinkbench.board.table import format_change, format_value, heading
from sinkbench.record.columns import COLUMNS, COLUMNS_BY_NAME, LOWER, Column
from sinkbench.errors import SinkbenchError


@dataclass(frozen=True)
class Thresholds:
    # A twentieth of the suite score more lost when the sink is removed: a real change of mechanism.
    max_dependence_rise: float = 0.05
    # About one standard error of accuracy on a 500-document task (sqrt(0.25 / 500) = 0.022).
    max_score_drop: float = 0.02

    def __post_init__(self):
        if self.max_dependence_rise < 0 or self.max_score_drop < 0:
            raise SinkbenchError("--max-dependence-rise and --max-score-drop must be >= 0")

    def limits(self) -> dict[str, float]:
        """column name -> how much worse it may get."""
        return {"suite_score": self.max_score_drop, "bos_dependence": self.max_dependence_rise,
                "knockout_dependence": self.max_dependence_rise}

    def describe(self) -> str:
        return (f"regression: sink dependence rising by more than {self.max_dependence_rise:g} or the suite score "
                f"falling by more than {self.max_score_drop:g}")


@dataclass(frozen=True)
class Regression:
    column: Column
    before: float
    after: float
    limit: float

    def describe(self) -> str:
        verb = "rose" if self.after > self.before else "fell"
        return (f"{heading(self.column)} {verb} by {abs(self.after - self.before):.3f} "
                f"({self.before:.3f} -> {self.after:.3f}; limit {self.limit:g})")


def regressions(before: dict, after: dict, thresholds: Thresholds) -> list[Regression]:
    """The watched columns that got worse by more than their limit, between two records' summaries."""
    found = []
    for name, limit in thresholds.limits().items():
        column = COLUMNS_BY_NAME[name]
        old, new = before[name]["value"], after[name]["value"]
        if old is None or new is None:
            continue
        worse = new - old if column.direction == LOWER else old - new
        if worse > limit + 1e-12:  # the tolerance keeps a change of exactly the limit a pass
            found.append(Regression(column, old, new, limit))
    return found


def plain(text: str) -> str:
    """A record's string on one terminal line."""
    return " ".join(str(text).split())


def describe(record: dict) -> str:
    model = record["model"]
    released = model["release_date"] or "no release date"
    return (f"{plain(model['name'])} (family {plain(model['family'])}, revision {plain(revision_label(model))}, "
            f"{released})")


def _column_line(column: Column, values: list, change=None, flag: str = "") -> str:
    cells = "".join(f"{format_value(column, v):>11}" for v in values)
    change_text = f"{format_change(column, change):>11}" if change is not None else ""
    return f"    {heading(column):<30}{cells}{change_text}{flag}".rstrip()


def _change(before, after):
    return None if before is None or after is None else after - before


# ---- track ------------------------------------------------------------------------------


def releases(submissions: list[Submission], family: str, model: str | None = None) -> list[Submission]:
    """The family's records (of one model, if given) by release date, then revision; undated ones last."""
    chosen = [s for s in submissions if s.family == family and (model is None or s.name == model)]
    if not chosen:
        families = ", ".join(sorted({quote(s.family) for s in submissions})) or "none"
        what = f"model {quote(model)} of family {quote(family)}" if model else f"family {quote(family)}"
        raise SinkbenchError(f"no submissions of {what} on the board (families: {families})")
    return sorted(chosen, key=lambda s: (s.release_date is None, s.release_date or "", s.revision, s.name))


def track(chosen: list[Submission], thresholds: Thresholds) -> tuple[str, list[Regression]]:
    """The report, and the regressions of the latest release against the one before it."""
    suite = " ".join(chosen[0].suite)
    lines = [f"{plain(chosen[0].family)}: {len(chosen)} release{'s' * (len(chosen) != 1)} on suite {suite}, oldest first; "
             "the last column is the change from the release before.", thresholds.describe() + ".", ""]
    latest: list[Regression] = []
    for index, s in enumerate(chosen):
        previous = chosen[index - 1] if index else None
        lines.append(f"[{index + 1}] {s.release_date or 'no date'}  {plain(s.name)}  revision {plain(s.revision)}")
        found = regressions(previous.record["summary"], s.record["summary"], thresholds) if previous else []
        flagged = {r.column.name for r in found}
        for column in COLUMNS:
            change = _change(previous.value(column.name), s.value(column.name)) if previous else None
            lines.append(_column_line(column, [s.value(column.name)], change,
                                      "  REGRESSION" if column.name in flagged else ""))
        lines.append("")
        if index == len(chosen) - 1:
            latest = found
    last = len(chosen)
    if last == 1:
        lines.append("One release: nothing to compare yet.")
    elif latest:
        lines.append(f"REGRESSION: the latest release [{last}] against [{last - 1}]: "
                     + "; ".join(r.describe() for r in latest))
    else:
        lines.append(f"No regression of the latest release [{last}] against [{last - 1}].")
    return "\n".join(lines), latest


# ---- compare ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadChange:
    layer: int
    head: int
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


def head_changes(before: list[list[float]], after: list[list[float]]) -> list[HeadChange]:
    """Every (layer, head), largest |change| of α first."""
    changes = [HeadChange(layer, head, a, b) for layer, (row_a, row_b) in enumerate(zip(before, after))
               for head, (a, b) in enumerate(zip(row_a, row_b))]
    return sorted(changes, key=lambda c: (-abs(c.change), c.layer, c.head))


def same_shape(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b))


def compare(a: dict, b: dict, thresholds: Thresholds, eps: float = 0.3, top: int = 10) -> tuple[str, list[Regression]]:
    """Two records column by column and head by head; the regressions of B against A."""
    suite_a, suite_b = (tuple(r["provenance"]["suite"][k] for k in ("name", "version")) for r in (a, b))
    if suite_a != suite_b:
        raise SinkbenchError(f"A is suite {' '.join(suite_a)} and B is {' '.join(suite_b)}: "
                             "compare records of one suite version")
    found = regressions(a["summary"], b["summary"], thresholds)
    flagged = {r.column.name for r in found}
    lines = [f"A: {describe(a)}", f"B: {describe(b)}", f"suite {' '.join(suite_a)}; {thresholds.describe()}.", "",
             f"    {'column':<30}{'A':>11}{'B':>11}{'B - A':>11}"]
    for column in COLUMNS:
        values = [a["summary"][column.name]["value"], b["summary"][column.name]["value"]]
        lines.append(_column_line(column, values, _change(*values), "  REGRESSION" if column.name in flagged else ""))
    lines.append("")
    alpha_a, alpha_b = a["profile"]["alpha_by_head"], b["profile"]["alpha_by_head"]
    if same_shape(alpha_a, alpha_b):
        changes = head_changes(alpha_a, alpha_b)
        gained = [c for c in changes if c.before <= eps < c.after]
        lost = [c for c in changes if c.after <= eps < c.before]
        mean = sum(abs(c.change) for c in changes) / len(changes)
        lines.append(f"Heads ({len(alpha_a)} layers x {len(alpha_a[0])} heads, α at T={b['profile']['T']}): "
                     f"{len(gained)} gained a sink (α > {eps:g}), {len(lost)} lost one; mean |change| {mean:.3f}.")
        lines.append(f"Largest changes of α{'' if top >= len(changes) else f' (top {top})'}:")
        for c in changes[:top]:
            state = "gained its sink" if c in gained else "lost its sink" if c in lost else ""
            lines.append(f"    layer {c.layer:>3} head {c.head:>3}   {c.before:.3f} -> {c.after:.3f}   "
                         f"{c.change:+.3f}  {state}".rstrip())
    else:
        lines.append(f"Heads not compared: A has {len(alpha_a)} x {len(alpha_a[0])} (layers x heads), "
                     f"B has {len(alpha_b)} x {len(alpha_b[0])}.")
    lines.append("")
    if found:
        lines.append("REGRESSION of B against A: " + "; ".join(r.describe() for r in found))
    else:
        lines.append("No regression of B against A.")
    return "\n".join(lines), found
