"""Assembling a record from what `sinkbench run` saved, and writing it only when it is valid."""

from __future__ import annotations

from pathlib import Path

from sinkbench.errors import SinkbenchError
from sinkbench.files import write_text_atomic
from sinkbench.grid.suite import TaskSpec
from sinkbench.record.columns import compute_summary
from sinkbench.record.format import SCHEMA_VERSION, dumps, finite
from sinkbench.record.validate import problems


EMPTY_DOCUMENTS = {"ids": [], "hashes": [], "words": None, "bytes": None}


def task_entry(spec: TaskSpec, higher_is_better: dict, documents: dict | None = None) -> dict:
    """A task as the record describes it: kind, primary metric, directions, retrieval facts, its documents."""
    retrieval = {"family": spec.retrieval[0], "length": spec.retrieval[1]} if spec.retrieval else None
    return {"kind": spec.kind, "primary_metric": spec.primary_metric,
            "higher_is_better": {k: bool(v) for k, v in sorted(higher_is_better.items())},
            "retrieval": retrieval, "documents": documents or dict(EMPTY_DOCUMENTS)}


def build_record(*, model: dict, provenance: dict, tasks: dict, profile: dict, conditions: list[dict],
                 missing: list[str]) -> dict:
    """Assemble a record and fill its summary columns from its own numbers."""
    record = finite({
        "schema_version": SCHEMA_VERSION,
        "status": "partial" if missing else "complete",
        "missing": list(missing),
        "model": model,
        "provenance": provenance,
        "tasks": tasks,
        "profile": profile,
        "conditions": conditions,
        "summary": {},
    })
    record["summary"] = compute_summary(record)
    return record


def write_record(record: dict, path: Path) -> None:
    """Validate, then write atomically. An invalid record is an error, never a file."""
    found = problems(record)
    if found:
        raise SinkbenchError(f"refusing to write an invalid record: {found[0]}")
    write_text_atomic(dumps(record), path)
