"""`sinkbench validate FILE`: the record schema, then everything a schema cannot say.

`problems(record)` returns readable one-line problems, each starting with the field path
(`conditions[2].scores.sinkbench_copa.acc.value: ...`); an empty list means valid. Every
aggregate and every analytic interval is recomputed from the per-document outcomes and must
agree; every bootstrap interval must hold its value; per-document lists must be aligned and of
the stated n. No torch.

The checks read the record's JSON form, since they are about what a file holds before it is a
Record; the summary is recomputed from the typed record (sinkbench.record.types) once the
checks before it have vouched for every part of it.
"""

from __future__ import annotations

import math

import numpy as np
from jsonschema import Draft202012Validator

from sinkbench.errors import SinkbenchError
from sinkbench.files import field_path
from sinkbench.grid.catalog import RETRIEVAL
from sinkbench.grid.conditions import CUSTOM, Condition, role_of
from sinkbench.grid.suite import SUITES
from sinkbench.record import stats
from sinkbench.record.columns import ANALYTIC, BOOTSTRAP, COLUMNS, Context, eps_key, measure
from sinkbench.record.format import schema
from sinkbench.record.link import point_biserial, quartiles
from sinkbench.record.scores import WEIGHTED, metric_estimate, uses_loglik
from sinkbench.record.types import Record, RecordTypeError

TOLERANCE = 1e-6


def schema_problems(record: dict) -> list[str]:
    validator = Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted((_specific(e) for e in validator.iter_errors(record)),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{field_path(e.absolute_path)}: {_short(e.message)}" for e in errors]


def _specific(error):
    """A oneOf error (null or a list, null or an object) is reported at the part with the part's whole text;
    the branch error deepest in the record names the field at fault, where one lies deeper."""
    while error.context:
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) <= len(error.absolute_path):
            break
        error = deepest
    return error


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _close(a: float | None, b: float | None, tolerance: float = TOLERANCE) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def _numbers(where: str, values, low=None, high=None, nullable: bool = False) -> tuple[np.ndarray | None, list[str]]:
    """The values as finite numbers within [low, high], or the problem; with `nullable`, None
    entries (undefined: no query of the document could see the key) come back as NaN."""
    if not isinstance(values, list) or any(
            isinstance(v, bool) or not (isinstance(v, (int, float)) or (v is None and nullable)) for v in values):
        return None, [f"{where}: per-document values must be numbers"]
    array = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    defined = array[~np.isnan(array)] if nullable else array
    if not np.isfinite(defined).all():
        return None, [f"{where}: per-document values must be finite"]
    if (low is not None and (defined < low).any()) or (high is not None and (defined > high).any()):
        return None, [f"{where}: per-document values outside [{low}, {high}]"]
    return array, []


def _array(where: str, values, fraction: bool, nullable: bool = False, depth: int = 1) -> list[str]:
    """A list (of lists, depth 2) of numbers: finite, in [0, 1] for fractions; None entries where nullable.
    The schema leaves these to this check: per item, jsonschema costs a record a tenth of a second."""
    if values is None:
        return [] if nullable else [f"{where}: must be a list of numbers"]
    rows = values if depth == 2 else [values]
    if not isinstance(values, list) or not all(isinstance(row, list) for row in rows):
        return [f"{where}: must be a list{' of lists' if depth == 2 else ''} of numbers"]
    flat = [v for row in rows for v in row]
    if any(isinstance(v, bool) or not (isinstance(v, (int, float)) or (v is None and nullable)) for v in flat):
        return [f"{where}: must hold numbers only"]
    numbers = np.asarray([v for v in flat if v is not None], dtype=float)
    if not np.isfinite(numbers).all():
        return [f"{where}: numbers must be finite"]
    if fraction and ((numbers < 0).any() or (numbers > 1).any()):
        return [f"{where}: values must lie in [0, 1]"]
    return []


