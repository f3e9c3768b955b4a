"""Reading a record's part from its JSON form and writing it back, key for key: the machinery under
sinkbench.record.types.

`Part.from_json` reads a part (a dataclass) from its JSON form: its fields' types say what each key
holds; scalars are checked, lists of plain values are kept as they are (the schema has checked their
items). `to_json` writes it back, so `X.from_json(d).to_json() == d` for every valid d. A key a
record of an older schema lacks is `ABSENT` (never written), which is not a JSON null (`None`).
A value of the wrong shape is a RecordTypeError whose message is one line: 'path: problem'.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from functools import lru_cache
from typing import Any, Union

from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import Condition as Spec


class _Absent:
    """A key the record does not have (a part an older schema did not ask for)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()


class RecordTypeError(SinkbenchError):
    """A value of the wrong shape at a path of the record; the message is one line: 'path: problem'."""


def optional(default=ABSENT):
    """A field for a key an older schema did not have: ABSENT when the record lacks it."""
    return field(default=default)


def rest():
    """The field that takes every key the type does not name (an outcome's per-metric lists)."""
    return field(default_factory=dict, metadata={"rest": True})


class Part:
    """A part of a record: built from its JSON form and written back to it, key for key."""

    @classmethod
    def from_json(cls, data, path: str | None = None):
        return _parse(cls, data, path or cls.__name__.lower())

    def to_json(self) -> dict:
        return _dump(self)


_SCALARS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@lru_cache(maxsize=None)
def _hints(cls) -> tuple[tuple[str, Any, bool, bool], ...]:
    """(name, type, required, rest) per field of a part."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                  bool(f.metadata.get("rest"))) for f in dataclasses.fields(cls))


def _union_args(hint) -> tuple | None:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return None


def _parse(hint, value, path: str):
    args = _union_args(hint)
    if args is not None:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if value is None:
            raise RecordTypeError(f"{path}: null where a value is required")
        return _parse(options[0], value, path)
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            raise RecordTypeError(f"{path}: {type(value).__name__} where a list is required")
        (item,) = typing.get_args(hint)
        if dataclasses.is_dataclass(item):
            return [_parse(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordTypeError(f"{path}: {type(value).__name__} where an object is required")
        _, item = typing.get_args(hint)
        if dataclasses.is_dataclass(item) or typing.get_origin(item) is dict:
            return {k: _parse(item, v, f"{path}.{k}") for k, v in value.items()}
        return value
    if dataclasses.is_dataclass(hint):
        return parse_part(hint, value, path)
    if hint in _SCALARS:
        ok = (isinstance(value, bool) if hint is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if hint is float else
              isinstance(value, hint) and not isinstance(value, bool))
        if not ok:
            raise RecordTypeError(f"{path}: {value!r:.40} where {_SCALARS[hint]} is required")
        return value
    raise TypeError(f"no reader for {hint!r} at {path}")  # a type above that this module cannot read: a bug here


def parse_part(cls, value, path: str):
    if not isinstance(value, dict):
        raise RecordTypeError(f"{path}: {type(value).__name__} where an object is required")
    known, rest_field, kwargs = set(), None, {}
    for name, hint, required, is_rest in _hints(cls):
        if is_rest:
            rest_field = (name, hint)
            continue
        known.add(name)
        if name in value:
            kwargs[name] = _parse(hint, value[name], f"{path}.{name}")
        elif required:
            raise RecordTypeError(f"{path}: missing '{name}'")
    extra = {k: v for k, v in value.items() if k not in known}
    if rest_field is not None:
        name, hint = rest_field
        kwargs[name] = {k: _parse(typing.get_args(hint)[1], v, f"{path}.{k}") for k, v in extra.items()}
    elif extra:
        raise RecordTypeError(f"{path}: unknown key '{sorted(extra)[0]}'")
    try:
        return cls(**kwargs)
    except SinkbenchError as err:  # a spec the grid refuses (sinkbench.grid.conditions)
        raise RecordTypeError(f"{path}: {err}") from None


def _dump(value):
    if isinstance(value, Spec):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name, _, _, is_rest in _hints(type(value)):
            item = getattr(value, name)
            if is_rest:
                out.update({k: _dump(v) for k, v in item.items()})
            elif item is not ABSENT:
                out[name] = _dump(item)
        return out
    if isinstance(value, list):
        if value and isinstance(value[0], (int, float, str, type(None))):
            return list(value)  # plain values, as read
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value
