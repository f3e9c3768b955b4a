"""How a number and its 95% interval are printed, everywhere: '0.584 [0.551, 0.617]'.

One notation for `sinkbench run`'s report, `board compare`, the board's tables, pages, hover
titles, chart tooltips and the review comment, so that a reader who has learnt it once reads
every output. The decimals are the column's (`Column.decimals`) or the caller's; from 1000 up a
number has none, since they would be noise (and no thousands separator, which would read as a
bound inside '[512, 4096]'). A change (B − A) carries its sign.
"""

from __future__ import annotations

MISSING = "—"  # not measured: the record's note says why


def number(value, decimals: int = 3, *, signed: bool = False) -> str:
    """'0.584', '8266', '+0.012' (signed; a change that rounds to nothing is '+0.000'); MISSING for None."""
    if value is None:
        return MISSING
    if abs(value) >= 1000:
        decimals = 0
    if round(value, decimals) == 0:
        value = 0.0  # never '-0.000'
    return f"{value:{'+' if signed else ''}.{decimals}f}"


def interval(low, high, decimals: int = 3, *, signed: bool = False) -> str:
    """'[0.551, 0.617]', or '' when there is no interval."""
    if low is None or high is None:
        return ""
    return f"[{number(low, decimals, signed=signed)}, {number(high, decimals, signed=signed)}]"


def estimate(value, low, high, decimals: int = 3, *, signed: bool = False) -> str:
    """'0.584 [0.551, 0.617]'; the value alone without an interval; MISSING without a value."""
    text = number(value, decimals, signed=signed)
    bounds = interval(low, high, decimals, signed=signed)
    return f"{text} {bounds}" if bounds and text != MISSING else text


def entry_text(entry, decimals: int = 3, *, signed: bool = False) -> str:
    """A record's estimate (sinkbench.record.types.Estimate) as '0.584 [0.551, 0.617]'."""
    return estimate(entry.value, entry.ci_low, entry.ci_high, decimals, signed=signed)
