"""A page per record, `site/models/<family>/<model>/<revision>.html`: everything the record says, laid out.

Identity and provenance (with the command that reproduces the record), the summary with every
interval, the whole grid as a task x condition table, the per-example link between first-token
attention and correctness, the sink profile and stress curves as charts, and the layer x head
α heatmap. Rendered by Jinja2 with autoescape; the charts come from ElementTree; no script runs.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

from markupsafe import Markup

from sinkbench.board import heatmap, recordplots
from sinkbench.board.table import (BY_CONSTRUCTION, MACHINE_COLUMNS, MISSING, MODEL_COLUMNS, format_interval,
                                   format_value, heading)
from sinkbench.grid.catalog import PERPLEXITY
from sinkbench.grid.conditions import BASELINE
from sinkbench.record.columns import condition_suite_score
from sinkbench.record.identity import FORMATS, weights_of, weights_tag
from sinkbench.record.numbers import interval, number
from sinkbench.record.types import Condition, Estimate, Model, Record, Task

MODEL_FIELDS = (("name", "model"), ("family", "family"), ("revision", "revision"), ("weights_sha256", "weights sha256"),
                ("release_date", "released"), ("source", "source"), ("architecture", "architecture"),
                ("n_parameters", "parameters"), ("dtype", "computed in (dtype)"), ("n_layers", "layers"), ("n_heads", "heads"),
                ("n_kv_heads", "key-value heads"), ("max_context", "context (tokens)"), ("bos_token", "<bos> token"),
                ("bos_token_id", "<bos> id"), ("adds_bos", "tokenizer adds <bos>"))
WEIGHTS_FIELDS = (("file", "weights file"), ("checkpoint", "checkpoint's own name"), ("finetune", "fine-tune"),
                  ("base_model", "base model"))
PROVENANCE_FIELDS = (("device", "device"), ("date", "run on"), ("seed", "seed"), ("limit", "--limit"),
                     ("batch_size", "batch size"), ("max_batch_tokens", "tokens per batch"),
                     ("model_load_s", "model load (s)"), ("sinkbench_version", "sinkbench"),
                     ("lm_eval_version", "lm-eval"), ("transformers_version", "transformers"), ("torch_version", "torch"),
                     ("python_version", "python"))


GROUPED = ("n_parameters", "max_context")  # counts a reader compares by magnitude: 1,000,000


def _shown(value, grouped: bool = False) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if grouped and isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _identity(record: Record) -> list[tuple[str, str]]:
    model = record.model
    rows = [(label, _shown(getattr(model, field), field in GROUPED)) for field, label in MODEL_FIELDS]
    return rows[:1] + _weights(model) + rows[1:]


def _weights(model: Model) -> list[tuple[str, str]]:
    """What the weights are, beside the name; nothing for a record that does not say (schema 2.0)."""
    weights = weights_of(model)
    if not weights:
        return []
    stored = " ".join(p for p in (FORMATS.get(weights.format), weights.quantization) if p) or MISSING
    if weights.tensor_types:
        stored += f" (stored types, most values first: {', '.join(weights.tensor_types)})"
    return [("weights", stored)] + [(label, _shown(getattr(weights, field))) for field, label in WEIGHTS_FIELDS] + [
        ("attention", _shown(model.attention_implementation or None))]


def _provenance(record: Record) -> list[tuple[str, str]]:
    provenance = record.provenance
    suite = provenance.suite
    rows = [("suite", f"{suite.name} {suite.version}" + (" (custom grid)" if suite.custom_grid else ""))]
    rows += [(label, _shown(getattr(provenance, field))) for field, label in PROVENANCE_FIELDS]
    prefix = provenance.stress_prefix
    if prefix:
        rows.append(("stress prefix text", ", ".join(f"{k}: {_shown(v)}" for k, v in sorted(prefix.to_json().items()))))
    return rows


def _estimate_title(entry: Estimate) -> str:
    """The hover text of a number: its interval, n, method and note."""
    parts = []
    if entry.ci_low is not None and entry.ci_high is not None:
        parts.append(f"95% interval {interval(entry.ci_low, entry.ci_high, 4)}")
    if entry.n:
        parts.append(f"n={entry.n}")
    if entry.method and entry.method != "none":
        parts.append(entry.method)
    if entry.note:
        parts.append(entry.note)
    return "; ".join(parts)


def _summary(record: Record) -> tuple[list[dict], list[dict]]:
    rows = []
    for column in MODEL_COLUMNS:
        entry = record.summary[column.name]
        constructed = entry.by_construction
        rows.append({"title": heading(column), "name": column.name, "description": column.description,
                     "value": BY_CONSTRUCTION if constructed else format_value(column, entry.value),
                     "interval": "" if constructed else format_interval(column, entry.ci_low, entry.ci_high),
                     "stderr": "" if entry.stderr is None else f"{entry.stderr:.4f}",
                     "mde": "" if entry.mde is None else f"{entry.mde:.4f}", "n": entry.n or "",
                     "method": "" if entry.method == "none" else entry.method, "note": entry.note or ""})
    machine = [{"title": heading(c), "value": format_value(c, record.summary[c.name].value), "unit": c.unit,
                "note": record.summary[c.name].note or ""} for c in MACHINE_COLUMNS]
    return rows, machine


def _places(task: Task) -> int:
    return 2 if task.kind == PERPLEXITY else 3


def _cell(condition: Condition, name: str, task: Task) -> dict:
    """One grid cell: the task's primary metric under the condition, skipped (with why) or not run."""
    if name in condition.skipped:
        return {"kind": "skipped", "text": MISSING, "interval": "", "title": f"skipped: {condition.skipped[name]}"}
    if name not in condition.tasks:
        return {"kind": "none", "text": "", "interval": "", "title": "not run under this condition"}
    entry = condition.scores.get(name, {}).get(task.primary_metric)
    if entry is None or entry.value is None:
        note = entry.note if entry else "no score"
        return {"kind": "skipped", "text": MISSING, "interval": "", "title": note or "no score"}
    places = _places(task)
    return {"kind": "number", "text": number(entry.value, places), "interval": interval(entry.ci_low, entry.ci_high, places),
            "title": _estimate_title(entry)}


