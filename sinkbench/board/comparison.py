"""`board compare A B`: two records, column by column with paired 95% intervals and verdicts, head by head.

The statistics are sinkbench.record.compare's: each column's change B − A with its paired
bootstrap interval on the documents both records share, the MDE of that comparison, a verdict,
and McNemar's exact test per accuracy task. This module says what is compared (one model, one
family, or two families: only within a family can a change be a regression) and prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinkbench.board.store import revision_label
from sinkbench.board.table import format_change, format_change_interval, format_value, heading
from sinkbench.record.compare import REGRESSION, UNTESTED, WORSE, ColumnChange, Comparison, Thresholds
from sinkbench.record.identity import describe_model
from sinkbench.record.types import Record


def plain(text) -> str:
    """A record's string on one terminal line."""
    return " ".join(str(text).split())


def describe(record: Record) -> str:
    model = record.model
    released = model.release_date or "no release date"
    return (f"{plain(describe_model(model))} (family {plain(model.family)}, revision {plain(revision_label(model))}, "
            f"{released})")


def what_is_compared(comparison: Comparison, a: Record, b: Record) -> str:
    """One sentence: one model, one family, or two families (and so whether a regression can be called)."""
    family_a, family_b = plain(a.model.family), plain(b.model.family)
    if comparison.same_model:
        return f"Two records of one model ({plain(a.model.name)}, family {family_a}): a regression test."
    if comparison.regression_test:
        return (f"Two models of one family ({family_a}: {plain(a.model.name)} and {plain(b.model.name)}): "
                "a regression test within the family.")
    return (f"Two models of different families (A: {family_a}, B: {family_b}): a comparison, not a regression test; "
            "verdicts say worse or better, never regression, and the exit status is 0.")


def pairing(comparison: Comparison) -> str:
    if not comparison.paired:
        return ("UNPAIRED (asked for with --unpaired): A and B are treated as independent samples; intervals "
                "of the changes are wider than a paired comparison's, and McNemar's test is not run.")
    shared = ", ".join(f"{task} {n}" for task, n in sorted(comparison.shared.items()))
    text = f"Paired on the documents both records hold (same id and content hash): {shared}."
    if comparison.per_tokenizer:
        text += (f" Left out: {', '.join(sorted(comparison.per_tokenizer))} (synthetic documents built to a length in "
                 "each model's own tokens, so the two models saw other texts under the same ids).")
    return text


def interval_text(change: ColumnChange) -> str:
    """'[-0.031, +0.012]', or '' without an interval."""
    return format_change_interval(change.column, change.change["ci_low"], change.change["ci_high"])


def column_lines(comparison: Comparison) -> list[str]:
    lines = [f"    {'column':<34}{'A':>10}{'B':>10}{'B - A':>10}  {'95% interval':<20}{'MDE':>8}  verdict"]
    for change in comparison.columns:
        mde = "" if change.mde is None else f"{change.mde:.3f}"
        verdict = change.verdict.upper() if change.verdict == REGRESSION else change.verdict
        if change.note and change.verdict == UNTESTED:
            verdict += f" ({plain(change.note).replace(': not tested', '')})"
        lines.append(f"    {heading(change.column):<34}{format_value(change.column, change.before):>10}"
                     f"{format_value(change.column, change.after):>10}"
                     f"{format_change(change.column, change.change['value']):>10}  {interval_text(change):<20}{mde:>8}  "
                     f"{verdict}".rstrip())
    return lines


def mcnemar_lines(comparison: Comparison) -> list[str]:
    if not comparison.tasks:
        return []
    lines = ["McNemar's exact test per accuracy task (baseline condition, shared documents):",
             f"    {'task':<34}{'n':>6}{'A':>8}{'B':>8}{'lost':>7}{'gained':>8}{'p':>10}"]
    for test in comparison.tasks:
        lines.append(f"    {plain(test.task):<34}{test.n:>6}{test.before:>8.3f}{test.after:>8.3f}{test.lost:>7}"
                     f"{test.gained:>8}{test.p_value:>10.4f}")
    lines.append("    lost: right in A and wrong in B; gained: the reverse; p: two-sided, exact binomial on lost + gained.")
    return lines


def describe_regression(change: ColumnChange, limit: float | None) -> str:
    verb = "rose" if change.change["value"] > 0 else "fell"
    limit_text = "" if limit is None else f"; limit {limit:g}"
    return (f"{heading(change.column)} {verb} by {abs(change.change['value']):.3f} ({change.before:.3f} -> "
            f"{change.after:.3f}; 95% interval of the change {interval_text(change)}{limit_text})")


def verdict_line(comparison: Comparison, thresholds: Thresholds, what: str = "B against A") -> str:
    if comparison.regressions:
        return f"REGRESSION of {what}: " + "; ".join(describe_regression(c, thresholds.limit(c.column))
                                                   for c in comparison.regressions)
    if not comparison.regression_test:
        worse = [heading(c.column) for c in comparison.columns if c.verdict == WORSE]
        return (f"Not a regression test (different families); worse in B: {', '.join(worse)}." if worse else
                "Not a regression test (different families); nothing is worse in B.")
    return f"No regression of {what}."


# ---- heads ------------------------------------------------------------------------------


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
    """Every (layer, head) where α is defined in both, largest |change| of α first."""
    changes = [HeadChange(layer, head, a, b) for layer, (row_a, row_b) in enumerate(zip(before, after))
               for head, (a, b) in enumerate(zip(row_a, row_b)) if a is not None and b is not None]
    return sorted(changes, key=lambda c: (-abs(c.change), c.layer, c.head))


def same_shape(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b))


def head_lines(a: Record, b: Record, eps: float, top: int) -> list[str]:
    alpha_a, alpha_b = a.profile.alpha_by_head, b.profile.alpha_by_head
    if not same_shape(alpha_a, alpha_b):
        return [f"Heads not compared: A has {len(alpha_a)} x {len(alpha_a[0])} (layers x heads), "
                f"B has {len(alpha_b)} x {len(alpha_b[0])}."]
    changes = head_changes(alpha_a, alpha_b)
    gained = [c for c in changes if c.before <= eps < c.after]
    lost = [c for c in changes if c.after <= eps < c.before]
    mean = sum(abs(c.change) for c in changes) / len(changes) if changes else float("nan")
    lines = [f"Heads ({len(alpha_a)} layers x {len(alpha_a[0])} heads, α at T={b.profile.T}): "
             f"{len(gained)} gained a sink (α > {eps:g}), {len(lost)} lost one; mean |change| {mean:.3f}.",
             f"Largest changes of α{'' if top >= len(changes) else f' (top {top})'}:"]
    for c in changes[:top]:
        state = "gained its sink" if c in gained else "lost its sink" if c in lost else ""
        lines.append(f"    layer {c.layer:>3} head {c.head:>3}   {c.before:.3f} -> {c.after:.3f}   "
                     f"{c.change:+.3f}  {state}".rstrip())
    return lines


def report(comparison: Comparison, a: Record, b: Record, thresholds: Thresholds, eps: float = 0.3, top: int = 10) -> str:
    """The whole `board compare` report."""
    suite = a.provenance.suite
    lines = [f"A: {describe(a)}", f"B: {describe(b)}", what_is_compared(comparison, a, b), pairing(comparison),
             f"suite {suite.name} {suite.version}; {thresholds.describe()}.", "",
             *column_lines(comparison), ""]
    tests = mcnemar_lines(comparison)
    lines += tests + ([""] if tests else [])
    lines += head_lines(a, b, eps, top) + ["", verdict_line(comparison, thresholds)]
    return "\n".join(lines)