def _check_arrays(record: dict) -> list[str]:
    """Every numeric list the schema does not check item by item."""
    found = []
    profile = record["profile"]
    parts = [("profile", profile)] + [(f"profile.length_sweep.points[{i}]", p) for i, p in enumerate(profile["length_sweep"]["points"])]
    if profile.get("random_tokens") is not None:
        parts.append(("profile.random_tokens", profile["random_tokens"]))
    # Attention values are null in a layer where no query could see the key (schema 3.0).
    for where, part in parts:
        found += _array(f"{where}.alpha_by_layer", part["alpha_by_layer"], True, nullable=True)
        found += _array(f"{where}.alpha_by_head", part["alpha_by_head"], True, nullable=True, depth=2)
        found += _array(f"{where}.per_text.alpha_mean", part["per_text"]["alpha_mean"], True, nullable=True)
        for eps, values in part["per_text"]["sink_rate"].items():
            found += _array(f"{where}.per_text.sink_rate.{eps}", values, True, nullable=True)
    massive = profile["massive_activations"]
    found += _array("profile.first_k_mass", profile["first_k_mass"], True, nullable=True)
    found += _array("profile.massive_activations.ratio_by_layer", massive["ratio_by_layer"], False, nullable=True)
    found += _array("profile.massive_activations.fraction_at_first_token_by_layer", massive["fraction_at_first_token_by_layer"], True)
    found += _array("profile.massive_activations.ratio_by_text", massive["ratio_by_text"], False, depth=2)
    found += _array("profile.value_norm_ratio_by_layer", profile["value_norm_ratio_by_layer"], False, nullable=True)
    found += _array("profile.learned_sink_mass_by_layer", profile["learned_sink_mass_by_layer"], True, nullable=True)
    for variant, entry in profile["overmixing"].items():
        if entry is not None:
            for name in ("relative_change_by_layer", "representation_spread_by_layer"):
                found += _array(f"profile.overmixing.{variant}.{name}", entry[name], False, nullable=True)
            found += _array(f"profile.overmixing.{variant}.last_layer_by_sequence", entry["last_layer_by_sequence"], False)
    for index, condition in enumerate(record["conditions"]):
        for task, sinks in condition["sinks"].items():
            where = f"conditions[{index}].sinks.{task}"
            found += _array(f"{where}.alpha_by_layer", sinks["alpha_by_layer"], True, nullable=True)
            found += _array(f"{where}.first_k_mass", sinks["first_k_mass"], True, nullable=True)
            found += _array(f"{where}.text_start_by_layer", sinks["text_start_by_layer"], True, nullable=True)
    return found


# Parts a record of schema 3.0 must have; a 2.0 record (attention averaged over every query,
# before the layer table) stays readable without them.
VERSION_PARTS = {"3.0": (("profile", "layers"), ("profile", "alpha_mean_by_type"), ("profile", "random_tokens"))}


def _check_version_parts(record: dict) -> list[str]:
    found = []
    for path in VERSION_PARTS.get(record["schema_version"], ()):
        part = record
        for key in path[:-1]:
            part = part[key]
        if path[-1] not in part:
            found.append(f"{'.'.join(path)}: required in a schema {record['schema_version']} record")
    if record["schema_version"] == "3.0":
        for index, point in enumerate(record["profile"]["length_sweep"]["points"]):
            if "alpha_mean_by_type" not in point or "queries_seeing_first_by_layer" not in point:
                found.append(f"profile.length_sweep.points[{index}]: alpha_mean_by_type and queries_seeing_first_by_layer "
                             "are required in a schema 3.0 record")
        for index, condition in enumerate(record["conditions"]):
            for task, sinks in condition["sinks"].items():
                if "queries_seeing_first_by_layer" not in sinks:
                    found.append(f"conditions[{index}].sinks.{task}.queries_seeing_first_by_layer: required in a "
                                 "schema 3.0 record")
    return found


