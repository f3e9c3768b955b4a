"""One condition's results as sinkbench keeps them: lm-eval's scores, the sink metrics and the link.

`condition_document()` turns what lm-eval returned (and the backend's statistics of the same
passes) into the document `sinkbench run` saves per condition; `record_entry()` picks the
record's part of it. Metric keys like "acc,none" are taken apart here, once.
"""

from __future__ import annotations

import math

from sinkbench.grid.suite import GridCell
from sinkbench.harness.backend import ConditionStatistics
from sinkbench.record.link import sink_correctness_link

FORMAT = "sinkbench.condition/1"
LM_EVAL_KEYS = ("results", "n-samples", "higher_is_better", "versions", "n-shot", "config")
RECORD_KEYS = ("name", "role", "spec", "tasks", "identical_to", "scores", "sinks", "first_tokens", "tokens_processed",
               "truncated_requests", "wall_time_s", "link")


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def task_scores(metrics: dict, n_docs: int) -> dict[str, dict]:
    """{"acc,none": 0.5, "acc_stderr,none": 0.1, ...} -> {"acc": {"value", "stderr", "n", "note"}}."""
    scores = {}
    for key, raw in metrics.items():
        name, _, filter_name = key.partition(",")
        if not filter_name or name.endswith("_stderr"):
            continue  # "alias", "name", and the stderr entries read below
        value, stderr = _number(raw), _number(metrics.get(f"{name}_stderr,{filter_name}"))
        notes = []
        if value is None:
            notes.append(f"lm-eval gave {raw!r}")
        if stderr is None:
            notes.append(f"no standard error (lm-eval gave {metrics.get(f'{name}_stderr,{filter_name}')!r})")
        scores[name] = {"value": value, "stderr": stderr, "n": int(n_docs), "note": "; ".join(notes) or None}
    return scores


def per_document_correct(samples: list[dict], metric: str) -> dict[int, float]:
    return {int(s["doc_id"]): float(s[metric]) for s in samples if metric in s}


def per_document_alpha(entries: dict, task: str) -> dict[int, float]:
    """Mean over a document's requests of their mean attention to the first token."""
    sums: dict[int, list[float]] = {}
    for key, stats in entries.items():
        if key[0] == task:
            sums.setdefault(int(key[1]), []).append(float(stats.alpha.float().mean()))
    return {doc: sum(values) / len(values) for doc, values in sums.items()}


def first_tokens(counts, tokenizer, top: int = 16) -> list[dict]:
    """The most frequent first tokens, most frequent first, ties by id (the same counts always read the same)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [{"id": int(tid), "token": tokenizer.decode([tid])[:64], "count": int(count)} for tid, count in ranked]


def condition_document(*, cell: GridCell, result: dict, statistics: ConditionStatistics, primary: dict[str, str],
                       wall_time_s: float, seed: int) -> dict:
    """The saved form of one computed condition. `primary` maps accuracy tasks to their 0/1 metric."""
    results = result.get("results") or {}
    n_samples = result.get("n-samples") or {}
    entries = statistics.ledger.entries
    link = {}
    for task, metric in primary.items():
        samples = (result.get("samples") or {}).get(task)
        if samples:
            link[task] = {"metric": metric, **sink_correctness_link(
                per_document_correct(samples, metric), per_document_alpha(entries, task), seed=seed)}
    tokenizer = statistics.tokenizer
    return {
        "format": FORMAT,
        "name": cell.condition.name,
        "role": cell.role,
        "spec": cell.condition.to_dict(),
        "tasks": list(cell.tasks),
        "identical_to": None,
        "scores": {task: task_scores(results[task], n_samples.get(task, {}).get("effective", 0))
                   for task in cell.tasks if task in results},
        "sinks": statistics.ledger.summary(),
        "first_tokens": first_tokens(statistics.ledger.first_tokens, tokenizer),
        "tokens_processed": statistics.tokens_processed,
        "truncated_requests": statistics.counts.truncated,
        "wall_time_s": round(wall_time_s, 1),
        "link": link,
        "model": statistics.identity.to_dict(),
        "lm_eval": {key: result.get(key) for key in LM_EVAL_KEYS},
    }


def identical_document(cell: GridCell, twin: dict) -> dict:
    """A condition that sees exactly the token sequences of `twin`: its numbers, computed once."""
    keep = set(cell.tasks)
    return {
        "format": FORMAT,
        "name": cell.condition.name,
        "role": cell.role,
        "spec": cell.condition.to_dict(),
        "tasks": list(cell.tasks),
        "identical_to": twin["name"],
        **{part: {t: v for t, v in twin[part].items() if t in keep} for part in ("scores", "sinks", "link")},
        "first_tokens": twin["first_tokens"],
        "tokens_processed": twin["tokens_processed"],
        "truncated_requests": twin["truncated_requests"],
        "wall_time_s": 0.0,
        "model": twin["model"],
    }


def record_entry(document: dict) -> dict:
    return {key: document[key] for key in RECORD_KEYS}
