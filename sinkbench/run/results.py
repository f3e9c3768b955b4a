"""One condition's results as sinkbench keeps them: lm-eval's scores, the sink metrics and the link.

`condition_document()` turns what lm-eval returned (and the backend's ledger of per-request sink
statistics) into the document `sinkbench run` saves per condition; `record_entry()` picks the
record's part of it. Metric keys like "acc,none" are taken apart here, once.
"""

from __future__ import annotations

import math

from sinkbench.record.link import sink_correctness_link

FORMAT = "sinkbench.condition/1"
LM_EVAL_KEYS = ("results", "n-samples", "higher_is_better", "versions", "n-shot", "config")
RECORD_KEYS = ("name", "spec", "tasks", "identical_to", "scores", "sinks", "first_tokens", "tokens_processed",
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
    for key, sinks in entries.items():
        if key[0] == task:
            sums.setdefault(int(key[1]), []).append(float(sinks.alpha.float().mean()))
    return {doc: sum(values) / len(values) for doc, values in sums.items()}


def condition_document(*, condition, tasks, result: dict, lm, primary: dict[str, str], wall_time_s: float,
                       seed: int) -> dict:
    """The saved form of one computed condition. `primary` maps accuracy tasks to their 0/1 metric."""
    results = result.get("results") or {}
    n_samples = result.get("n-samples") or {}
    entries = lm.ledger.entries
    link = {}
    for task, metric in primary.items():
        samples = (result.get("samples") or {}).get(task)
        if samples:
            link[task] = {"metric": metric, **sink_correctness_link(
                per_document_correct(samples, metric), per_document_alpha(entries, task), seed=seed)}
    tokenizer = lm.tokenizer
    return {
        "format": FORMAT,
        "name": condition.name,
        "spec": condition.to_dict(),
        "tasks": list(tasks),
        "identical_to": None,
        "scores": {task: task_scores(results[task], n_samples.get(task, {}).get("effective", 0))
                   for task in tasks if task in results},
        "sinks": lm.ledger.summary(),
        "first_tokens": [{"id": int(tid), "token": tokenizer.decode([tid])[:64], "count": int(count)}
                         for tid, count in lm.ledger.first_tokens.most_common(16)],
        "tokens_processed": int(sum(sinks.n_tokens for sinks in entries.values())),
        "truncated_requests": int(lm.truncated_requests),
        "wall_time_s": round(wall_time_s, 1),
        "link": link,
        "model": lm.identity.to_dict(),
        "lm_eval": {key: result.get(key) for key in LM_EVAL_KEYS},
    }


def identical_document(condition, tasks, twin: dict) -> dict:
    """A condition that sees exactly the token sequences of `twin`: its numbers, computed once."""
    keep = set(tasks)
    return {
        "format": FORMAT,
        "name": condition.name,
        "spec": condition.to_dict(),
        "tasks": list(tasks),
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
