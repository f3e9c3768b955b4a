"""The board as one pandas table (a row per submission: identity, rank band, every summary column with its
95% interval) and its Markdown and CSV views.

Rows are grouped by suite (records of different suites score different tasks and are never
ranked together), then ranked by rank band, suite score, model, family and revision, so the same
submissions always give the same bytes. Names, titles, descriptions, directions and kinds come
from sinkbench.record.columns; nothing here restates them. Columns of kind MACHINE (throughput,
wall time) describe the machine a record ran on: they are listed apart, with the device, unranked.
"""

from __future__ import annotations

import html
import math
import re

import pandas as pd

from sinkbench.board.ranks import RANKED_BY, RULE, rank_bands
from sinkbench.record.columns import COLUMNS, HIGHER, LOWER, MACHINE, MODEL, Column
from sinkbench.record.identity import weights_of, weights_tag

IDENTITY = ("rank", "family", "model", "quantization", "finetune", "revision", "release_date", "suite", "suite_version",
            "device", "path", "page", "by_construction")
MODEL_COLUMNS = tuple(c for c in COLUMNS if c.kind == MODEL)
MACHINE_COLUMNS = tuple(c for c in COLUMNS if c.kind == MACHINE)
ARROWS = {HIGHER: "↑", LOWER: "↓"}
BETTER = {HIGHER: "higher is better", LOWER: "lower is better"}
MISSING = "—"
BY_CONSTRUCTION = "0 by construction"


def interval_names(column: Column) -> tuple[str, str]:
    return f"{column.name}_ci_low", f"{column.name}_ci_high"


def frame(submissions) -> pd.DataFrame:
    """One row per submission: identity, rank band, file paths and every summary column with its interval
    (NaN where missing); grouped by suite, ranked within it."""
    rows = []
    for s in submissions:
        weights = weights_of(s.record["model"])  # {} for a record of schema 2.0: None in both columns
        row = {"family": s.family, "model": s.name, "quantization": weights.get("quantization"),
               "finetune": weights.get("finetune"), "revision": s.revision, "release_date": s.release_date,
               "suite": s.suite[0], "suite_version": s.suite[1], "device": s.device, "path": str(s.path),
               "page": str(s.page),
               "by_construction": " ".join(c.name for c in COLUMNS if s.entry(c.name)["by_construction"])}
        for column in COLUMNS:
            entry = s.entry(column.name)
            low, high = interval_names(column)
            row.update({column.name: entry["value"], low: entry["ci_low"], high: entry["ci_high"]})
        rows.append(row)
    numbers = [name for c in COLUMNS for name in (c.name, *interval_names(c))]
    table = pd.DataFrame(rows, columns=[*IDENTITY[1:], *numbers]).astype({name: "float64" for name in numbers})
    table["release_date"] = table["release_date"].astype(object).where(table["release_date"].notna(), None)
    ranks = pd.Series(pd.NA, index=table.index, dtype="Int64")
    for _, group in table.groupby("suite", sort=True):
        entries = [{"value": _number(r[RANKED_BY]), "ci_low": _number(r[f"{RANKED_BY}_ci_low"]),
                    "ci_high": _number(r[f"{RANKED_BY}_ci_high"])} for _, r in group.iterrows()]
        ranks.loc[group.index] = pd.array(rank_bands(entries), dtype="Int64")
    table.insert(0, "rank", ranks)
    table = table.sort_values(["suite", "rank", RANKED_BY, "model", "family", "revision"],
                              ascending=[True, True, False, True, True, True], na_position="last", kind="mergesort")
    return table.reset_index(drop=True)


def _number(value) -> float | None:
    return None if is_missing(value) else float(value)


def is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def format_value(column: Column, value) -> str:
    return MISSING if is_missing(value) else f"{value:.{column.decimals}f}"


def format_interval(column: Column, low, high) -> str:
    """'0.513–0.687', or '' without an interval."""
    if is_missing(low) or is_missing(high):
        return ""
    return f"{low:.{column.decimals}f}–{high:.{column.decimals}f}"


def format_change(column: Column, change) -> str:
    if is_missing(change):
        return ""
    places = column.decimals
    return f"{0.0 if round(change, places) == 0 else change:+.{places}f}"  # no "-0.000"


def heading(column: Column) -> str:
    """The column's title with its direction: 'suite score ↑'."""
    arrow = ARROWS.get(column.direction)
    return f"{column.title} {arrow}" if arrow else column.title