def _check_estimate(where: str, entry: dict) -> list[str]:
    """An interval holds its value; a null value or interval says why."""
    found = []
    value, low, high = entry["value"], entry["ci_low"], entry["ci_high"]
    if (low is None) != (high is None):
        missing = "ci_low" if low is None else "ci_high"
        found.append(f"{where}.{missing}: null, but an interval needs both ci_low and ci_high")
    elif low is not None:
        if value is None or not low <= value <= high:
            found.append(f"{where}: interval [{low}, {high}] does not hold the value {value}")
        if entry["method"] == "none":
            found.append(f"{where}.method: an interval needs its method named")
    if (value is None or low is None) and not entry["note"]:
        found.append(f"{where}: a value without an interval needs a note saying why")
    return found


def _check_outcomes(where: str, task: str, outcome: dict, documents: dict) -> tuple[dict, list[str]]:
    """Aligned per-document arrays of one task under one condition."""
    found, arrays = [], {}
    n = outcome["n"]
    if n > len(documents["ids"]):
        return {}, [f"{where}.n: {n} documents, but the task lists {len(documents['ids'])}"]
    for name, values in outcome.items():
        if name == "n":
            continue
        bounds = {"alpha": (0, 1), "text_start": (0, 1), "loglik": (None, 0)}.get(name, (None, None))
        array, problems_ = _numbers(f"{where}.{name}", values, *bounds, nullable=name in ("alpha", "text_start"))
        found += problems_
        if array is not None and len(array) != n:
            found.append(f"{where}.{name}: {len(array)} values for n={n} documents")
        elif array is not None:
            arrays[name] = array
    return arrays, found


def _expected(metric: str, arrays: dict, documents: dict) -> dict | None:
    """The metric recomputed from per-document outcomes: the value, and the interval where it is analytic."""
    n = len(arrays["alpha"])
    if uses_loglik(metric):
        if "loglik" not in arrays or (metric in WEIGHTED and documents.get(WEIGHTED[metric]) is None):
            return None
        sizes = np.asarray(documents[WEIGHTED[metric]][:n], dtype=float) if metric in WEIGHTED else None
        if sizes is not None and sizes.sum() <= 0:
            return {"value": None}  # no words (bytes) in the scored documents: no perplexity
        return metric_estimate(metric, None, arrays["loglik"], sizes, bootstrap=False)
    if metric not in arrays:
        return None
    return metric_estimate(metric, arrays[metric])


def _checked_outcomes(where: str, condition: dict, record: dict) -> tuple[dict[str, dict], list[str]]:
    """Each task's per-document arrays that passed their checks (task -> {name: array}), and the problems.
    Nothing downstream reads an outcome that is not in the first map."""
    checked, found = {}, []
    for task, outcome in condition["outcomes"].items():
        documents = record["tasks"].get(task, {}).get("documents")
        if documents is None:
            found.append(f"{where}.outcomes.{task}: not a task of the record")
            continue
        arrays, problems_ = _check_outcomes(f"{where}.outcomes.{task}", task, outcome, documents)
        found += problems_
        if not problems_:
            checked[task] = arrays
    return checked, found


def _check_condition_scores(where: str, condition: dict, record: dict, checked: dict[str, dict]) -> list[str]:
    found = []
    for task, metrics in condition["scores"].items():
        outcome = condition["outcomes"].get(task)
        documents = record["tasks"].get(task, {}).get("documents")
        if outcome is None or documents is None:
            found.append(f"{where}.outcomes.{task}: scored but without per-document outcomes")
            continue
        if task not in checked:
            continue  # its outcomes' problems are already named
        arrays = checked[task]
        for metric, entry in metrics.items():
            at = f"{where}.scores.{task}.{metric}"
            if entry["n"] != outcome["n"]:
                found.append(f"{at}.n: {entry['n']}, but {outcome['n']} documents were scored")
            expected = _expected(metric, arrays, documents) or {}
            wrong = next((key for key in ("value", "stderr", "ci_low", "ci_high")
                          if key in expected and not _close(entry[key], expected[key])), None)
            if wrong is not None:
                found.append(f"{at}.{wrong}: {entry[wrong]} but the per-document outcomes give {expected[wrong]}")
            else:
                found += _check_estimate(at, entry)
        for name, values in arrays.items():
            if name in ("acc", "acc_norm") and not np.isin(values, (0.0, 1.0)).all():
                found.append(f"{where}.outcomes.{task}.{name}: outcomes must be 0 or 1")
    return found


