"""The record: one JSON document per (model, revision, suite), the only thing the board reads.

The bottom of the record layer: the schema, the canonical text, strict reading. Building a record
(sinkbench.record.build) and checking one (sinkbench.record.validate) sit on top of it. No torch.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sinkbench.errors import SinkbenchError

SCHEMA_VERSION = "3.0"
MAX_RECORD_BYTES = 8 * 1024 * 1024  # a record of a 100-layer, 128-head model is ~2 MB


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("sinkbench.record").joinpath("schema/record.schema.json").read_text())


def finite(value):
    """The value with every NaN or infinite float replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed in a record (use null with a note)")


def loads(text: str) -> dict:
    """Parse a record's JSON text; NaN, Infinity and duplicate keys are errors."""

    def no_duplicates(pairs):
        keys = [key for key, _ in pairs]
        duplicated = sorted({key for key in keys if keys.count(key) > 1})
        if duplicated:
            raise ValueError(f"duplicate key {duplicated[0]!r}")
        return dict(pairs)

    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=no_duplicates)


def read_record(path: Path) -> dict:
    """A record file, size-limited and strictly parsed; SinkbenchError names the problem."""
    path = Path(path)
    if not path.is_file():
        raise SinkbenchError(f"record not found: {path}")
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        raise SinkbenchError(f"{path}: {size} bytes, more than the {MAX_RECORD_BYTES} a record may have")
    try:
        record = loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SinkbenchError(f"{path}: not UTF-8 text") from None
    except ValueError as err:
        raise SinkbenchError(f"{path}: not valid record JSON ({err})") from None
    if not isinstance(record, dict):
        raise SinkbenchError(f"{path}: a record is a JSON object")
    return record


def dumps(record: dict) -> str:
    """Canonical text: sorted keys, two-space indent, a list of plain values on one line (a record holds
    tens of thousands of per-document numbers), no NaN; the same record gives the same bytes."""
    return _encode(record, "") + "\n"


def _scalar(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _encode(value, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_scalar(str(key))}: {_encode(value[key], inner)}" for key in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if not any(isinstance(item, (dict, list, tuple)) for item in value):
            return "[" + ", ".join(_scalar(item) for item in value) + "]"
        return "[\n" + ",\n".join(inner + _encode(item, inner) for item in value) + "\n" + indent + "]"
    return _scalar(value)
