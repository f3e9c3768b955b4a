"""The board as one pandas table (a row per submission, the summary columns of sinkbench.record.columns) and its Markdown and CSV views.

Rows are ranked by suite score (best first, missing last), then model, family and revision, so
the same submissions always give the same bytes. Names, titles, descriptions and directions come
from sinkbench.record.columns; nothing here restates them.
"""

from __future__ import annotations

import html
import math
import re

import pandas as pd

from sinkbench.record.columns import COLUMNS, HIGHER, LOWER, Column

IDENTITY = ("rank", "family", "model", "revision", "release_date", "suite", "suite_version", "path")
ARROWS = {HIGHER: "↑", LOWER: "↓"}
BETTER = {HIGHER: "higher is better", LOWER: "lower is better"}
DECIMALS = {"tokens/s": 0, "s": 1}  # every other unit (fractions, ratios, relative changes): 3
MISSING = "—"


def frame(submissions) -> pd.DataFrame:
    """One row per submission: identity, suite, file path and every summary column (NaN where missing), ranked."""
    rows = [{
        "family": s.family, "model": s.name, "revision": s.revision, "release_date": s.release_date,
        "suite": s.suite[0], "suite_version": s.suite[1], "path": str(s.path),
        **{column.name: s.value(column.name) for column in COLUMNS},
    } for s in submissions]
    table = pd.DataFrame(rows, columns=[*IDENTITY[1:], *(c.name for c in COLUMNS)])
    table = table.astype({c.name: "float64" for c in COLUMNS})
    table["release_date"] = table["release_date"].astype(object).where(table["release_date"].notna(), None)
    table = table.sort_values(["suite_score", "model", "family", "revision"], ascending=[False, True, True, True],
                              na_position="last", kind="mergesort").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_value(column: Column, value) -> str:
    return MISSING if is_missing(value) else f"{value:.{DECIMALS.get(column.unit, 3)}f}"


def format_change(column: Column, change) -> str:
    if is_missing(change):
        return ""
    decimals = DECIMALS.get(column.unit, 3)
    return f"{0.0 if round(change, decimals) == 0 else change:+.{decimals}f}"  # no "-0.000"


def heading(column: Column) -> str:
    """The column's title with its direction: 'suite score ↑'."""
    arrow = ARROWS.get(column.direction)
    return f"{column.title} {arrow}" if arrow else column.title


# ---- Markdown -----------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text) -> str:
    """Text safe inside a Markdown table cell: one line, no table break, no markup, no HTML."""
    text = " ".join(str(text).split())  # newlines would end the row
    text = html.escape(text, quote=False)  # <script> stays text on GitHub
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)  # a `|` would split the cell


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(table: pd.DataFrame) -> str:
    suites = sorted({f"{s} {v}" for s, v in zip(table["suite"], table["suite_version"])})
    lines = [
        "# sinkbench leaderboard",
        "",
        "Written by `sinkbench board build` from the records under `submissions/`; do not edit it by hand.",
        "Submit a record with `sinkbench submit RECORD`. The same table is in `leaderboard.csv`; "
        "`site/index.html` has it sortable, with plots.",
        "",
    ]
    if table.empty:
        lines += ["No submissions yet.", ""]
    else:
        families = table["family"].nunique()
        lines += [f"Suite {md(', '.join(suites))}: {len(table)} records of {families} famil{'ies' if families != 1 else 'y'}, "
                  "ranked by suite score. ↑ higher is better, ↓ lower is better, no arrow: descriptive. "
                  f"{MISSING} : not measured (the record's note says why).", ""]
        header = ["#", "model", "family", "revision", "released", *(md(heading(c)) for c in COLUMNS)]
        lines += [_md_row(header), _md_row(["---:", "---", "---", "---", "---", *("---:" for _ in COLUMNS)])]
        for row in table.itertuples(index=False):
            values = row._asdict()
            cells = [str(row.rank), md(row.model), md(row.family), md(row.revision), md(row.release_date or MISSING)]
            cells += [format_value(c, values[c.name]) for c in COLUMNS]
            lines.append(_md_row(cells))
        lines.append("")
    lines += ["## Columns", "", _md_row(["column", "name", "better", "unit", "description"]),
              _md_row(["---", "---", "---", "---", "---"])]
    for c in COLUMNS:
        lines.append(_md_row([md(c.title), f"`{c.name}`", BETTER.get(c.direction, "descriptive"), md(c.unit), md(c.description)]))
    return "\n".join(lines) + "\n"


# ---- CSV --------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(text):
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): a leading ' before = + - @."""
    return "'" + text if isinstance(text, str) and text.startswith(_FORMULA_START) else text


def csv(table: pd.DataFrame) -> str:
    """The table as CSV (pandas quoting: commas, quotes and newlines in a name stay inside their cell)."""
    safe = table.copy()
    for name in ("family", "model", "revision"):
        safe[name] = safe[name].map(_spreadsheet_safe)
    return safe.to_csv(index=False, lineterminator="\n", float_format="%.10g")