def _check_link(where: str, link: dict, checked: dict[str, dict], task: str) -> list[str]:
    """A link against its task's checked per-document arrays (checked: task -> {name: array})."""
    found = []
    if sum(q["n"] for q in link["quartiles"]) != link["n"]:
        found.append(f"{where}.quartiles: documents add up to {sum(q['n'] for q in link['quartiles'])}, not n={link['n']}")
    arrays = checked.get(task)
    if arrays is None:
        return found  # no outcomes to link, or outcomes whose problems are named already
    if link["metric"] not in arrays:
        return found + [f"{where}: no per-document {link['metric']} to link"]
    correct, alpha = arrays[link["metric"]], arrays["alpha"]
    defined = ~np.isnan(alpha)  # a document no query of which could see the first token is not linked
    correct, alpha = correct[defined], alpha[defined]
    if link["n"] != len(correct):
        found.append(f"{where}.n: {link['n']} documents, but {len(correct)} were scored")
    elif link["n"] >= 4:
        if link["quartiles"] != quartiles(correct, alpha):
            found.append(f"{where}.quartiles: not what the per-document outcomes give")
        if not _close(link["point_biserial"], point_biserial(correct, alpha)):
            found.append(f"{where}.point_biserial: not what the per-document outcomes give")
    if link["point_biserial"] is None and not link["note"]:
        found.append(f"{where}.point_biserial: null needs a note saying why")
    if link["ci_low"] is not None and link["ci_high"] is not None and link["ci_low"] > link["ci_high"]:
        found.append(f"{where}.ci_low: above ci_high")
    return found


def _check_conditions(record: dict) -> list[str]:
    found = []
    names = {}
    for index, condition in enumerate(record["conditions"]):
        where = f"conditions[{index}]"
        try:
            spec = Condition.from_dict(condition["spec"])
        except SinkbenchError as err:
            found.append(f"{where}.spec: {err}")
            continue
        if condition["name"] != spec.name:
            found.append(f"{where}.name: '{condition['name']}' does not match its spec ('{spec.name}')")
        if condition["role"] not in (role_of(spec), CUSTOM):
            found.append(f"{where}.role: '{condition['role']}', but its spec plays '{role_of(spec)}'")
        if condition["name"] in names:
            found.append(f"{where}.name: '{condition['name']}' appears twice")
        names[condition["name"]] = condition
        for task in condition["tasks"]:
            if task not in record["tasks"]:
                found.append(f"{where}.tasks: '{task}' is not described in tasks")
        for part in ("scores", "outcomes", "sinks", "link", "skipped"):
            for task in condition[part]:
                if task not in condition["tasks"]:
                    found.append(f"{where}.{part}.{task}: not one of this condition's tasks")
        if set(condition["scores"]) != set(condition["outcomes"]):
            found.append(f"{where}.outcomes: not the tasks that have scores")
        unaccounted = set(condition["tasks"]) - set(condition["scores"]) - set(condition["skipped"])
        if unaccounted:
            found.append(f"{where}.skipped: {', '.join(sorted(unaccounted))} neither scored nor said why not")
        checked, problems_ = _checked_outcomes(where, condition, record)
        found += problems_ + _check_condition_scores(where, condition, record, checked)
        for task, link in condition["link"].items():
            if task not in condition["outcomes"]:
                found.append(f"{where}.link.{task}: no per-document outcomes to link")
            else:
                found += _check_link(f"{where}.link.{task}", link, checked, task)
        twin = condition["identical_to"]
        if twin is not None:
            if twin not in names or twin == condition["name"]:
                found.append(f"{where}.identical_to: '{twin}' is not an earlier condition")
            elif any(names[twin]["scores"].get(task) != scores for task, scores in condition["scores"].items()):
                found.append(f"{where}.scores: differ from '{twin}', which identical_to says it equals")
    return found


