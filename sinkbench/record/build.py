"""Assembling a record from its typed parts, and writing it only when it is valid: the one writer of a record,
for `sinkbench run` and for the tests' hand-made records (sinkbench.testing.records)."""

from __future__ import annotations

from pathlib import Path

from sinkbench.errors import SinkbenchError
from sinkbench.files import write_text_atomic
from sinkbench.grid.suite import TaskSpec
from sinkbench.record.columns import compute_summary
from sinkbench.record.format import SCHEMA_VERSION, dumps
from sinkbench.record.types import Condition, Documents, Model, Profile, Provenance, Record, Retrieval, Task
from sinkbench.record.validate import problems


def task_entry(spec: TaskSpec, higher_is_better: dict, documents: Documents | None = None) -> Task:
    """A task as the record describes it: kind, primary metric, directions, retrieval facts, its documents."""
    retrieval = Retrieval(family=spec.retrieval[0], length=spec.retrieval[1]) if spec.retrieval else None
    return Task(kind=spec.kind, primary_metric=spec.primary_metric,
                higher_is_better={k: bool(v) for k, v in sorted(higher_is_better.items())},
                retrieval=retrieval, documents=documents or Documents(ids=[], hashes=[], words=None, bytes=None))


def build_record(*, model: Model, provenance: Provenance, tasks: dict[str, Task], profile: Profile,
                 conditions: list[Condition], missing: list[str]) -> Record:
    """Assemble a record and fill its summary columns from its own numbers."""
    record = Record(schema_version=SCHEMA_VERSION, status="partial" if missing else "complete", missing=list(missing),
                    model=model, provenance=provenance, tasks=tasks, profile=profile, conditions=list(conditions),
                    summary={})
    record.summary = compute_summary(record)
    return record


def write_record(record: Record, path: Path) -> None:
    """Validate, then write atomically. An invalid record is an error, never a file."""
    data = record.to_json()
    found = problems(data)
    if found:
        raise SinkbenchError(f"refusing to write an invalid record: {found[0]}")
    write_text_atomic(dumps(data), path)
