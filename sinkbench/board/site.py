"""The board's static page: one HTML file, rendered by Jinja2 with autoescape, that works offline from file://.

The table is sortable by every column and filterable by family (templates/board.js, admitted by
its hash in the page's Content-Security-Policy, so no other script can run even if a string got
through); the charts are inline SVG from plots.py.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from sinkbench.board import plots
from sinkbench.board.table import ARROWS, BETTER, format_value, is_missing
from sinkbench.record.columns import COLUMNS, LOWER

IDENTITY_HEADERS = (  # (name, title, type): the identity columns before the summary columns
    ("rank", "#", "number"), ("model", "model", "text"), ("family", "family", "text"),
    ("revision", "revision", "text"), ("release_date", "released", "text"),
)


def _environment() -> Environment:
    return Environment(loader=PackageLoader("sinkbench.board", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _script() -> tuple[str, str]:
    """board.js and its CSP source ('sha256-...')."""
    script = resources.files("sinkbench.board").joinpath("templates/board.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return script, f"sha256-{digest}"


def _headers() -> list[dict]:
    headers = [{"name": name, "title": title, "type": kind, "arrow": "", "description": title,
                "first": "ascending"} for name, title, kind in IDENTITY_HEADERS]
    for c in COLUMNS:  # first click: best first where there is a best, else largest first
        headers.append({"name": c.name, "title": c.title, "type": "number", "arrow": ARROWS.get(c.direction, ""),
                        "description": f"{c.description} ({BETTER.get(c.direction, 'descriptive')})",
                        "first": "ascending" if c.direction == LOWER else "descending"})
    return headers


def _rows(table, by_path) -> list[dict]:
    rows = []
    for row in table.itertuples(index=False):
        values = row._asdict()
        submission = by_path[row.path]
        cells = [
            {"kind": "number", "sort": str(row.rank), "text": str(row.rank), "note": None},
            {"kind": "model", "sort": row.model, "text": row.model, "note": str(submission.path)},
            {"kind": "text", "sort": row.family, "text": row.family, "note": None},
            {"kind": "text", "sort": row.revision, "text": row.revision, "note": None},
            {"kind": "text", "sort": row.release_date or "", "text": row.release_date or "—", "note": None},
        ]
        for c in COLUMNS:
            value = values[c.name]
            missing = is_missing(value)
            cells.append({"kind": "number missing" if missing else "number", "sort": "" if missing else f"{value:.10g}",
                          "text": format_value(c, value), "note": submission.record["summary"][c.name]["note"]})
        rows.append({"family": row.family, "rank": row.rank, "cells": cells})
    return rows


def page(submissions, table) -> str:
    """The HTML page for the board's submissions and their table (table.frame)."""
    by_path = {str(s.path): s for s in submissions}
    ordered = [by_path[path] for path in table["path"]]
    charts, heatmaps = plots.board_plots(ordered) if ordered else ([], [])
    script, script_hash = _script()
    suites = sorted({f"{name} {version}" for name, version in (s.suite for s in submissions)})
    return _environment().get_template("index.html.j2").render(
        script=Markup(script), script_hash=script_hash,  # our own file, not a record's string
        suite=", ".join(suites), families=sorted({s.family for s in submissions}),
        headers=_headers(), rows=_rows(table, by_path),
        columns=[{"name": c.name, "title": c.title, "arrow": ARROWS.get(c.direction, ""), "unit": c.unit,
                  "description": c.description, "formula": c.formula, "better": BETTER.get(c.direction, "descriptive")}
                 for c in COLUMNS],
        # The SVG was built by ElementTree, which escaped every string in it.
        plots=[{"id": p.id, "heading": p.heading, "caption": p.caption, "svg": Markup(p.svg)} for p in charts],
        heatmaps=[(label, Markup(svg)) for label, svg in heatmaps],
        colour_bar=Markup(plots.alpha_colour_bar()),
    )