def _check_documents(record: dict) -> list[str]:
    found = []
    for task, entry in record["tasks"].items():
        documents = entry["documents"]
        ids = documents["ids"]
        where = f"tasks.{task}.documents"
        if ids != sorted(set(ids)):
            found.append(f"{where}.ids: document ids must be unique and increasing")
        for name in ("hashes", "words", "bytes"):
            if documents[name] is not None and len(documents[name]) != len(ids):
                found.append(f"{where}.{name}: {len(documents[name])} entries for {len(ids)} documents")
        for name in ("words", "bytes"):  # the denominators of word and byte perplexity
            if documents[name] is not None:
                array, problems_ = _numbers(f"{where}.{name}", documents[name], 0)
                found += problems_
                if array is not None and len(array) and array.sum() == 0:
                    found.append(f"{where}.{name}: every document holds 0 {name}")
        if (entry["kind"] == RETRIEVAL) != (entry["retrieval"] is not None):
            found.append(f"tasks.{task}.retrieval: set exactly for retrieval tasks")
    return found


def _mean(values) -> float | None:
    """The mean of the defined values (None: undefined, a layer no query could see the key in); None if none is."""
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _check_alpha_part(where: str, part: dict, layers: int, heads: int) -> list[str]:
    found = []
    table = part["alpha_by_head"]
    if len(table) != layers or any(len(row) != heads for row in table):
        return [f"{where}.alpha_by_head: not {layers} layers x {heads} heads"]
    if len(part["alpha_by_layer"]) != layers:
        found.append(f"{where}.alpha_by_layer: {len(part['alpha_by_layer'])} values for {layers} layers")
    elif not all(_close(_mean(row), value) for row, value in zip(table, part["alpha_by_layer"])):
        found.append(f"{where}.alpha_by_layer: not the mean of alpha_by_head over heads")
    if not _close(_mean(v for row in table for v in row), part["alpha_mean"]):
        found.append(f"{where}.alpha_mean: not the mean of alpha_by_head")
    per_text = part["per_text"]
    n = part["n_sequences"]
    if len(per_text["hashes"]) != n or len(per_text["alpha_mean"]) != n:
        found.append(f"{where}.per_text: not one entry per text (n_sequences={n})")
    elif not _close(_mean(per_text["alpha_mean"]), part["alpha_mean"], 1e-5):
        found.append(f"{where}.per_text.alpha_mean: its mean is not alpha_mean")
    for eps, rate in part["sink_rate"].items():
        values = per_text["sink_rate"].get(eps)
        if values is None or len(values) != n or not _close(_mean(values), rate, 1e-5):
            found.append(f"{where}.per_text.sink_rate.{eps}: its mean is not sink_rate[{eps}]")
    return found


