"""Reading a record: conditions by role, tasks by kind, and each document's outcome as aligned arrays.

Everything here reads a typed record (sinkbench.record.types.Record). A record keeps, per task, one document list (`tasks[t].documents`: ids and content hashes) and,
per condition, each document's outcome in that order (`outcomes[t]`): a condition that ran fewer
documents (the stress-prefix sweep runs a slice) holds the first n. Everything that compares
conditions reads them here, on the documents both ran. Torch-free.
"""

from __future__ import annotations

import numpy as np

from sinkbench.grid.catalog import ACCURACY, PERPLEXITY, RETRIEVAL
from sinkbench.grid.conditions import BASELINE, PREFIX
from sinkbench.record.types import Condition, Record


class Missing(Exception):
    """A number cannot be computed from this record; the message is the reason."""


def conditions_of(record: Record, role: str) -> list[Condition]:
    """The record's computed conditions that play `role` (sinkbench.grid.conditions), in the record's order."""
    return [c for c in record.conditions if c.role == role and not c.skipped_whole]


def find_condition(record: Record, role: str) -> Condition:
    """The condition playing `role`; of several (the prefix sweep), the one with the longest stress prefix."""
    found = conditions_of(record, role)
    if not found:
        raise Missing(f"no {role.replace('_', ' ')} condition in the record")
    return max(found, key=lambda c: c.spec.prefix_length)


def tasks_of_kind(record: Record, kind: str) -> dict[str, str]:
    """task -> primary metric, for the record's tasks of one kind (accuracy, perplexity, retrieval)."""
    return {name: task.primary_metric for name, task in record.tasks.items() if task.kind == kind}


def accuracy_tasks(record: Record) -> dict[str, str]:
    return tasks_of_kind(record, ACCURACY)


def n_documents(condition: Condition, task: str) -> int:
    """How many of the task's documents the condition scored (0: none)."""
    entry = condition.outcomes.get(task)
    return 0 if entry is None else entry.n


def outcome(condition: Condition, task: str, name: str, n: int | None = None) -> np.ndarray:
    """The per-document values `name` (acc, acc_norm, loglik, alpha, text_start) of the first n documents."""
    entry = condition.outcomes.get(task)
    listed = None if entry is None else entry.values(name)
    if listed is None:
        raise Missing(f"no per-document {name} for {task} under {condition.name}")
    values = np.asarray([np.nan if v is None else v for v in listed], dtype=float)
    if name in ("alpha", "text_start") and np.isnan(values[:n]).any():
        raise Missing(f"{task} under {condition.name}: documents whose queries could see the first token in no layer "
                      "(their first-token attention is undefined)")
    if n is not None:
        if n > len(values):
            raise Missing(f"{condition.name} scored {len(values)} documents of {task}, not {n}")
        values = values[:n]
    return values


def score(condition: Condition, task: str, metric: str) -> float:
    entry = condition.scores.get(task, {}).get(metric)
    if entry is None or entry.value is None:
        raise Missing(f"no {metric} for {task} under {condition.name}")
    return entry.value


def shared_tasks(record: Record, conditions: list[Condition], kind: str = ACCURACY) -> dict[str, tuple[str, int]]:
    """task -> (primary metric, documents all `conditions` scored), for tasks of `kind` they all ran."""
    shared = {}
    for task, metric in tasks_of_kind(record, kind).items():
        counts = [n_documents(c, task) for c in conditions]
        if all(counts):
            shared[task] = (metric, min(counts))
    return shared


def perplexity_documents(record: Record, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Words and bytes of each of the task's documents (the denominators of word and byte perplexity)."""
    documents = record.tasks[task].documents
    if documents.words is None:
        raise Missing(f"{task} has no per-document word counts")
    return np.asarray(documents.words, dtype=float), np.asarray(documents.bytes, dtype=float)


def word_perplexity(loglik: np.ndarray, words: np.ndarray) -> float:
    """exp(-sum ll / sum words); inf where exp overflows."""
    with np.errstate(over="ignore"):
        return float(np.exp(-loglik.sum() / words.sum()))


def prefix_sweep(record: Record) -> list[Condition]:
    """The baseline and the computed stress-prefix conditions, by prefix length."""
    sweep = conditions_of(record, BASELINE) + conditions_of(record, PREFIX)
    return sorted(sweep, key=lambda c: c.spec.prefix_length)


def retrieval_curve(record: Record, family: str = "passkey") -> list[tuple[int, str]]:
    """(length, task) of the retrieval tasks of a family the baseline scored, shortest first."""
    tasks = [(t.retrieval.length, name) for name, t in record.tasks.items()
             if t.kind == RETRIEVAL and t.retrieval.family == family]
    baseline = conditions_of(record, BASELINE)
    scored = [(length, name) for length, name in tasks if baseline and n_documents(baseline[0], name)]
    return sorted(scored)
