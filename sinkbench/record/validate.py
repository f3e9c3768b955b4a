"""`sinkbench validate FILE`: the record schema, then the checks a schema cannot say.

`problems(record)` returns readable one-line problems, each starting with the field path
(`conditions[2].scores.sinkbench_copa.acc.value: ...`); an empty list means valid. No torch.
"""

from __future__ import annotations

import math

from jsonschema import Draft202012Validator

from sinkbench.errors import SinkbenchError
from sinkbench.files import field_path
from sinkbench.grid.conditions import Condition, role_of
from sinkbench.grid.suite import SUITES
from sinkbench.record.columns import COLUMNS, compute_summary
from sinkbench.record.format import schema

TOLERANCE = 1e-6


def schema_problems(record: dict) -> list[str]:
    validator = Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(record), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{field_path(e.absolute_path)}: {_short(e.message)}" for e in errors]


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _check_metric(where: str, metric: str, entry: dict) -> list[str]:
    found = []
    value = entry["value"]
    if value is None or entry["stderr"] is None:
        if not entry["note"]:
            found.append(f"{where}: a null value or stderr needs a note saying why")
    if value is not None:
        if metric.startswith(("acc", "exact_match")) and not 0 <= value <= 1:
            found.append(f"{where}.value: {value} is outside [0, 1] for {metric}")
        if "perplexity" in metric and value < 1:
            found.append(f"{where}.value: a perplexity of {value} is below 1")
    return found


def _check_conditions(record: dict) -> list[str]:
    found = []
    names = {}
    for index, condition in enumerate(record["conditions"]):
        where = f"conditions[{index}]"
        try:
            expected = Condition.from_dict(condition["spec"]).name
        except SinkbenchError as err:
            found.append(f"{where}.spec: {err}")
            continue
        if condition["name"] != expected:
            found.append(f"{where}.name: '{condition['name']}' does not match its spec ('{expected}')")
        if condition["name"] in names:
            found.append(f"{where}.name: '{condition['name']}' appears twice")
        names[condition["name"]] = condition
        for task in condition["tasks"]:
            if task not in record["tasks"]:
                found.append(f"{where}.tasks: '{task}' is not described in tasks")
        for part in ("scores", "sinks", "link"):
            for task in condition[part]:
                if task not in condition["tasks"]:
                    found.append(f"{where}.{part}.{task}: not one of this condition's tasks")
        for task, metrics in condition["scores"].items():
            for metric, entry in metrics.items():
                found += _check_metric(f"{where}.scores.{task}.{metric}", metric, entry)
        for task, link in condition["link"].items():
            found += _check_link(f"{where}.link.{task}", link, condition["scores"].get(task, {}))
        twin = condition["identical_to"]
        if twin is not None:
            if twin not in names or twin == condition["name"]:
                found.append(f"{where}.identical_to: '{twin}' is not an earlier condition")
            elif any(names[twin]["scores"].get(task) != scores for task, scores in condition["scores"].items()):
                found.append(f"{where}.scores: differ from '{twin}', which identical_to says it equals")
    return found


def _check_link(where: str, link: dict, scores: dict) -> list[str]:
    found = []
    quartiles = link["quartiles"]
    if sum(q["n"] for q in quartiles) != link["n"]:
        found.append(f"{where}.quartiles: documents add up to {sum(q['n'] for q in quartiles)}, not n={link['n']}")
    for q in quartiles:
        if q["alpha_low"] > q["alpha_high"]:
            found.append(f"{where}.quartiles[{q['quartile'] - 1}]: alpha_low is above alpha_high")
    for a, b in zip(quartiles, quartiles[1:]):
        if a["alpha_high"] > b["alpha_low"]:
            found.append(f"{where}.quartiles: quartile {b['quartile']} starts below quartile {a['quartile']} ends")
    metric = scores.get(link["metric"])
    if metric is not None and link["n"] > metric["n"]:
        found.append(f"{where}.n: {link['n']} documents, more than the {metric['n']} scored")
    if link["point_biserial"] is None and not link["note"]:
        found.append(f"{where}.point_biserial: null needs a note saying why")
    if link["ci_low"] is not None and link["ci_high"] is not None and link["ci_low"] > link["ci_high"]:
        found.append(f"{where}.ci_low: above ci_high")
    return found


