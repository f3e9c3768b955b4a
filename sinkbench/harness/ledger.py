"""Per-request sink statistics from the evaluation's own forward passes: sidecar rows, rank merge, task summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sinkbench.grid.suite import DEFAULT_EPS
from sinkbench.measure import metrics

RequestKey = tuple  # (task, doc_id, request index[, rolling window index])


@dataclass
class RequestStats:
    """One request's sink statistics, over its own queries (those after the condition's fixed start).

    Attention to a key is averaged over the queries that can see it in that layer; NaN in a layer
    where none can (a sliding window or chunk past it, or no softmax attention).
    """

    alpha: torch.Tensor  # (L, H): mean attention to the sequence's first token
    first_k_mass: torch.Tensor  # (K,): mean over defined layers and heads of the mass on keys 0..k-1
    text_start: torch.Tensor | None  # (L, H): mean attention to the text's own first token (after head and prefix)
    n_tokens: int  # length of the sequence the model saw
    first_token_id: int
    seeing_first: torch.Tensor | None = None  # (L,): how many of the request's queries could see the first token

    @property
    def alpha_mean(self) -> float:
        """Mean over the layers (and heads) where alpha is defined; NaN if it is nowhere."""
        return metrics.mean_defined(self.alpha, (0, 1)).item()


@dataclass
class SinkLedger:
    """Collects RequestStats by key; writes each to a JSONL sidecar as soon as it exists."""

    condition: str
    eps: tuple[float, ...] = DEFAULT_EPS
    sidecar: Path | None = None
    entries: dict[RequestKey, RequestStats] = field(default_factory=dict)
    first_tokens: Counter = field(default_factory=Counter)

    def add(self, key: RequestKey | None, stats: RequestStats) -> None:
        self.first_tokens[stats.first_token_id] += 1
        if key is None:
            return
        self.entries[key] = stats
        if self.sidecar is not None:
            with open(self.sidecar, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(self.sidecar_row(key, stats)) + "\n")

    def sidecar_row(self, key: RequestKey, stats: RequestStats) -> dict:
        alpha = stats.alpha.unsqueeze(0)
        row = {"task": key[0], "doc_id": key[1], "request_index": key[2]}
        if len(key) > 3:
            row["window_index"] = key[3]
        row.update(
            condition=self.condition,
            n_tokens=stats.n_tokens,
            first_token_id=stats.first_token_id,
            alpha_mean=_defined(stats.alpha_mean),
            alpha_by_layer=metrics.listed(metrics.mean_defined(stats.alpha, -1), 6),
            sink_rate={eps: _defined(rate) for eps, rate in metrics.sink_rates(alpha, self.eps).items()},
            first_k_mass=metrics.listed(stats.first_k_mass, 6),
        )
        if stats.seeing_first is not None:
            row["queries_seeing_first_by_layer"] = [int(v) for v in stats.seeing_first.tolist()]
        if stats.text_start is not None:
            row["text_start_by_layer"] = metrics.listed(metrics.mean_defined(stats.text_start, -1), 6)
        return row

    def merge(self, others: list[dict[RequestKey, RequestStats]]) -> None:
        """Union of the entries of all ranks. Keys make it exact: a request padded onto two
        ranks (lm-eval repeats the last request to even out ranks) counts once."""
        for entries in others:
            self.entries.update(entries)

    def summary(self) -> dict:
        """Per task: request count, mean alpha, alpha by layer, sink rate per eps, first-k mass,
        text-start attention by layer, queries that could see the first token by layer, mean and
        longest sequence. Every mean runs over what is defined: a request's mean alpha over its layers
        where alpha is, a layer's over the requests where it is; null where nothing is."""
        by_task: dict[str, list[RequestStats]] = {}
        for key, stats in self.entries.items():
            by_task.setdefault(key[0], []).append(stats)
        out = {}
        for task, rows in sorted(by_task.items()):
            alphas = torch.stack([r.alpha for r in rows])  # (N, L, H)
            starts = [r.text_start for r in rows if r.text_start is not None]
            seeing = [r.seeing_first for r in rows if r.seeing_first is not None]
            out[task] = {
                "n_requests": len(rows),
                "alpha_mean": _defined(metrics.mean_defined(metrics.mean_defined(alphas, (1, 2)), 0).item()),
                "alpha_by_layer": metrics.listed(metrics.mean_defined(alphas, (0, 2))),
                "text_start_by_layer": (metrics.listed(metrics.mean_defined(torch.stack(starts), (0, 2)))
                                        if len(starts) == len(rows) else None),
                "queries_seeing_first_by_layer": ([int(v) for v in torch.stack(seeing).sum(0).tolist()]
                                                  if len(seeing) == len(rows) else None),
                "sink_rate": {eps: _defined(rate) for eps, rate in metrics.sink_rates(alphas, self.eps).items()},
                "first_k_mass": metrics.listed(metrics.mean_defined(torch.stack([r.first_k_mass for r in rows]), 0)),
                "mean_tokens": sum(r.n_tokens for r in rows) / len(rows),
                "max_tokens": max(r.n_tokens for r in rows),
            }
        return out


def _defined(value: float) -> float | None:
    """NaN (nothing to average) as None, for JSON."""
    return None if value != value else value
