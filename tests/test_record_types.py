"""The record's types (sinkbench.record.types) against the schema, and the JSON form they read and write.

Each type names exactly the keys its place in the JSON Schema allows and requires exactly the keys
the schema requires (a key added to one and not the other fails here); a record read through the
types and written back is the same JSON, byte for byte; a value of the wrong shape anywhere is
one line naming its path.
"""

from __future__ import annotations

import dataclasses
import glob
import typing
from pathlib import Path

import pytest

from sinkbench.grid.conditions import Condition as Spec
from sinkbench.record import types
from sinkbench.record.format import dumps, read_record, schema
from sinkbench.record.types import ABSENT, Record, RecordTypeError
from sinkbench.testing.records import record

ROOT = Path(__file__).resolve().parents[1]

# Each type and where the schema describes it.
PLACES = {
    types.Record: "", types.Model: "/properties/model", types.Weights: "/properties/model/properties/weights",
    types.Provenance: "/properties/provenance", types.SuiteRef: "/properties/provenance/properties/suite",
    types.StressPrefix: "/properties/provenance/properties/stress_prefix/oneOf/1",
    types.Task: "/properties/tasks/additionalProperties",
    types.Retrieval: "/properties/tasks/additionalProperties/properties/retrieval/oneOf/1",
    types.Documents: "/properties/tasks/additionalProperties/properties/documents",
    types.Condition: "/$defs/condition", Spec: "/$defs/condition/properties/spec",
    types.Estimate: "/$defs/estimate", types.SummaryValue: "/$defs/value", types.Outcome: "/$defs/outcomes",
    types.TaskSinks: "/$defs/task_sinks", types.Link: "/$defs/link",
    types.Quartile: "/$defs/link/properties/quartiles/items", types.FirstToken: "/$defs/first_tokens/items",
    types.PerText: "/$defs/per_text", types.Profile: "/$defs/profile",
    types.StrongestHead: "/$defs/profile/properties/strongest_heads/items",
    types.MassiveActivations: "/$defs/profile/properties/massive_activations",
    types.OvermixingPair: "/$defs/profile/properties/overmixing", types.Overmixing: "/$defs/overmixing/oneOf/1",
    types.LengthSweep: "/$defs/profile/properties/length_sweep",
    types.SweepPoint: "/$defs/profile/properties/length_sweep/properties/points/items",
    types.Layer: "/$defs/layers/items", types.RandomTokens: "/$defs/profile/properties/random_tokens/oneOf/1",
}
# Keys a schema 3.0 record must have and a 2.0 one may lack: optional in the type (ABSENT), required by the
# schema's allOf for 3.0 (the model's) or by validate's VERSION_PARTS (the profile's).
ADDED_IN_3 = {types.Model: {"weights", "attention_implementation"},
              types.Profile: {"layers", "alpha_mean_by_type", "random_tokens"},
              types.SweepPoint: {"alpha_mean_by_type", "queries_seeing_first_by_layer"}}


def _at(pointer: str) -> dict:
    node = schema()
    for part in [p for p in pointer.split("/") if p]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_every_part_of_the_record_has_a_type_and_every_type_a_place():
    named = {cls for cls in vars(types).values()
             if isinstance(cls, type) and issubclass(cls, types.Part) and cls not in (types.Part, types.Alpha)}
    assert named == set(PLACES) - {Spec}


def test_the_loaders_identity_is_the_records_model_before_its_release_date():
    """measure.models.ModelIdentity (what loading found) becomes the record's model (types.Model) with the
    release date the user gives: the two name the same facts."""
    from sinkbench.measure.models import ModelIdentity

    identity = {f.name for f in dataclasses.fields(ModelIdentity)}
    assert identity == {f.name for f in dataclasses.fields(types.Model)} - {"release_date"}


