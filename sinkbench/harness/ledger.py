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
    """One request's sink statistics, over its own queries (those after the condition's fixed start)."""

    alpha: torch.Tensor  # (L, H): mean attention to the sequence's first token
    first_k_mass: torch.Tensor  # (K,): mean over layers, heads and queries of the mass on keys 0..k-1
    text_start: torch.Tensor | None  # (L, H): mean attention to the text's own first token (after head and prefix)
    n_tokens: int  # length of the sequence the model saw
    first_token_id: int


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
            alpha_mean=alpha.mean().item(),
            alpha_by_layer=[round(v, 6) for v in stats.alpha.mean(-1).tolist()],
            sink_rate=metrics.sink_rates(alpha, self.eps),
            first_k_mass=[round(v, 6) for v in stats.first_k_mass.tolist()],
        )
        if stats.text_start is not None:
            row["text_start_by_layer"] = [round(v, 6) for v in stats.text_start.mean(-1).tolist()]
        return row

    def merge(self, others: list[dict[RequestKey, RequestStats]]) -> None:
        """Union of the entries of all ranks. Keys make it exact: a request padded onto two
        ranks (lm-eval repeats the last request to even out ranks) counts once."""
        for entries in others:
            self.entries.update(entries)

    def summary(self) -> dict:
        """Per task: request count, mean alpha, alpha by layer, sink rate per eps, first-k mass,
        text-start attention by layer, mean and longest sequence."""
        by_task: dict[str, list[RequestStats]] = {}
        for key, stats in self.entries.items():
            by_task.setdefault(key[0], []).append(stats)
        out = {}
        for task, rows in sorted(by_task.items()):
            alphas = torch.stack([r.alpha for r in rows])  # (N, L, H)
            starts = [r.text_start for r in rows if r.text_start is not None]
            out[task] = {
                "n_requests": len(rows),
                "alpha_mean": alphas.mean().item(),
                "alpha_by_layer": alphas.mean(dim=(0, 2)).tolist(),
                "text_start_by_layer": torch.stack(starts).mean(dim=(0, 2)).tolist() if len(starts) == len(rows) else None,
                "sink_rate": metrics.sink_rates(alphas, self.eps),
                "first_k_mass": torch.stack([r.first_k_mass for r in rows]).mean(0).tolist(),
                "mean_tokens": sum(r.n_tokens for r in rows) / len(rows),
                "max_tokens": max(r.n_tokens for r in rows),
            }
        return out