def _grid(record: Record) -> dict:
    conditions = record.conditions
    headers = [{"name": c.name, "role": c.role.replace("_", " "),
                "note": f"the same tokens as {c.identical_to}: its numbers" if c.identical_to else ""}
               for c in conditions]
    rows = []
    for name, task in record.tasks.items():
        rows.append({"task": name, "kind": task.kind, "metric": task.primary_metric,
                     "cells": [_cell(c, name, task) for c in conditions]})
    suite_row = []
    for condition in conditions:
        entry = condition_suite_score(condition, record)
        if entry is None or entry.value is None:
            suite_row.append({"kind": "none", "text": "", "interval": "", "title": "no accuracy task run here"})
        else:
            suite_row.append({"kind": "number", "text": number(entry.value), "interval": interval(entry.ci_low, entry.ci_high),
                              "title": _estimate_title(entry)})
    return {"headers": headers, "rows": rows, "suite_row": suite_row}


def _links(record: Record) -> tuple[list[dict], list[dict]]:
    """The link's rows under the baseline, and under every other condition (a long list on a big suite)."""
    rows, others = [], []
    for condition in record.conditions:
        for task, link in condition.link.items():
            quartiles = [{"text": f"{q.accuracy:.3f}", "title": f"quartile {q.quartile}: α "
                          f"{interval(q.alpha_low, q.alpha_high)}, {q.n} documents"} for q in link.quartiles]
            quartiles += [{"text": "", "title": ""}] * (4 - len(quartiles))
            r = link.point_biserial
            bounds = interval(link.ci_low, link.ci_high, signed=True)
            (rows if condition.role == BASELINE else others).append({
                "condition": condition.name, "task": task, "n": link.n, "quartiles": quartiles,
                "r": number(r, signed=True), "interval": bounds, "note": link.note or ""})
    return rows, others


def context(submission, label: str) -> dict:
    """What templates/model.html.j2 shows for one submission (`label`: its short name on the board)."""
    record = submission.record
    depth = len(submission.page.parts) - 2  # site/models/<family>/<model>/<revision>.html: up to site/
    up = "../" * depth
    summary, machine = _summary(record)
    links, other_links = _links(record)
    return {
        "label": label, "model": record.model.name, "family": record.model.family,
        "weights": weights_tag(weights_of(record.model)),
        "revision": submission.revision, "suite": " ".join(submission.suite), "device": submission.device,
        "index": f"{up}index.html", "record_file": "../" * (depth + 1) + str(submission.path),
        "identity": _identity(record), "provenance": _provenance(record),
        "command": shlex.join(record.provenance.command),
        "task_hashes": sorted(record.provenance.task_hashes.items()),
        "data_files": sorted((k, _shown(v)) for k, v in record.provenance.data_files.items()),
        "summary": summary, "machine": machine,
        "grid": _grid(record), "links": links, "other_links": other_links,
        # The SVG was built by ElementTree, which escaped every string in it.
        "plots": [{"id": p.id, "heading": p.heading, "caption": p.caption, "svg": Markup(p.svg)}
                  for p in recordplots.record_plots(record)],
        "heatmap": Markup(recordplots.record_heatmap(record, label)),
        "colour_bar": Markup(heatmap.alpha_colour_bar()),
    }


def link_from_index(submission) -> str:
    """The page's address relative to site/index.html."""
    return str(PurePosixPath(*submission.page.parts[1:]))
