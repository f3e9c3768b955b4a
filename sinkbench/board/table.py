"""The board's rows (a submission and its rank band), ranked; their Markdown and CSV views.

Rows are grouped by suite (records of different suites score different tasks and are never
ranked together), then ranked by rank band, suite score, model, family and revision, so the same
submissions always give the same bytes. Every view reads a row's record (store.Submission);
pandas comes in only where the shape is a table, the CSV. Names, titles, descriptions,
directions and kinds come from sinkbench.record.columns; nothing here restates them. Columns of
kind MACHINE (throughput, wall time) describe the machine a record ran on: they are listed
apart, with the device, unranked.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from itertools import groupby

import pandas as pd

from sinkbench.board.ranks import RANKED_BY, RULE, rank_bands
from sinkbench.record.columns import COLUMNS, HIGHER, LOWER, MACHINE, MODEL, Column
from sinkbench.record.identity import weights_of, weights_tag
from sinkbench.record.numbers import MISSING, entry_text, interval, number
from sinkbench.record.types import SummaryValue

IDENTITY = ("rank", "family", "model", "quantization", "finetune", "revision", "release_date", "suite", "suite_version",
            "device", "path", "page", "by_construction")
MODEL_COLUMNS = tuple(c for c in COLUMNS if c.kind == MODEL)
MACHINE_COLUMNS = tuple(c for c in COLUMNS if c.kind == MACHINE)
ARROWS = {HIGHER: "↑", LOWER: "↓"}
BETTER = {HIGHER: "higher is better", LOWER: "lower is better"}
BY_CONSTRUCTION = "0 by construction"


@dataclass(frozen=True)
class Row:
    """One submission on the board and its rank band within its suite (None: no suite score)."""

    submission: object  # store.Submission
    rank: int | None


def ranked(submissions) -> list[Row]:
    """Every submission as a row: grouped by suite, ranked within it (stable: equal keys keep file order)."""
    ranks: dict[int, int | None] = {}
    for _, group in groupby(sorted(submissions, key=lambda s: s.suite[0]), key=lambda s: s.suite[0]):
        group = list(group)
        ranks.update(zip(map(id, group), rank_bands([s.entry(RANKED_BY) for s in group])))
    rows = [Row(s, ranks[id(s)]) for s in submissions]

    def order(row: Row) -> tuple:
        s, score = row.submission, row.submission.value(RANKED_BY)
        return (s.suite[0], row.rank is None, row.rank or 0, score is None, -(score or 0.0), s.name, s.family,
                s.revision)

    return sorted(rows, key=order)


def suites(rows: list[Row]) -> list[tuple[str, str, list[Row]]]:
    """(suite, version, its rows) for each suite on the board, by name (rows come grouped: `ranked`)."""
    return [(name, group[0].submission.suite[1], group)
            for name, group in ((name, list(group)) for name, group in groupby(rows, key=lambda r: r.submission.suite[0]))]


def format_value(column: Column, value) -> str:
    """A column's value in its decimals; MISSING for None."""
    return number(value, column.decimals)


def format_interval(column: Column, low, high) -> str:
    """'[0.513, 0.687]', or '' without an interval."""
    return interval(low, high, column.decimals)


def format_change(column: Column, change) -> str:
    """A change B − A with its sign, '+0.012'; '' for None."""
    return "" if change is None else number(change, column.decimals, signed=True)


def format_change_interval(column: Column, low, high) -> str:
    """The interval of a change, '[-0.031, +0.012]', or ''."""
    return interval(low, high, column.decimals, signed=True)


def heading(column: Column) -> str:
    """The column's title with its direction: 'suite score ↑'."""
    arrow = ARROWS.get(column.direction)
    return f"{column.title} {arrow}" if arrow else column.title


def cell_text(column: Column, entry: SummaryValue) -> str:
    """A summary cell for text outputs: '0.600 [0.513, 0.687]', '0 by construction' or the dash."""
    return BY_CONSTRUCTION if entry.by_construction else entry_text(entry, column.decimals)


