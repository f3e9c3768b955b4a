"""Intervals and tests for the numbers a record publishes: exact formulas where they are exact, the bootstrap where not.

Every estimate is a dict `{value, stderr, ci_low, ci_high, method, n, note}` (95% intervals); a
value without an interval has `ci_low = ci_high = None` and a note saying why.

* A mean of n 0/1 outcomes: stderr sqrt(p (1 - p) / n), Wilson score interval (good at small n
  and near 0 or 1, never outside [0, 1]).
* Columns that compare conditions (or records) on the same documents: a *paired* percentile
  bootstrap: documents are resampled once per stratum (task), and every condition is read at
  the same resampled documents. Seeded: the same record always gives the same interval.
* Power (Miller 2024, "Adding Error Bars to Evals"): the minimal detectable effect at 80% power
  and 5% two-sided is (z_0.975 + z_0.8) * stderr of the difference.
* McNemar's exact test for paired 0/1 outcomes: the discordant counts, binomial two-sided p.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
Z = float(sps.norm.ppf(0.5 + CONFIDENCE / 2))  # 1.959964
Z_POWER = float(sps.norm.ppf(0.80))  # 0.841621
MDE_FACTOR = Z + Z_POWER  # 2.801585: delta = (z_a/2 + z_b) * se
N_BOOTSTRAP = 2000
MIN_DEFINED = 0.9  # an interval needs the statistic defined in at least 90% of the resamples
MIN_BOOTSTRAP_ITEMS = 8  # fewer items in a stratum: no bootstrap interval (too few distinct resamples)

WILSON = "Wilson score interval; stderr sqrt(p(1-p)/n)"
NORMAL_TASKS = "normal approximation over tasks taken as independent: stderr sqrt(sum of task stderr^2) / tasks"
WILSON_TASKS = ("mean of the tasks' Wilson bounds (a task at 0 or 1, or under 30 documents, has no usable normal "
                "stderr); stderr sqrt(sum of task stderr^2) / tasks")
SMALL_TASK = 30  # documents below which a task's normal stderr is not trusted
PAIRED = f"paired percentile bootstrap over documents, stratified by task ({N_BOOTSTRAP} resamples, seeded)"
TEXTS = f"percentile bootstrap over texts ({N_BOOTSTRAP} resamples, seeded)"
SIMULTANEOUS = ("simultaneous 95% bounds: each length's Wilson interval at level 1 - 0.05/k (Bonferroni, k lengths), "
                "the definition read at its worst and its best within them")


def estimate(value, stderr=None, ci_low=None, ci_high=None, method="none", n=0, note=None) -> dict:
    def number(x):
        return None if x is None or not math.isfinite(x) else float(x)

    return {"value": number(value), "stderr": number(stderr), "ci_low": number(ci_low), "ci_high": number(ci_high),
            "method": method, "n": int(n), "note": note}


def wilson(successes: float, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a proportion successes / n."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def simultaneous_wilson(successes, ns, confidence: float = CONFIDENCE) -> list[tuple[float, float]]:
    """Wilson intervals for k proportions that hold all at once with probability >= `confidence`
    (Bonferroni: each at 1 - (1 - confidence) / k). Each interval holds its own estimate."""
    z = float(sps.norm.ppf(1 - (1 - confidence) / (2 * len(ns))))
    bounds = []
    for successes_i, n in zip(successes, ns):
        low, high = wilson(successes_i, n, z)
        bounds.append((min(low, successes_i / n), max(high, successes_i / n)))
    return bounds


def proportion(outcomes) -> dict:
    """A mean of 0/1 outcomes with its analytic stderr and Wilson interval."""
    outcomes = np.asarray(outcomes, dtype=float)
    n = len(outcomes)
    if n == 0:
        return estimate(None, n=0, note="no documents")
    p = float(outcomes.mean())
    low, high = wilson(p * n, n)
    return estimate(p, math.sqrt(p * (1 - p) / n), min(low, p), max(high, p), WILSON, n)


def mean_over_tasks(parts: list[dict]) -> dict:
    """The mean of task estimates (the suite score), stderr from the tasks' as if independent."""
    values = [p["value"] for p in parts]
    if not parts or None in values:
        return estimate(None, note="a task has no value")
    errors = [p["stderr"] for p in parts]
    value = sum(values) / len(values)
    n = sum(p["n"] for p in parts)
    if None in errors:
        return estimate(value, n=n, note="a task has no standard error")
    stderr = math.sqrt(sum(e * e for e in errors)) / len(errors)
    if any(p["value"] in (0.0, 1.0) or p["n"] < SMALL_TASK for p in parts):
        if any(p["ci_low"] is None for p in parts):
            return estimate(value, stderr, n=n, note="a task has no interval")
        low = sum(p["ci_low"] for p in parts) / len(parts)
        high = sum(p["ci_high"] for p in parts) / len(parts)
        return estimate(value, stderr, min(low, value), max(high, value), WILSON_TASKS, n)
    low, high = max(0.0, value - Z * stderr), min(1.0, value + Z * stderr)
    return estimate(value, stderr, low, high, NORMAL_TASKS, n)


