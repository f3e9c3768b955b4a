"""The record schema's closed vocabularies are the code's: a role, a <bos> mode, a layer type or a model
source added in code and not in the schema (or the other way) fails here, not in a user's submission."""

from sinkbench.grid.conditions import BOS_MODES, ROLES
from sinkbench.measure.layers import LAYER_TYPES, NONE
from sinkbench.measure.models import MODEL_SOURCES
from sinkbench.record.format import SCHEMA_VERSION, schema
from sinkbench.record.validate import VERSION_PARTS


def _defs() -> dict:
    return schema()["$defs"]


def test_roles_and_bos_modes_are_the_codes():
    condition = _defs()["condition"]["properties"]
    assert condition["role"]["enum"] == list(ROLES)
    assert condition["spec"]["properties"]["bos"]["enum"] == list(BOS_MODES)


def test_layer_types_are_the_codes():
    assert _defs()["layers"]["items"]["properties"]["type"]["enum"] == list(LAYER_TYPES)
    # Per-type means exist for the types with softmax attention only.
    assert _defs()["layer_types"]["propertyNames"]["enum"] == [t for t in LAYER_TYPES if t != NONE]


def test_model_sources_and_schema_versions_are_the_codes():
    assert schema()["properties"]["model"]["properties"]["source"]["enum"] == list(MODEL_SOURCES)
    versions = schema()["properties"]["schema_version"]["enum"]
    assert SCHEMA_VERSION == versions[-1] and SCHEMA_VERSION in VERSION_PARTS
