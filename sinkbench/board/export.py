"""`sinkbench export --model-index RECORD`: the summary columns as Hugging Face model-card `model-index` YAML.

Paste the output into the YAML block at the top of a model's README.md. The layout is the Hub's
(hub-docs modelcard.md; huggingface_hub's EvalResult): one result whose task is text generation,
whose dataset names the sinkbench suite and version, and one metric per measured column of the
model. The format has no field for uncertainty; a metric's free-form `args` mapping is the only
place it keeps, so the standard error, the 95% interval and n travel there. Left out: machine
facts (throughput, wall time: they describe the device) and any value that is 0 by construction.
Written with yaml.safe_dump, so a model name with quotes, colons or newlines stays one string.
"""

from __future__ import annotations

import yaml

from sinkbench.record import stats
from sinkbench.record.columns import COLUMNS, MODEL
from sinkbench.record.types import Record, SummaryValue, as_record


def _uncertainty(entry: SummaryValue) -> dict | None:
    """The estimate's stderr, 95% interval and n, where it has them."""
    args = {key: round(getattr(entry, key), 6) for key in ("stderr", "ci_low", "ci_high") if getattr(entry, key) is not None}
    if not args:
        return None
    return {**args, "n": entry.n, "confidence": stats.CONFIDENCE}


def model_index(record: Record | dict, name: str | None = None) -> dict:
    """The `model-index` mapping for a record (or its JSON form); `name` overrides the model's name (e.g. its Hub id)."""
    record = as_record(record)
    suite = record.provenance.suite
    metrics = []
    for column in COLUMNS:
        entry = record.summary[column.name]
        if column.kind != MODEL or entry.value is None or entry.by_construction:
            continue  # a machine fact, or 0 by construction: neither describes the model
        metric = {"type": column.name, "name": column.title, "value": round(entry.value, 6)}
        uncertainty = _uncertainty(entry)
        if uncertainty:
            metric["args"] = uncertainty
        metrics.append({**metric, "verified": False})
    return {"model-index": [{
        "name": name or record.model.name,
        "results": [{
            "task": {"type": "text-generation", "name": "Attention-sink dependence"},
            "dataset": {"type": f"sinkbench-{suite.name}", "name": f"sinkbench {suite.name} {suite.version}",
                        "config": suite.name, "revision": suite.version},
            "metrics": metrics,
        }],
    }]}


def model_index_yaml(record: Record | dict, name: str | None = None) -> str:
    return yaml.safe_dump(model_index(record, name), sort_keys=False, allow_unicode=True, default_flow_style=False,
                          width=1000)
