"""The per-example link between sink mass and correctness, from the scoring passes themselves.

For one accuracy task under one condition: each document has a correctness (0/1, lm-eval's
per-sample `acc`) and the attention its requests gave the first token (mean alpha over the
document's requests, from the same forward passes). We report accuracy by quartile of that
attention and the point-biserial correlation (Pearson's r between the 0/1 outcome and alpha)
with its percentile bootstrap interval over documents (sinkbench.record.stats: its resampler, level
and minimum sample).
"""

from __future__ import annotations

import numpy as np

from sinkbench.record import stats

METHOD = f"percentile bootstrap over documents ({stats.N_BOOTSTRAP} resamples, seeded)"


def point_biserial(correct: np.ndarray, alpha: np.ndarray) -> float | None:
    """Pearson's r of a 0/1 outcome and a continuous value; None when either is constant."""
    if correct.std() == 0 or alpha.std() == 0:
        return None
    return float(np.corrcoef(correct, alpha)[0, 1])


def quartiles(correct: np.ndarray, alpha: np.ndarray) -> list[dict]:
    """Documents sorted by alpha (ties by input order) and cut into four near-equal groups."""
    order = np.argsort(alpha, kind="stable")
    groups = []
    for number, part in enumerate(np.array_split(order, 4), start=1):
        if len(part) == 0:
            continue
        groups.append({
            "quartile": number,
            "n": int(len(part)),
            "alpha_low": float(alpha[part].min()),
            "alpha_high": float(alpha[part].max()),
            "accuracy": float(correct[part].mean()),
        })
    return groups


def resampled_correlations(correct: np.ndarray, alpha: np.ndarray, seed: int) -> np.ndarray:
    """(N_BOOTSTRAP,) Pearson's r at each resample of the documents; NaN where a side is constant."""
    picks = stats.Resampler(stats.seed_for(seed, "link")).indices("documents", len(correct))  # (B, n)
    c, a = correct[picks], alpha[picks]
    c, a = c - c.mean(axis=1, keepdims=True), a - a.mean(axis=1, keepdims=True)
    spread = np.sqrt((c * c).sum(axis=1) * (a * a).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, (c * a).sum(axis=1) / spread, np.nan)


def sink_correctness_link(correct_by_doc: dict[int, float], alpha_by_doc: dict[int, float], seed: int = 0) -> dict:
    """The link for one task and condition; documents present in both maps count."""
    docs = sorted(set(correct_by_doc) & set(alpha_by_doc))
    correct = np.array([correct_by_doc[d] for d in docs], dtype=float)
    alpha = np.array([alpha_by_doc[d] for d in docs], dtype=float)
    result = {"n": len(docs), "quartiles": quartiles(correct, alpha) if docs else [],
              "point_biserial": None, "ci_low": None, "ci_high": None, "n_bootstrap": 0, "note": None}
    if len(docs) < 4:
        result["note"] = f"only {len(docs)} documents: too few for a correlation"
        return result
    r = point_biserial(correct, alpha)
    if r is None:
        which = "correctness" if correct.std() == 0 else "first-token attention"
        result["note"] = f"{which} is the same for every document: no correlation"
        return result
    replicates = resampled_correlations(correct, alpha, seed)
    interval = stats.from_replicates(r, replicates, METHOD, len(docs))
    used = int(np.isfinite(replicates).sum()) if interval["ci_low"] is not None else 0
    result.update(point_biserial=r, ci_low=interval["ci_low"], ci_high=interval["ci_high"], n_bootstrap=used,
                  note=interval["note"])
    return result