# ---- Markdown -----------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text) -> str:
    """Text safe inside a Markdown table cell: one line, no table break, no markup, no HTML."""
    text = " ".join(str(text).split())  # newlines would end the row
    text = html.escape(text, quote=False)  # <script> stays text on GitHub
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)  # a `|` would split the cell


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_suite(name: str, version: str, rows: list[Row]) -> list[str]:
    families = len({row.submission.family for row in rows})
    lines = [f"## Suite {md(name)} {md(version)}", "",
             f"{len(rows)} record{'s' * (len(rows) != 1)} of {families} famil{'ies' if families != 1 else 'y'}, by rank band. "
             f"Each cell: the value and its 95% interval. {MISSING} : not measured (the record's note says why).", ""]
    header = ["#", "model", "family", "revision", "released", *(md(heading(c)) for c in MODEL_COLUMNS)]
    lines += [_md_row(header), _md_row(["---:", "---", "---", "---", "---", *("---:" for _ in MODEL_COLUMNS)])]
    for row in rows:
        s = row.submission
        cells = [MISSING if row.rank is None else str(row.rank), model_label(s), md(s.family), md(s.revision),
                 md(s.release_date or MISSING)]
        lines.append(_md_row(cells + [cell_text(c, s.entry(c.name)) for c in MODEL_COLUMNS]))
    lines += ["", f"### Machine facts, suite {md(name)}", "",
              "What the machine that ran each record measured (`provenance.device`), not the model: compare them only "
              "between records of one device. Not ranked.", "",
              _md_row(["device", "model", "family", "revision", *(md(heading(c)) for c in MACHINE_COLUMNS)]),
              _md_row(["---", "---", "---", "---", *("---:" for _ in MACHINE_COLUMNS)])]
    for s in machine_order(row.submission for row in rows):
        cells = [md(s.device), md(s.name), md(s.family), md(s.revision)]
        lines.append(_md_row(cells + [format_value(c, s.value(c.name)) for c in MACHINE_COLUMNS]))
    return lines + [""]


def machine_order(submissions) -> list:
    """The machine facts' order: by device, then model, family and revision."""
    return sorted(submissions, key=lambda s: (s.device, s.name, s.family, s.revision))


def model_label(submission) -> str:
    """The Markdown model cell: 'smollm2-135m (Q4\\_1, Instruct)', the name alone when the record does not say."""
    tag = weights_tag(weights_of(submission.record.model))
    return md(submission.name) + (f" ({md(tag)})" if tag else "")


def markdown(rows: list[Row]) -> str:
    lines = [
        "# sinkbench leaderboard",
        "",
        "Written by `sinkbench board build` from the records under `submissions/`; do not edit it by hand.",
        "Submit a record with `sinkbench submit RECORD`. The same numbers are in `leaderboard.csv` and "
        "`board.json`; `site/index.html` has them sortable, with plots and a page per record.",
        "",
    ]
    if not rows:
        lines += ["No submissions yet.", ""]
    else:
        lines += [md(RULE), "", "↑ higher is better, ↓ lower is better, no arrow: descriptive.", ""]
        for name, version, group in suites(rows):
            lines += _md_suite(name, version, group)
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


def _csv_row(row: Row) -> dict:
    s = row.submission
    weights = weights_of(s.record.model)  # None for a record of schema 2.0: empty cells
    values = {"rank": row.rank, "family": s.family, "model": s.name,
              "quantization": weights.quantization if weights else None, "finetune": weights.finetune if weights else None, "revision": s.revision, "release_date": s.release_date,
              "suite": s.suite[0], "suite_version": s.suite[1], "device": s.device, "path": str(s.path),
              "page": str(s.page),
              "by_construction": " ".join(c.name for c in COLUMNS if s.entry(c.name).by_construction)}
    for name in ("family", "model", "quantization", "finetune", "revision", "device"):
        values[name] = spreadsheet_safe(values[name])
    for column in COLUMNS:
        entry = s.entry(column.name)
        values.update({column.name: entry.value, f"{column.name}_ci_low": entry.ci_low,
                       f"{column.name}_ci_high": entry.ci_high})
    return values


def csv(rows: list[Row]) -> str:
    """The rows as CSV, every column with `_ci_low` and `_ci_high` beside it (pandas quoting: commas, quotes and
    newlines in a name stay inside their cell). `by_construction` names the columns that are 0 by construction,
    separated by spaces (one cell of a CSV)."""
    numbers = [name for c in COLUMNS for name in (c.name, f"{c.name}_ci_low", f"{c.name}_ci_high")]
    table = pd.DataFrame([_csv_row(row) for row in rows], columns=[*IDENTITY, *numbers])
    table = table.astype({"rank": "Int64", **{name: "float64" for name in numbers}})  # None: an empty cell
    return table.to_csv(index=False, lineterminator="\n", float_format="%.10g")
