"""`sinkbench export --model-index RECORD`: the summary columns as Hugging Face model-card `model-index` YAML.

Paste the output into the YAML block at the top of a model's README.md. The layout is the Hub's
(hub-docs modelcard.md): one result whose task is text generation, whose dataset names the
sinkbench suite and version, and one metric per summary column that has a value. Written with
yaml.safe_dump, so a model name with quotes, colons or newlines stays one YAML string.
"""

from __future__ import annotations

import yaml

from sinkbench.record.columns import COLUMNS


def model_index(record: dict, name: str | None = None) -> dict:
    """The `model-index` mapping for a record; `name` overrides the model's name (e.g. its Hub id)."""
    suite = record["provenance"]["suite"]
    metrics = []
    for column in COLUMNS:
        entry = record["summary"][column.name]
        if entry["value"] is None or entry["by_construction"]:
            continue  # 0 by construction is not a measurement: it would read as robustness on a model page
        value = entry["value"]
        metrics.append({"type": column.name, "name": column.title, "value": round(value, 6), "verified": False})
    return {"model-index": [{
        "name": name or record["model"]["name"],
        "results": [{
            "task": {"type": "text-generation", "name": "Attention-sink dependence"},
            "dataset": {"type": f"sinkbench-{suite['name']}", "name": f"sinkbench {suite['name']} {suite['version']}",
                        "config": suite["name"], "revision": suite["version"]},
            "metrics": metrics,
        }],
    }]}


def model_index_yaml(record: dict, name: str | None = None) -> str:
    return yaml.safe_dump(model_index(record, name), sort_keys=False, allow_unicode=True, default_flow_style=False,
                          width=1000)
