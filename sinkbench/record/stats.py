"""Every interval sinkbench shows (record, board, pages, compare): exact formulas where they are exact, the bootstrap where not.

The one home of the confidence level, the bootstrap's resample count and the minimum-sample rule;
the record's columns, the link, the board's charts and the model-card export read them here.

Every estimate is a dict `{value, stderr, ci_low, ci_high, method, n, note}` (95% intervals); a
value without an interval has `ci_low = ci_high = None` and a note saying why.

* A mean of n 0/1 outcomes: stderr sqrt(p (1 - p) / n), Wilson score interval (good at small n
  and near 0 or 1, never outside [0, 1]: a formula of n and p, so no minimum sample).
* A mean of n other values: Student's t interval.
* Columns that compare conditions (or records) on the same documents: a *paired* percentile
  bootstrap: documents are resampled once per stratum (task), and every condition is read at
  the same resampled documents. Seeded: the same record always gives the same interval.
* The minimum-sample rule: an interval estimated from the sample's own spread (bootstrap, t,
  normal) needs at least MIN_UNITS units (documents, texts, sequences) in every stratum: a
  bootstrap of 2-4 texts sees a handful of distinct resamples and understates the spread, and a
  t interval of 2 is wider than the range the value can take.
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
LEVEL = f"{CONFIDENCE:.0%}"  # "95%": how captions and method names say the level
Z = float(sps.norm.ppf(0.5 + CONFIDENCE / 2))  # 1.959964
Z_POWER = float(sps.norm.ppf(0.80))  # 0.841621
MDE_FACTOR = Z + Z_POWER  # 2.801585: delta = (z_a/2 + z_b) * se
N_BOOTSTRAP = 2000
MIN_DEFINED = 0.9  # an interval needs the statistic defined in at least 90% of the resamples
MIN_UNITS = 8  # fewer documents (texts, sequences) in a stratum: no bootstrap, t or normal interval

WILSON = "Wilson score interval; stderr sqrt(p(1-p)/n)"
NORMAL_TASKS = "normal approximation over tasks taken as independent: stderr sqrt(sum of task stderr^2) / tasks"
WILSON_TASKS = ("mean of the tasks' Wilson bounds (a task at 0 or 1, or under 30 documents, has no usable normal "
                "stderr); stderr sqrt(sum of task stderr^2) / tasks")
SMALL_TASK = 30  # documents below which a task's normal stderr is not trusted
T_MEAN = f"mean with Student's t {LEVEL} interval (none from fewer than {MIN_UNITS} values)"
TASK_MEANS = (f"mean over tasks of each task's document mean; stderr sqrt(sum of var_t / n_t) / tasks, normal {LEVEL} "
              f"interval (none when a task has fewer than {MIN_UNITS} documents)")
PAIRED = f"paired percentile bootstrap over documents, stratified by task ({N_BOOTSTRAP} resamples, seeded)"
TEXTS = f"percentile bootstrap over texts ({N_BOOTSTRAP} resamples, seeded)"
SIMULTANEOUS = (f"simultaneous {LEVEL} bounds: each length's Wilson interval at level 1 - {1 - CONFIDENCE:.2g}/k "
                "(Bonferroni, k lengths), the definition read at its worst and its best within them")


def too_few(n: int, units: str = "documents") -> str | None:
    """Why n units give no interval estimated from their own spread; None when they are enough."""
    if n >= MIN_UNITS:
        return None
    return f"{n} {units}: too few for an interval (one needs {MIN_UNITS})"


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


def mean(values, units: str = "values", within: tuple[float, float] | None = None) -> dict:
    """The mean of values with its Student's t interval; `within`: the range the value can take
    (a share of attention: [0, 1]), which the interval is cut to."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return estimate(None, n=0, note=f"no {units}")
    value = float(values.mean())
    reason = too_few(n, units)
    if reason:
        return estimate(value, n=n, note=reason)
    stderr = float(sps.sem(values))
    if stderr == 0:  # scipy's interval of a zero scale is NaN; every value is the mean
        low = high = value
    else:
        low, high = (float(b) for b in sps.t.interval(CONFIDENCE, n - 1, loc=value, scale=stderr))
    if within is not None:
        low, high = max(within[0], low), min(within[1], high)
    return estimate(value, stderr, low, high, T_MEAN, n)


def mean_of_task_means(parts: list) -> dict:
    """The mean over tasks of each task's document mean (parts: one array of per-document values per task),
    stderr sqrt(sum var_t / n_t) / tasks, normal interval; none when a task has too few documents."""
    parts = [np.asarray(p, dtype=float) for p in parts]
    if not parts or any(len(p) == 0 for p in parts):
        return estimate(None, note="a task has no documents")
    value = float(np.mean([p.mean() for p in parts]))
    n = sum(len(p) for p in parts)
    reason = too_few(min(len(p) for p in parts), "documents in a task")
    if reason:
        return estimate(value, n=n, note=reason)
    stderr = math.sqrt(sum(float(p.var(ddof=1)) / len(p) for p in parts)) / len(parts)
    return estimate(value, stderr, value - Z * stderr, value + Z * stderr, TASK_MEANS, n)


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


def from_replicates(value: float | None, replicates: np.ndarray, method: str, n: int, note: str | None = None,
                    fewest: int | None = None) -> dict:
    """A percentile interval from bootstrap replicates (NaN where the statistic was undefined).
    `note` describes the value; why there is no interval is added to it. `fewest`: the units in the
    smallest stratum resampled (default n); under MIN_UNITS there is no interval."""

    def noted(reason: str) -> str:
        return f"{note}; {reason}" if note else reason

    if value is None or not math.isfinite(value):
        return estimate(None, n=n, note=noted("undefined for these documents"))
    reason = too_few(n if fewest is None else fewest, "documents or texts in a resampled stratum")
    if reason:
        return estimate(value, n=n, note=noted(reason))
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


def with_replicates(value, replicates, method: str, n: int, note: str | None = None, fewest: int | None = None) -> dict:
    """from_replicates, keeping the replicates (under "replicates") for paired comparisons between records;
    None there when the sample is too small for any interval (a comparison may not make one either)."""
    kept = None if too_few(n if fewest is None else fewest) else np.asarray(replicates, dtype=float)
    return {**from_replicates(value, replicates, method, n, note, fewest), "replicates": kept}


def mcnemar(before, after) -> dict:
    """McNemar's exact test on paired 0/1 outcomes: b = right before and wrong after, c = the reverse."""
    before, after = np.asarray(before, dtype=int), np.asarray(after, dtype=int)
    b = int(((before == 1) & (after == 0)).sum())
    c = int(((before == 0) & (after == 1)).sum())
    p = 1.0 if b + c == 0 else float(sps.binomtest(min(b, c), b + c, 0.5).pvalue)
    return {"n": int(len(before)), "lost": b, "gained": c, "p_value": p}
