"""One condition's results as sinkbench keeps them: every document's outcome, the scores with intervals, the sinks.

`condition_document()` turns what lm-eval returned (its per-document samples) and the backend's
statistics of the same passes into the document `sinkbench run` saves per condition;
`SavedCondition.record_part()` is the record's part of it. Scores are recomputed here from the documents'
own outcomes (the aggregate lm-eval reports is the same number), with intervals from
sinkbench.record.stats; metric keys like "acc,none" never leave this module.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from sinkbench.grid.suite import GridCell
from sinkbench.harness.backend import ConditionStatistics
from sinkbench.record import stats
from sinkbench.record.link import sink_correctness_link
from sinkbench.record.format import finite
from sinkbench.record.scores import PERPLEXITY, WEIGHTED, metric_estimate
from sinkbench.record.types import Condition, Documents, Estimate, FirstToken, Link, Outcome, TaskSinks

FORMAT = "sinkbench.condition/2"
LM_EVAL_KEYS = ("n-samples", "higher_is_better", "versions", "n-shot")


@dataclass
class SavedCondition(Condition):
    """What `sinkbench run` saves per condition (`<slug>.json`): the record's part, and what the record is assembled
    from (each task's documents, the model's identity, lm-eval's metadata)."""

    format: str = FORMAT
    documents: dict[str, Documents] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    lm_eval: dict[str, Any] = field(default_factory=dict)

    def record_part(self) -> Condition:
        """The condition as the record keeps it."""
        return Condition(**{f.name: getattr(self, f.name) for f in fields(Condition)})


def document_hash(arguments) -> str:
    """A short content hash of a document as the model saw it: its requests' text, without head or prefix."""
    text = json.dumps([list(a) for a in arguments], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def documents(samples: list[dict]) -> dict:
    """The task's document list from lm-eval's samples: ids, hashes, and (perplexity tasks) words and bytes."""
    ordered = sorted(samples, key=lambda s: int(s["doc_id"]))
    words = [s["word_perplexity"][1] for s in ordered] if ordered and "word_perplexity" in ordered[0] else None
    size = next((name for name in ("byte_perplexity", "bits_per_byte") if ordered and name in ordered[0]), None)
    return {"ids": [int(s["doc_id"]) for s in ordered], "hashes": [document_hash(s["arguments"]) for s in ordered],
            "words": words, "bytes": [s[size][1] for s in ordered] if size else None}


def _document_means(entries: dict, task: str, field: str) -> dict[int, float | None]:
    """Per document: the mean over its requests of a request statistic's mean (alpha, text_start)
    over the layers where it is defined; None for a document where it is defined nowhere (its
    queries cannot see the key in any layer: a long prefix under sliding windows only)."""
    sums: dict[int, list[float]] = {}
    seen: set[int] = set()
    for key, request in entries.items():
        value = getattr(request, field)
        if key[0] == task and value is not None:
            seen.add(int(key[1]))
            mean = float(torch.nanmean(value.float())) if not bool(torch.isnan(value).all()) else None
            if mean is not None:
                sums.setdefault(int(key[1]), []).append(mean)
    return {doc: (sum(sums[doc]) / len(sums[doc]) if doc in sums else None) for doc in seen}


def task_outcomes(task: str, samples: list[dict], entries: dict, text_start: bool, seed: int) -> tuple[dict, dict]:
    """(scores, outcomes) of one task under one condition from lm-eval's per-document samples."""
    ordered = sorted(samples, key=lambda s: int(s["doc_id"]))
    ids = [int(s["doc_id"]) for s in ordered]
    metrics = [m for m in ordered[0]["metrics"]] if ordered else []
    outcomes: dict = {"n": len(ordered)}
    scores = {}
    loglik = sizes = None
    for metric in metrics:
        raw = [s[metric] for s in ordered]
        values = sizes = None
        if metric in WEIGHTED:  # lm-eval's per-document (log-likelihood, words or bytes)
            loglik = np.array([r[0] for r in raw], dtype=float)
            sizes = np.array([r[1] for r in raw], dtype=float)
        elif metric == PERPLEXITY:
            loglik = np.array(raw, dtype=float)
        else:
            values = np.array(raw, dtype=float)
            outcomes[metric] = [int(v) if v in (0.0, 1.0) else round(float(v), 6) for v in values]
        if loglik is not None and values is None:
            loglik = np.round(loglik, 6)  # as the record keeps them, so the score is what they give
        scores[metric] = metric_estimate(metric, values, loglik, sizes, stats.seed_for(seed, task, metric))
    if loglik is not None:
        outcomes["loglik"] = [round(float(v), 6) for v in loglik]
    for field, present in (("alpha", True), ("text_start", text_start)):
        if present:
            by_doc = _document_means(entries, task, field)
            if set(by_doc) != set(ids):
                raise RuntimeError(f"{task}: sink statistics for {len(by_doc)} documents, {len(ids)} scored")
            outcomes[field] = [None if by_doc[d] is None else round(by_doc[d], 6) for d in ids]
    return scores, outcomes


def condition_document(*, cell: GridCell, result: dict, statistics: ConditionStatistics, primary: dict[str, str],
                       wall_time_s: float, seed: int, skipped: dict[str, str]) -> SavedCondition:
    """The saved form of one computed condition. `primary` maps accuracy tasks to their 0/1 metric."""
    samples_by_task = result.get("samples") or {}
    entries = statistics.ledger.entries
    text_start = len(statistics.head) + (len(statistics.stress.token_ids) if statistics.stress else 0) > 0
    scores, outcomes, lists, link = {}, {}, {}, {}
    for task in cell.tasks:
        samples = samples_by_task.get(task)
        if task in skipped or not samples:
            continue
        scores[task], outcomes[task] = task_outcomes(task, samples, entries, text_start, seed)
        lists[task] = documents(samples)
        if task in primary:
            ids = lists[task]["ids"]
            correct = dict(zip(ids, outcomes[task][primary[task]]))
            link[task] = {"metric": primary[task],
                          **sink_correctness_link(correct, {d: a for d, a in zip(ids, outcomes[task]["alpha"]) if a is not None},
                                                  seed=seed)}
    return SavedCondition(
        name=cell.condition.name, role=cell.role, spec=cell.condition, tasks=list(cell.tasks), identical_to=None,
        skipped=dict(skipped),
        scores={t: {m: Estimate.from_json(finite(e), f"scores.{t}.{m}") for m, e in by.items()} for t, by in scores.items()},
        outcomes={t: Outcome.from_json(finite(o), f"outcomes.{t}") for t, o in outcomes.items()},
        sinks={t: TaskSinks.from_json(finite(v), f"sinks.{t}") for t, v in statistics.ledger.summary().items()},
        first_tokens=first_tokens(statistics.ledger.first_tokens, statistics.tokenizer),
        tokens_processed=statistics.tokens_processed, truncated_requests=statistics.counts.truncated,
        wall_time_s=round(wall_time_s, 1), link={t: Link.from_json(finite(v), f"link.{t}") for t, v in link.items()},
        documents={t: Documents(**d) for t, d in lists.items()}, model=statistics.identity.to_dict(),
        lm_eval={key: result.get(key) for key in LM_EVAL_KEYS},
    )


def skipped_document(cell: GridCell, skipped: dict[str, str], model: dict) -> SavedCondition:
    """A condition none of whose tasks could run (a stress prefix beyond the model's context); with no tasks
    skipped, the placeholder a rank other than 0 keeps of a condition rank 0 computed (what decides twins)."""
    return SavedCondition(name=cell.condition.name, role=cell.role, spec=cell.condition, tasks=list(cell.tasks),
                          identical_to=None, skipped=dict(skipped), scores={}, outcomes={}, sinks={}, first_tokens=[],
                          tokens_processed=0, truncated_requests=0, wall_time_s=0.0, link={}, model=model)


def first_tokens(counts, tokenizer, top: int = 16) -> list[FirstToken]:
    """The most frequent first tokens, most frequent first, ties by id (the same counts always read the same)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [FirstToken(int(tid), tokenizer.decode([tid])[:64], int(count)) for tid, count in ranked]


def identical_document(cell: GridCell, twin: SavedCondition) -> SavedCondition:
    """A condition that sees exactly the token sequences of `twin`: its numbers, computed once."""
    same = twin.identical(cell.condition.name, cell.role, cell.condition, list(cell.tasks))
    keep = set(cell.tasks)
    return SavedCondition(**vars(same), documents={t: v for t, v in twin.documents.items() if t in keep},
                          model=twin.model, lm_eval=twin.lm_eval)
