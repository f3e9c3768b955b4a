"""Rank bands: a rank says how many models are clearly better, so models that cannot be told apart share one.

Chatbot Arena's rule, on the suite score's 95% intervals: a record's rank is 1 + the number of
records whose interval lies wholly above its own. Every record whose interval overlaps the
leader's gets rank 1; ranks can repeat and skip. Records of different suites are never ranked
against each other (they score different tasks), and a record whose suite score has no interval
is ranked by its value alone (the interval of a point).
"""

from __future__ import annotations

from sinkbench.record.types import Estimate

RANKED_BY = "suite_score"
RULE = ("Ranks are bands, not places: a record's rank is 1 + the number of records of its suite whose 95% "
        "interval of the suite score lies wholly above its own (Chatbot Arena's rule). Records whose "
        "intervals overlap the leader's share rank 1; the same rank means they cannot be told apart from the "
        "records above them at this sample size.")


def bounds(entry: Estimate) -> tuple[float, float] | None:
    """(low, high) of an estimate's 95% interval; (value, value) without one; None without a value."""
    if entry.value is None:
        return None
    if entry.ci_low is None or entry.ci_high is None:
        return entry.value, entry.value
    return entry.ci_low, entry.ci_high


def rank_bands(entries: list[Estimate]) -> list[int | None]:
    """The rank of each estimate among `entries` (one suite's suite scores), None where there is no value."""
    intervals = [bounds(entry) for entry in entries]
    lows = [interval[0] for interval in intervals if interval is not None]
    ranks = []
    for interval in intervals:
        if interval is None:
            ranks.append(None)
            continue
        ranks.append(1 + sum(low > interval[1] for low in lows))
    return ranks
