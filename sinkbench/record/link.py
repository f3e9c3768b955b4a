"""The per-example link between sink mass and correctness, from the scoring passes themselves.

For one accuracy task under one condition: each document has a correctness (0/1, lm-eval's
per-sample `acc`) and the attention its requests gave the first token (mean alpha over the
document's requests, from the same forward passes). We report accuracy by quartile of that
attention and the point-biserial correlation (Pearson's r between the 0/1 outcome and alpha)
with a percentile bootstrap interval over documents.
"""

from __future__ import annotations

import numpy as np

N_BOOTSTRAP = 1000
CONFIDENCE = 0.95


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


def bootstrap_interval(correct: np.ndarray, alpha: np.ndarray, seed: int, n_bootstrap: int = N_BOOTSTRAP):
    """Percentile interval of r over resampled documents; resamples with a constant side are skipped."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_bootstrap):
        pick = rng.integers(0, len(correct), len(correct))
        r = point_biserial(correct[pick], alpha[pick])
        if r is not None:
            values.append(r)
    if len(values) < n_bootstrap // 2:
        return None, None, len(values)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high), len(values)


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
    low, high, used = bootstrap_interval(correct, alpha, seed)
    result.update(point_biserial=r, ci_low=low, ci_high=high, n_bootstrap=used)
    if low is None:
        result["note"] = "too few bootstrap resamples varied on both sides for an interval"
    return result
