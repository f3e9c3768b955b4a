"""`leaderboard/board.json`: every record's identity, paths, rank band and summary with intervals, for tools.

Its JSON Schema ships with the package (sinkbench/board/schema/board.schema.json); the build
checks the file against it before writing. Keys are sorted and nothing about the build itself is
written, so the same submissions give the same bytes.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import jsonschema

from sinkbench.board.ranks import RULE
from sinkbench.board.table import suites
from sinkbench.record.columns import COLUMNS

SCHEMA_VERSION = "1.0"


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("sinkbench.board").joinpath("schema/board.schema.json").read_text(encoding="utf-8"))


def board_data(rows) -> dict:
    records = []
    for row in rows:
        s = row.submission
        records.append({
            "family": s.family, "model": s.name, "revision": s.revision, "release_date": s.release_date,
            "suite": {"name": s.suite[0], "version": s.suite[1]}, "device": s.device, "submission": str(s.path),
            "page": str(s.page), "rank": row.rank,
            "summary": {c.name: s.entry(c.name).to_json() for c in COLUMNS},
        })
    return {
        "schema_version": SCHEMA_VERSION, "rank_rule": RULE,
        "columns": [{"name": c.name, "title": c.title, "description": c.description, "unit": c.unit,
                     "direction": c.direction, "kind": c.kind, "formula": c.formula} for c in COLUMNS],
        "suites": [{"name": name, "version": version, "records": len(group)} for name, version, group in suites(rows)],
        "records": records,
    }


def board_json(rows) -> str:
    """board.json for the board's rows (table.ranked), checked against its schema."""
    data = board_data(rows)
    jsonschema.validate(data, schema())
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