def _check_profile(record: dict) -> list[str]:
    model, profile = record["model"], record["profile"]
    layers, heads = model["n_layers"], model["n_heads"]
    found = []
    if sorted(profile["sink_rate"]) != sorted(eps_key(eps) for eps in profile["eps"]):
        found.append("profile.sink_rate: keys differ from profile.eps")
    found += _check_alpha_part("profile", profile, layers, heads)
    if profile.get("random_tokens") is not None:
        found += _check_alpha_part("profile.random_tokens", profile["random_tokens"], layers, heads)
    if profile.get("layers") is not None:
        if [layer["index"] for layer in profile["layers"]] != list(range(layers)):
            found.append(f"profile.layers: not one entry per layer 0..{layers - 1} in order")
        else:
            for layer, value in zip(profile["layers"], profile["alpha_by_layer"]):
                if layer["type"] == "none" and value is not None:
                    found.append(f"profile.alpha_by_layer[{layer['index']}]: a layer without softmax attention has no α")
    for i, point in enumerate(profile["length_sweep"]["points"]):
        found += _check_alpha_part(f"profile.length_sweep.points[{i}]", point, layers, heads)
    lengths = [p["T"] for p in profile["length_sweep"]["points"]]
    if lengths != sorted(set(lengths)):
        found.append("profile.length_sweep.points: lengths must increase")
    if model["max_context"] is not None and lengths and lengths[-1] > model["max_context"]:
        found.append(f"profile.length_sweep.points: T={lengths[-1]} exceeds the model's context {model['max_context']}")
    massive = profile["massive_activations"]
    for name in ("ratio_by_layer", "top_position_by_layer", "fraction_at_first_token_by_layer"):
        if len(massive[name]) != layers:
            found.append(f"profile.massive_activations.{name}: not one value per layer")
    table = massive["ratio_by_text"]
    if len(table) != profile["n_sequences"] or any(len(row) != layers for row in table):
        found.append("profile.massive_activations.ratio_by_text: not texts x layers")
    for variant, entry in profile["overmixing"].items():
        if entry is not None and len(entry["last_layer_by_sequence"]) != entry["n_sequences"]:
            found.append(f"profile.overmixing.{variant}.last_layer_by_sequence: not one value per sequence")
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


def _check_summary(record: dict, typed: Record) -> list[str]:
    names = {c.name for c in COLUMNS}
    found = [f"summary.{name}: not a summary column" for name in sorted(set(record["summary"]) - names)]
    found += [f"summary.{name}: missing" for name in sorted(names - set(record["summary"]))]
    if found:
        return found
    # Values, and the analytic intervals, recomputed; a bootstrap interval (seeded, so reproducible
    # with `measure(record)`) must hold its value: redoing every bootstrap would make checking a
    # board of hundreds of records take minutes.
    recomputed = measure(typed, Context(typed, bootstrap=False))
    for column in COLUMNS:
        stated, expected = record["summary"][column.name], recomputed[column.name]
        where = f"summary.{column.name}"
        keys = ("value", "stderr", "ci_low", "ci_high", "mde") if column.interval == ANALYTIC else ("value",)
        for key in keys:
            if not _close(stated[key], expected[key], 1e-5):
                found.append(f"{where}.{key}: {stated[key]} but the record's numbers give {expected[key]}")
                break
        else:
            if stated["by_construction"] != expected["by_construction"]:
                found.append(f"{where}.by_construction: {stated['by_construction']} but the record says otherwise")
            if column.interval == BOOTSTRAP and stated["ci_low"] is not None and stated["stderr"] is None:
                found.append(f"{where}.stderr: null, but a bootstrap interval comes with its standard error")
                continue
            mde = stats.mde(stated["stderr"]) if column.states_mde else None
            if not _close(stated["mde"], mde, 1e-5):
                found.append(f"{where}.mde: {stated['mde']}, but " + (f"its stderr gives {mde}" if column.states_mde
                                                                       else "this column states no MDE"))
            found += _check_estimate(where, stated)
    return found


def problems(record) -> list[str]:
    """Everything wrong with a record, schema first; [] when it is valid."""
    if not isinstance(record, dict):
        return ["(record): a record is a JSON object"]
    found = schema_problems(record)
    if found:
        return found
    found = _check_version_parts(record) or _check_arrays(record)
    if found:
        return found
    found = _check_documents(record)
    if found:
        return found  # the conditions' checks read the documents' word and byte counts
    for check in (_check_status, _check_conditions, _check_profile):
        found += check(record)
    if found:
        return found  # the summary reads what the checks above vouch for
    try:
        typed = Record.from_json(record)
    except RecordTypeError as err:  # the schema and the checks above leave nothing for this to find: a bug if it does
        return [str(err)]
    return _check_summary(record, typed)
