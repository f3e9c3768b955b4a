"""The record's parts as types: what `sinkbench run` builds, what every reader of a record reads.

A record on disk is JSON (sinkbench.record.format); in code it is a `Record`, built from these
parts and read through their attributes. The JSON Schema (schema/record.schema.json) stays the
contract for what a file may hold, and `sinkbench validate` checks a file against it before
anything parses it; tests/test_record_types.py ties every type here to the schema (the same
keys, the same required ones), so the two cannot drift apart.

`Part.from_json` reads a part from its JSON form (checked scalars; lists of plain values are
kept as they are, since the schema has checked them); `to_json` gives it back, key for key:
`Record.from_json(x).to_json() == x` for every valid record, so a record rewritten through the
types is byte-identical. A key a record of an older schema does not have is `ABSENT` (never
written), which is different from a JSON null (`None`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Union

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


def _optional(default=ABSENT):
    return field(default=default)


def _rest():
    """The field that takes every key the type does not name (an outcome's per-metric lists)."""
    return field(default_factory=dict, metadata={"rest": True})


class Part:
    """A part of a record: built from its JSON form and written back to it, key for key."""

    @classmethod
    def from_json(cls, data, path: str | None = None):
        return _parse(cls, data, path or cls.__name__.lower())

    def to_json(self) -> dict:
        return _dump(self)


# ---- estimates --------------------------------------------------------------------------


@dataclass
class Estimate(Part):
    """A number with its 95% interval (sinkbench.record.stats.estimate): None where it is undefined."""

    value: float | None
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    n: int
    note: str | None


@dataclass
class SummaryValue(Estimate):
    """A summary column's estimate, with its MDE and whether it is 0 by construction (not measured)."""

    mde: float | None
    by_construction: bool


# ---- the model and how it was run -------------------------------------------------------


@dataclass
class Weights(Part):
    format: str | None
    quantization: str | None
    tensor_types: list[str]
    file: str | None
    checkpoint: str | None
    basename: str | None
    size_label: str | None
    finetune: str | None
    base_model: str | None


@dataclass
class Model(Part):
    name: str
    source: str
    family: str
    architecture: str
    revision: str | None
    weights_sha256: str | None
    n_parameters: int
    dtype: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    max_context: int | None
    bos_token: str | None
    bos_token_id: int | None
    adds_bos: bool
    release_date: str | None
    weights: Weights | None = _optional()  # schema 3.0 on
    attention_implementation: str = _optional()  # schema 3.0 on


@dataclass
class SuiteRef(Part):
    name: str
    version: str
    custom_grid: bool


@dataclass
class StressPrefix(Part):
    source: str
    source_sha256: str
    char_offset: int


@dataclass
class Provenance(Part):
    sinkbench_version: str
    lm_eval_version: str
    transformers_version: str
    torch_version: str
    python_version: str
    device: str
    date: str
    model_load_s: float | None
    seed: int
    command: list[str]
    limit: int | None
    batch_size: int | None
    max_batch_tokens: int
    suite: SuiteRef
    task_hashes: dict[str, str]
    data_files: dict[str, str]
    stress_prefix: StressPrefix | None


# ---- tasks and conditions ---------------------------------------------------------------


@dataclass
class Retrieval(Part):
    family: str
    length: int


@dataclass
class Documents(Part):
    """A task's documents in order: ids, content hashes, and (perplexity tasks) words and bytes."""

    ids: list[int]
    hashes: list[str]
    words: list[float] | None
    bytes: list[float] | None


@dataclass
class Task(Part):
    kind: str
    primary_metric: str
    higher_is_better: dict[str, bool]
    retrieval: Retrieval | None
    documents: Documents


@dataclass
class Outcome(Part):
    """Each document's outcome under one condition, aligned with the first n of the task's documents; `metrics`:
    the per-document values of every other metric (acc, acc_norm, ...), by name."""

    n: int
    alpha: list[float | None]
    text_start: list[float | None] = _optional()
    loglik: list[float] = _optional()
    metrics: dict[str, list[float]] = _rest()

    def values(self, name: str):
        """The per-document list `name` (alpha, text_start, loglik or a metric); None where the outcome has none."""
        if name in self.metrics:
            return self.metrics[name]
        value = getattr(self, name, None) if name in _OUTCOME_FIELDS else None
        return None if value is ABSENT else value


_OUTCOME_FIELDS = ("n", "alpha", "text_start", "loglik")


@dataclass
class FirstToken(Part):
    id: int
    token: str
    count: int


@dataclass
class TaskSinks(Part):
    """The sink metrics of one task's scoring passes under one condition."""

    n_requests: int
    alpha_mean: float | None
    alpha_by_layer: list[float | None]
    text_start_by_layer: list[float | None] | None
    sink_rate: dict[str, float | None]
    first_k_mass: list[float]
    mean_tokens: float
    max_tokens: int
    queries_seeing_first_by_layer: list[float | None] | None = _optional()


@dataclass
class Quartile(Part):
    quartile: int
    n: int
    alpha_low: float
    alpha_high: float
    accuracy: float


@dataclass
class Link(Part):
    """Per accuracy task: correctness against attention to the first token (sinkbench.record.link)."""

    metric: str
    n: int
    quartiles: list[Quartile]
    point_biserial: float | None
    ci_low: float | None
    ci_high: float | None
    n_bootstrap: int
    note: str | None


@dataclass
class Condition(Part):
    """One cell of the grid as the record keeps it: the spec, and per task its scores, every document's outcome,
    the sink metrics and the link; a condition identical to an earlier one carries that one's numbers."""

    name: str
    role: str
    spec: Spec
    tasks: list[str]
    identical_to: str | None
    skipped: dict[str, str]
    scores: dict[str, dict[str, Estimate]]
    outcomes: dict[str, Outcome]
    sinks: dict[str, TaskSinks]
    first_tokens: list[FirstToken]
    tokens_processed: int
    truncated_requests: int
    wall_time_s: float
    link: dict[str, Link]

    @property
    def skipped_whole(self) -> bool:
        """None of its tasks ran (a stress prefix beyond the model's context)."""
        return all(task in self.skipped for task in self.tasks)

    def identical(self, name: str, role: str, spec: Spec, tasks: list[str]) -> Condition:
        """The condition `name` that sees exactly this one's token sequences: these numbers, for its tasks, computed
        once (the record says whose they are)."""
        keep = set(tasks)

        def kept(part: dict) -> dict:
            return {task: value for task, value in part.items() if task in keep}

        return Condition(name=name, role=role, spec=spec, tasks=list(tasks), identical_to=self.name,
                         skipped=kept(self.skipped), scores=kept(self.scores), outcomes=kept(self.outcomes),
                         sinks=kept(self.sinks), first_tokens=self.first_tokens, tokens_processed=self.tokens_processed,
                         truncated_requests=self.truncated_requests, wall_time_s=0.0, link=kept(self.link))


# ---- the sink profile -------------------------------------------------------------------


@dataclass
class PerText(Part):
    """Each profiled text's own values, aligned with `hashes`: what intervals over texts resample."""

    hashes: list[str]
    alpha_mean: list[float | None]
    sink_rate: dict[str, list[float | None]]


@dataclass
class StrongestHead(Part):
    layer: int
    head: int
    alpha: float


@dataclass
class MassiveActivations(Part):
    ratio_by_layer: list[float | None]
    top_position_by_layer: list[int]
    fraction_at_first_token_by_layer: list[float]
    ratio_by_text: list[list[float | None]]


@dataclass
class Overmixing(Part):
    n_sequences: int
    relative_change_by_layer: list[float | None] | None
    representation_spread_by_layer: list[float | None] | None
    last_layer_by_sequence: list[float]


@dataclass
class OvermixingPair(Part):
    with_bos: Overmixing | None
    without_bos: Overmixing | None


@dataclass
class Alpha(Part):
    """First-token attention over a set of texts of T tokens: the sink rate per eps, mean α, α by layer and by
    (layer, head), and each text's own values (the profile, a point of its length sweep, the random-token probe)."""

    T: int
    n_sequences: int
    sink_rate: dict[str, float | None]
    alpha_mean: float | None
    alpha_by_layer: list[float | None]
    alpha_by_head: list[list[float | None]]
    per_text: PerText


@dataclass
class SweepPoint(Alpha):
    alpha_mean_by_type: dict[str, float | None] = _optional()  # schema 3.0 on
    queries_seeing_first_by_layer: list[float | None] = _optional()  # schema 3.0 on


@dataclass
class LengthSweep(Part):
    text_source: str
    points: list[SweepPoint]


@dataclass
class Layer(Part):
    """A decoder layer: full, sliding or chunked attention, or none (a recurrent layer of a hybrid)."""

    index: int
    type: str
    span: int | None
    learned_sink: bool
    queries_seeing_first: float


@dataclass
class RandomTokens(Alpha):
    """Gu et al.'s probe: uniformly drawn token ids behind the profile's head."""

    seed: int
    alpha_mean_by_type: dict[str, float | None]


@dataclass
class Profile(Alpha):
    """The sink profile: Gu et al.'s protocol on the profile's texts, and what sinkbench measures beside it."""

    text_source: str
    bos: str
    eps: list[float]
    mean_tokens: float
    first_tokens: list[FirstToken]
    first_k_mass: list[float]
    strongest_heads: list[StrongestHead]
    massive_activations: MassiveActivations
    value_norm_ratio_by_layer: list[float | None]
    learned_sink_mass_by_layer: list[float] | None
    overmixing: OvermixingPair
    length_sweep: LengthSweep
    wall_time_s: float
    layers: list[Layer] = _optional()  # schema 3.0 on
    alpha_mean_by_type: dict[str, float | None] = _optional()  # schema 3.0 on
    random_tokens: RandomTokens | None = _optional()  # schema 3.0 on


# ---- the record -------------------------------------------------------------------------


@dataclass
class Record(Part):
    """One model, one revision, one suite: what was measured, how, and every number behind the summary."""

    schema_version: str
    status: str
    missing: list[str]
    model: Model
    provenance: Provenance
    tasks: dict[str, Task]
    profile: Profile
    conditions: list[Condition]
    summary: dict[str, SummaryValue]

    PATH: ClassVar[str] = "record"

    @classmethod
    def from_json(cls, data, path: str | None = None) -> Record:
        return _parse(cls, data, path or cls.PATH)

    def condition(self, name: str) -> Condition:
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise KeyError(name)


def as_record(record) -> Record:
    """A Record, from a Record or its JSON form (a record loaded with json, or built by hand)."""
    return record if isinstance(record, Record) else Record.from_json(record)


# ---- reading and writing the JSON form --------------------------------------------------

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
        return _parse_part(hint, value, path)
    if hint in _SCALARS:
        ok = (isinstance(value, bool) if hint is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if hint is float else
              isinstance(value, hint) and not isinstance(value, bool))
        if not ok:
            raise RecordTypeError(f"{path}: {value!r:.40} where {_SCALARS[hint]} is required")
        return value
    raise TypeError(f"no reader for {hint!r} at {path}")  # a type above that this module cannot read: a bug here


def _parse_part(cls, value, path: str):
    if not isinstance(value, dict):
        raise RecordTypeError(f"{path}: {type(value).__name__} where an object is required")
    known, rest_field, kwargs = set(), None, {}
    for name, hint, required, rest in _hints(cls):
        if rest:
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
        for name, _, _, rest in _hints(type(value)):
            item = getattr(value, name)
            if rest:
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
