"""The board's static site: `site/index.html` (every record of every suite, sortable, with charts) and a page
per record; Jinja2 with autoescape, works offline from file://.

The index's table is sortable by every column and filterable by suite, family and a search by
model name (templates/board.js, admitted by its hash in the page's Content-Security-Policy, so
no other script can run even if a string got through). Model pages run no script at all.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from sinkbench.board import pages, plots
from sinkbench.board.ranks import RULE
from sinkbench.board.table import (ARROWS, BETTER, BY_CONSTRUCTION, MACHINE_COLUMNS, MODEL_COLUMNS, Row,
                                   format_interval, format_value, machine_order, suites)
from sinkbench.record.columns import COLUMNS, LOWER
from sinkbench.record.identity import weights_of, weights_tag
from sinkbench.record.types import SummaryValue

IDENTITY_HEADERS = (  # (name, title, type): the identity columns before the summary columns
    ("rank", "#", "number"), ("model", "model", "text"), ("family", "family", "text"),
    ("revision", "revision", "text"), ("release_date", "released", "text"),
)
# The index table's columns: every model column but those shown on the model pages, the CSV and board.json only
# (the random-token probe), so that the table fits a 1400-pixel window.
INDEX_COLUMNS = tuple(c for c in MODEL_COLUMNS if c.on_index)
SHOWN_INTERVAL = "suite_score"  # the ranked column shows its interval in the cell; every other one on hover
CROWD = 100  # above this many lines a chart draws each one fainter still, so that the band they make stays legible


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(loader=PackageLoader("sinkbench.board", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def script() -> tuple[str, str]:
    """board.js and its CSP source ('sha256-...')."""
    text = resources.files("sinkbench.board").joinpath("templates/board.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return text, f"sha256-{digest}"


def _headers(shared_notes: dict[str, str]) -> list[dict]:
    """The table's headings; a note every record of the suite shares is said once, in its column's heading."""
    headers = [{"name": name, "title": title, "type": kind, "arrow": "", "description": title,
                "first": "ascending"} for name, title, kind in IDENTITY_HEADERS]
    for c in INDEX_COLUMNS:  # first click: best first where there is a best, else largest first
        note = f" Every record here: {shared_notes[c.name]}." if c.name in shared_notes else ""
        headers.append({"name": c.name, "title": c.title, "type": "number", "arrow": ARROWS.get(c.direction, ""),
                        "description": f"{c.description} ({BETTER.get(c.direction, 'descriptive')}).{note}",
                        "first": "ascending" if c.direction == LOWER else "descending"})
    return headers


def _shared_notes(ordered) -> dict[str, str]:
    """column -> the note every record of a suite has on it (then it is said once, not on each of 500 rows)."""
    shared = {}
    for c in INDEX_COLUMNS:
        notes = {s.entry(c.name).note for s in ordered if not s.entry(c.name).by_construction}
        if len(notes) == 1 and None not in notes and len(ordered) > 1:
            shared[c.name] = notes.pop()
    return shared


def _number_cell(column, entry: SummaryValue, shared_notes: dict[str, str]) -> dict:
    value, note = entry.value, entry.note
    if entry.by_construction:
        return {"cls": "m", "sort": "", "text": "0 †", "small": "", "title": f"{BY_CONSTRUCTION}: {note}"}
    if value is None:
        return {"cls": "m", "sort": "", "text": format_value(column, value), "small": "", "title": note or ""}
    if shared_notes.get(column.name) == note:
        note = None  # said in the heading
    interval = format_interval(column, entry.ci_low, entry.ci_high)
    title = "; ".join(part for part in (f"95% CI {interval}" if interval else "no interval", note) if part)
    return {"cls": "", "sort": f"{value:.6g}", "text": format_value(column, value),
            "small": interval if column.name == SHOWN_INTERVAL else "", "title": title}


def _row(row: Row, number: int, shared_notes: dict[str, str]) -> dict:
    s = row.submission
    return {
        "r": number, "family": s.family, "model": s.name, "weights": weights_tag(weights_of(s.record.model)),
        "rank": row.rank, "href": pages.link_from_index(s), "revision": s.revision,
        "released": s.release_date or "—", "cells": [_number_cell(c, s.entry(c.name), shared_notes) for c in INDEX_COLUMNS],
        "device": s.device, "machine": [format_value(c, s.value(c.name)) for c in MACHINE_COLUMNS],
    }


def _suite_sections(rows: list[Row], verdicts: plots.Verdicts) -> list[dict]:
    styles = plots.family_styles(row.submission.family for row in rows)
    sections, start = [], 0
    for name, version, group in suites(rows):
        ordered = [row.submission for row in group]
        shared_notes = _shared_notes(ordered)
        shown = {id(row.submission): _row(row, start + i, shared_notes) for i, row in enumerate(group)}
        series = [plots.Series(s, start + i, *styles[s.family]) for i, s in enumerate(ordered)]
        charts = plots.suite_plots(f"plot-{name}", series) + plots.release_plots(f"plot-{name}", series, verdicts)
        sections.append({
            "key": name, "name": name, "version": version, "rows": list(shown.values()),
            "machine": [shown[id(s)] for s in machine_order(ordered)],
            "headers": _headers(shared_notes),
            "families": sorted({s.family for s in ordered}),
            "density": "" if len(ordered) <= plots.svg.MANY else " many" if len(ordered) <= CROWD else " many crowd",
            # The SVG was built by ElementTree, which escaped every string in it.
            "plots": [{"id": p.id, "heading": p.heading, "caption": p.caption, "svg": Markup(p.svg)} for p in charts],
        })
        start += len(group)
    return sections


def index_page(rows: list[Row], verdicts: plots.Verdicts | None = None) -> str:
    """site/index.html for the board's rows (table.ranked)."""
    text, digest = script()
    return environment().get_template("index.html.j2").render(
        script=Markup(text), script_hash=digest,  # our own file, not a record's string
        suites=_suite_sections(rows, verdicts or plots.Verdicts()) if rows else [], count=len(rows),
        families=sorted({row.submission.family for row in rows}), rank_rule=RULE,
        machine_headers=[{"title": c.title, "arrow": ARROWS.get(c.direction, ""), "unit": c.unit}
                         for c in MACHINE_COLUMNS],
        columns=[{"name": c.name, "title": c.title, "arrow": ARROWS.get(c.direction, ""), "unit": c.unit,
                  "kind": c.kind, "description": c.description, "formula": c.formula,
                  "better": BETTER.get(c.direction, "descriptive")} for c in COLUMNS],
    )


def model_page(submission, label: str, releases: list | None = None) -> str:
    """site/models/<family>/<model>/<revision>.html for one submission; `releases`: its family's release charts
    (plots.release_plots), where the family has two or more dated records of the suite."""
    shown = [{"id": p.id, "heading": p.heading, "caption": p.caption, "svg": Markup(p.svg)} for p in releases or []]
    return environment().get_template("model.html.j2").render(**pages.context(submission, label), releases=shown)