def _check_profile(record: dict) -> list[str]:
    found = []
    model, profile = record["model"], record["profile"]
    layers, heads = model["n_layers"], model["n_heads"]
    if sorted(profile["sink_rate"]) != sorted(f"{eps:g}" for eps in profile["eps"]):
        found.append("profile.sink_rate: keys differ from profile.eps")
    tables = [("profile", profile)] + [(f"profile.length_sweep.points[{i}]", p) for i, p in enumerate(profile["length_sweep"]["points"])]
    for where, part in tables:
        table = part["alpha_by_head"]
        if len(table) != layers or any(len(row) != heads for row in table):
            found.append(f"{where}.alpha_by_head: not {layers} layers x {heads} heads")
            continue
        if len(part["alpha_by_layer"]) != layers:
            found.append(f"{where}.alpha_by_layer: {len(part['alpha_by_layer'])} values for {layers} layers")
        elif not all(_close(_mean(row), value) for row, value in zip(table, part["alpha_by_layer"])):
            found.append(f"{where}.alpha_by_layer: not the mean of alpha_by_head over heads")
        if not _close(_mean(v for row in table for v in row), part["alpha_mean"]):
            found.append(f"{where}.alpha_mean: not the mean of alpha_by_head")
    lengths = [p["T"] for p in profile["length_sweep"]["points"]]
    if lengths != sorted(set(lengths)):
        found.append("profile.length_sweep.points: lengths must increase")
    if model["max_context"] is not None and lengths and lengths[-1] > model["max_context"]:
        found.append(f"profile.length_sweep.points: T={lengths[-1]} exceeds the model's context {model['max_context']}")
    for name in ("ratio_by_layer", "top_position_by_layer", "fraction_at_first_token_by_layer"):
        if len(profile["massive_activations"][name]) != layers:
            found.append(f"profile.massive_activations.{name}: not one value per layer")
    return found


def _check_status(record: dict) -> list[str]:
    found = []
    if (record["status"] == "partial") != bool(record["missing"]):
        found.append("status: 'partial' exactly when missing lists a reason")
    suite = record["provenance"]["suite"]
    if record["status"] == "complete" and not suite["custom_grid"]:
        known = SUITES.get(suite["name"])
        if known is not None and known.version == suite["version"]:
            have = {c["name"]: set(c["tasks"]) for c in record["conditions"]}
            for cell in known.grid():
                if cell.condition.name not in have:
                    found.append(f"conditions: complete record lacks the suite's condition {cell.condition.name}")
                elif not set(cell.tasks) <= have[cell.condition.name]:
                    found.append(f"conditions: {cell.condition.name} lacks tasks of the suite")
    return found


def _check_summary(record: dict) -> list[str]:
    names = {c.name for c in COLUMNS}
    found = [f"summary.{name}: not a summary column" for name in sorted(set(record["summary"]) - names)]
    found += [f"summary.{name}: missing" for name in sorted(names - set(record["summary"]))]
    if found:
        return found
    recomputed = compute_summary(record)
    for column in COLUMNS:
        stated, expected = record["summary"][column.name], recomputed[column.name]
        if not _close(stated["value"], expected["value"]):
            found.append(f"summary.{column.name}.value: {stated['value']} but the record's numbers give {expected['value']}")
        elif stated["value"] is None and not stated["note"]:
            found.append(f"summary.{column.name}: null needs a note saying why")
    return found


def problems(record) -> list[str]:
    """Everything wrong with a record, schema first; [] when it is valid."""
    if not isinstance(record, dict):
        return ["(record): a record is a JSON object"]
    found = schema_problems(record)
    if found:
        return found
    for check in (_check_status, _check_conditions, _check_profile, _check_summary):
        found += check(record)
    return found