def suites(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(suite, version, its rows) for each suite on the board, by name."""
    return [(name, str(group["suite_version"].iloc[0]), group) for name, group in table.groupby("suite", sort=True)]


def cell_text(column: Column, values: dict) -> str:
    """A summary cell for text outputs: '0.600 (0.513–0.687)', '0 by construction' or the dash."""
    if column.name in values["by_construction"].split():
        return BY_CONSTRUCTION
    value = format_value(column, values[column.name])
    interval = format_interval(column, *(values[name] for name in interval_names(column)))
    return f"{value} ({interval})" if interval else value


# ---- Markdown -----------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text) -> str:
    """Text safe inside a Markdown table cell: one line, no table break, no markup, no HTML."""
    text = " ".join(str(text).split())  # newlines would end the row
    text = html.escape(text, quote=False)  # <script> stays text on GitHub
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)  # a `|` would split the cell


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_suite(name: str, version: str, rows: pd.DataFrame) -> list[str]:
    families = rows["family"].nunique()
    lines = [f"## Suite {md(name)} {md(version)}", "",
             f"{len(rows)} record{'s' * (len(rows) != 1)} of {families} famil{'ies' if families != 1 else 'y'}, by rank band. "
             f"Each cell: the value and its 95% interval. {MISSING} : not measured (the record's note says why).", ""]
    header = ["#", "model", "family", "revision", "released", *(md(heading(c)) for c in MODEL_COLUMNS)]
    lines += [_md_row(header), _md_row(["---:", "---", "---", "---", "---", *("---:" for _ in MODEL_COLUMNS)])]
    for values in rows.to_dict("records"):
        rank = MISSING if is_missing(values["rank"]) else str(values["rank"])
        cells = [rank, model_label(values), md(values["family"]), md(values["revision"]),
                 md(values["release_date"] or MISSING)]
        lines.append(_md_row(cells + [cell_text(c, values) for c in MODEL_COLUMNS]))
    lines += ["", f"### Machine facts, suite {md(name)}", "",
              "What the machine that ran each record measured (`provenance.device`), not the model: compare them only "
              "between records of one device. Not ranked.", "",
              _md_row(["device", "model", "family", "revision", *(md(heading(c)) for c in MACHINE_COLUMNS)]),
              _md_row(["---", "---", "---", "---", *("---:" for _ in MACHINE_COLUMNS)])]
    machine = rows.sort_values(["device", "model", "family", "revision"], kind="mergesort")
    for values in machine.to_dict("records"):
        cells = [md(values["device"]), md(values["model"]), md(values["family"]), md(values["revision"])]
        lines.append(_md_row(cells + [format_value(c, values[c.name]) for c in MACHINE_COLUMNS]))
    return lines + [""]


def model_label(values: dict) -> str:
    """The Markdown model cell: 'smollm2-135m (Q4\\_1, Instruct)', the name alone when the record does not say."""
    tag = weights_tag(values)
    return md(values["model"]) + (f" ({md(tag)})" if tag else "")


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "# sinkbench leaderboard",
        "",
        "Written by `sinkbench board build` from the records under `submissions/`; do not edit it by hand.",
        "Submit a record with `sinkbench submit RECORD`. The same numbers are in `leaderboard.csv` and "
        "`board.json`; `site/index.html` has them sortable, with plots and a page per record.",
        "",
    ]
    if table.empty:
        lines += ["No submissions yet.", ""]
    else:
        lines += [md(RULE), "", "↑ higher is better, ↓ lower is better, no arrow: descriptive.", ""]
        for name, version, rows in suites(table):
            lines += _md_suite(name, version, rows)
    lines += ["## Columns", "", _md_row(["column", "name", "better", "unit", "kind", "description"]),
              _md_row(["---", "---", "---", "---", "---", "---"])]
    for c in COLUMNS:
        lines.append(_md_row([md(c.title), f"`{c.name}`", BETTER.get(c.direction, "descriptive"), md(c.unit), c.kind,
                              md(c.description)]))
    return "\n".join(lines) + "\n"


# ---- CSV --------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text):
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): a leading ' before = + - @."""
    return "'" + text if isinstance(text, str) and text.startswith(_FORMULA_START) else text


def csv(table: pd.DataFrame) -> str:
    """The table as CSV, every column with `_ci_low` and `_ci_high` beside it (pandas quoting: commas, quotes and
    newlines in a name stay inside their cell). `by_construction` names the columns that are 0 by construction."""
    safe = table.copy()
    for name in ("family", "model", "quantization", "finetune", "revision", "device"):
        safe[name] = safe[name].map(spreadsheet_safe)
    return safe.to_csv(index=False, lineterminator="\n", float_format="%.10g")