@pytest.mark.parametrize("cls", list(PLACES), ids=lambda cls: cls.__name__)
def test_a_type_has_the_keys_its_place_in_the_schema_has(cls):
    place = _at(PLACES[cls])
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("rest")}
    assert set(fields) == set(place["properties"]), cls
    rest = [f for f in dataclasses.fields(cls) if f.metadata.get("rest")]
    assert bool(rest) == isinstance(place.get("additionalProperties"), dict), cls  # the outcomes' metric lists
    if cls is Spec:  # the grid's own type: a default for each key, while a record must state them all
        assert set(place["required"]) == set(fields)
        return
    required = {name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert required == set(place["required"]), cls
    assert set(fields) - required == ADDED_IN_3.get(cls, set(place["properties"]) - set(place["required"])), cls


def test_a_record_read_and_written_back_is_the_same_bytes():
    cases = [record(), record(adds_bos=False, max_context=2048), record(suite="standard", max_context=32768)]
    files = sorted(glob.glob(str(ROOT / "leaderboard" / "submissions" / "*" / "*" / "*.json")))
    cases += [read_record(Path(f)) for f in files]
    assert len(cases) >= 3
    for data in cases:
        typed = Record.from_json(data)
        assert typed.to_json() == data
        assert dumps(typed.to_json()) == dumps(data)


def test_reading_gives_types_all_the_way_down():
    typed = Record.from_json(record())
    condition = typed.conditions[0]
    assert isinstance(condition, types.Condition) and isinstance(condition.spec, Spec)
    task = "sinkbench_lambada_quick"
    assert isinstance(condition.scores[task]["acc"], types.Estimate)
    outcome = condition.outcomes[task]
    assert isinstance(outcome, types.Outcome) and outcome.values("acc") is outcome.metrics["acc"]
    assert outcome.values("alpha") is outcome.alpha and outcome.values("nothing") is None
    assert isinstance(typed.summary["suite_score"], types.SummaryValue)
    assert isinstance(typed.profile.length_sweep.points[0].per_text, types.PerText)
    assert isinstance(typed.tasks[task].documents, types.Documents)


def test_a_key_an_older_record_lacks_is_absent_and_never_written():
    data = record()
    del data["model"]["weights"], data["model"]["attention_implementation"]
    typed = Record.from_json(data)
    assert typed.model.weights is ABSENT and not typed.model.weights  # ABSENT is falsy, and not None
    assert "weights" not in typed.to_json()["model"]
    data["model"]["weights"] = None  # present and null: written as null
    assert Record.from_json(data).to_json()["model"]["weights"] is None


@pytest.mark.parametrize("path, value, message", [
    (("conditions", 0, "outcomes", "sinkbench_lambada_quick", "n"), "40",
     "record.conditions[0].outcomes.sinkbench_lambada_quick.n: '40' where an integer is required"),
    (("conditions", 0, "scores", "sinkbench_piqa_quick", "acc", "value"), "0.5",
     "record.conditions[0].scores.sinkbench_piqa_quick.acc.value: '0.5' where a number is required"),
    (("summary", "suite_score", "by_construction"), 0,
     "record.summary.suite_score.by_construction: 0 where true or false is required"),
    (("profile", "length_sweep", "points"), {}, "record.profile.length_sweep.points: dict where a list is required"),
    (("model", "weights"), [], "record.model.weights: list where an object is required"),
    (("conditions", 0, "spec", "bos"), "replace",
     "record.conditions[0].spec: bos=replace needs a token: bos=replace:<token or id>"),
])
def test_a_value_of_the_wrong_shape_is_one_line_naming_its_path(path, value, message):
    data = record()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(RecordTypeError) as raised:
        Record.from_json(data)
    assert str(raised.value) == message


def test_unknown_and_missing_keys_are_named():
    data = record()
    data["profile"]["per_text"]["extra"] = []
    with pytest.raises(RecordTypeError, match=r"^record\.profile\.per_text: unknown key 'extra'$"):
        Record.from_json(data)
    data = record()
    del data["provenance"]["seed"]
    with pytest.raises(RecordTypeError, match=r"^record\.provenance: missing 'seed'$"):
        Record.from_json(data)


def test_a_twin_carries_the_numbers_of_the_condition_it_copies():
    """SmolLM2's tokenizer adds no <bos>: bos=drop sees what bos=keep sees, and the record says so."""
    typed = Record.from_json(record(adds_bos=False))
    keep, drop = typed.condition("bos=keep"), typed.condition("bos=drop")
    assert drop.identical_to == "bos=keep" and drop.role == "bos_drop" and drop.wall_time_s == 0.0
    assert set(drop.scores) == set(drop.tasks) - set(drop.skipped) and set(drop.tasks) < set(keep.tasks)
    for task in drop.tasks:
        assert drop.outcomes[task] == keep.outcomes[task] and drop.scores[task] == keep.scores[task]
    built = keep.identical("bos=drop", "bos_drop", Spec(bos="drop"), list(drop.tasks))
    assert built == drop


def test_the_hints_of_every_type_are_ones_the_reader_knows():
    """Every field's type is one the reader handles: a scalar, a part, a list or a mapping of them, or optional."""
    known = (int, float, str, bool, typing.Any)

    def check(hint):
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType):
            return all(a is type(None) or check(a) for a in args)
        if typing.get_origin(hint) in (list, dict):
            return check(args[-1])
        return hint in known or dataclasses.is_dataclass(hint)

    for cls in PLACES:
        for name, hint in typing.get_type_hints(cls).items():
            if name in {f.name for f in dataclasses.fields(cls)}:
                assert check(hint), (cls.__name__, name, hint)
