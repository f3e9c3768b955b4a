"""A record as a short text report for the terminal: one line per condition, then the summary columns."""

from __future__ import annotations

import math

from sinkbench.record.columns import COLUMNS, accuracy_tasks


def condition_score(condition: dict, tasks: dict[str, str]) -> tuple[float | None, float | None]:
    """Suite score of one condition (mean primary metric) and its standard error (tasks independent)."""
    entries = [condition["scores"][t][m] for t, m in tasks.items() if m in condition["scores"].get(t, {})]
    values = [e["value"] for e in entries]
    if not entries or None in values:
        return None, None
    errors = [e["stderr"] for e in entries]
    stderr = None if None in errors else math.sqrt(sum(e * e for e in errors)) / len(errors)
    return sum(values) / len(values), stderr


def _sinks(condition: dict) -> tuple[float | None, dict]:
    """Request-weighted mean alpha and sink rates over the condition's tasks."""
    parts = list(condition["sinks"].values())
    total = sum(p["n_requests"] for p in parts)
    if not total:
        return None, {}
    alpha = sum(p["alpha_mean"] * p["n_requests"] for p in parts) / total
    rates = {eps: sum(p["sink_rate"][eps] * p["n_requests"] for p in parts) / total for eps in parts[0]["sink_rate"]}
    return alpha, rates


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def render_record(record: dict) -> str:
    tasks = accuracy_tasks(record)
    model = record["model"]
    lines = [f"{model['name']} ({model['architecture']}, {model['n_parameters'] / 1e6:.0f}M parameters, "
             f"tokenizer adds <bos>: {'yes' if model['adds_bos'] else 'no'}); suite "
             f"{record['provenance']['suite']['name']} {record['provenance']['suite']['version']}",
             "",
             f"{'condition':34} {'suite score':>15} {'alpha':>6} {'sink@0.3':>8} {'sink@0.8':>8} {'time':>6}"]
    for condition in record["conditions"]:
        value, stderr = condition_score(condition, tasks)
        score = "-" if value is None else f"{value:.3f}" + (f" ± {stderr:.3f}" if stderr is not None else "")
        alpha, rates = _sinks(condition)
        time = "same as " + condition["identical_to"] if condition["identical_to"] else f"{condition['wall_time_s']:.0f} s"
        lines.append(f"{condition['name']:34} {score:>15} {_fmt(alpha):>6} {_fmt(rates.get('0.3')):>8} "
                     f"{_fmt(rates.get('0.8')):>8} {time:>6}")
    lines += ["", "summary columns:"]
    for column in COLUMNS:
        entry = record["summary"][column.name]
        note = f"  ({entry['note']})" if entry["note"] else ""
        lines.append(f"  {column.title:28} {_fmt(entry['value']):>10}{note}")
    if record["status"] == "partial":
        lines += ["", "PARTIAL record: " + " | ".join(record["missing"])]
    return "\n".join(lines)