def mde(stderr: float | None) -> float | None:
    """Minimal detectable effect at 80% power, 5% two-sided, for a difference with this stderr."""
    return None if stderr is None else MDE_FACTOR * stderr


def seed_for(*parts) -> int:
    """A stable seed from names (Python's hash() of a string changes per process)."""
    return zlib.crc32("|".join(map(str, parts)).encode())


class Resampler:
    """Bootstrap resamples of documents, shared by everything read through it (that is the pairing).

    Each stratum (a task, the profile's texts, ...) of n items gets one (N_BOOTSTRAP, n) index
    matrix, made on first use from the seed and the stratum's name: two conditions read at the same
    resample see the same documents, and the same record always resamples the same way.
    """

    def __init__(self, seed: int, n_resamples: int = N_BOOTSTRAP):
        self.seed = seed
        self.n_resamples = n_resamples
        self._indices: dict = {}

    def indices(self, stratum, n: int) -> np.ndarray:
        key = (stratum, n)
        if key not in self._indices:
            rng = np.random.default_rng([self.seed, seed_for(stratum), n])
            self._indices[key] = rng.integers(0, n, (self.n_resamples, n), dtype=np.int32)
        return self._indices[key]

    def means(self, stratum, values) -> np.ndarray:
        """(N_BOOTSTRAP,) means of `values` (aligned with the stratum's items) over the resamples."""
        values = np.asarray(values, dtype=float)
        return values[self.indices(stratum, len(values))].mean(axis=1)

    def sums(self, stratum, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return values[self.indices(stratum, len(values))].sum(axis=1)


class NoResampler(Resampler):
    """A resampler that makes no resample: every replicate undefined (values without a bootstrap)."""

    def __init__(self, seed: int = 0):
        super().__init__(seed, n_resamples=1)

    def means(self, stratum, values) -> np.ndarray:
        return np.full(1, np.nan)

    def sums(self, stratum, values) -> np.ndarray:
        return np.full(1, np.nan)


def from_replicates(value: float | None, replicates: np.ndarray, method: str, n: int, note: str | None = None) -> dict:
    """A percentile interval from bootstrap replicates (NaN where the statistic was undefined).
    `note` describes the value; why there is no interval is added to it."""

    def noted(reason: str) -> str:
        return f"{note}; {reason}" if note else reason

    if value is None or not math.isfinite(value):
        return estimate(None, n=n, note=noted("undefined for these documents"))
    replicates = np.asarray(replicates, dtype=float)
    defined = replicates[np.isfinite(replicates)]
    if len(defined) < max(2, MIN_DEFINED * len(replicates)):
        share = 1 - len(defined) / len(replicates)
        return estimate(value, n=n, note=noted(f"the statistic is undefined in {share:.0%} of the bootstrap resamples: "
                                               "no interval"))
    low, high = (float(q) for q in np.quantile(defined, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]))
    stderr = float(defined.std(ddof=1))
    if not low <= value <= high:
        return estimate(value, stderr, n=n, method=method,
                        note=noted("the bootstrap interval does not cover the estimate (too few documents): no interval"))
    return estimate(value, stderr, low, high, method, n, note)


def with_replicates(value, replicates, method: str, n: int, note: str | None = None) -> dict:
    """from_replicates, keeping the replicates (under "replicates") for paired comparisons between records."""
    return {**from_replicates(value, replicates, method, n, note), "replicates": np.asarray(replicates, dtype=float)}


def mcnemar(before, after) -> dict:
    """McNemar's exact test on paired 0/1 outcomes: b = right before and wrong after, c = the reverse."""
    before, after = np.asarray(before, dtype=int), np.asarray(after, dtype=int)
    b = int(((before == 1) & (after == 0)).sum())
    c = int(((before == 0) & (after == 1)).sum())
    p = 1.0 if b + c == 0 else float(sps.binomtest(min(b, c), b + c, 0.5).pvalue)
    return {"n": int(len(before)), "lost": b, "gained": c, "p_value": p}
