"""A task's score from its documents' outcomes: how each lm-eval metric aggregates, with its interval.

One place for the arithmetic that `sinkbench run` uses to write a record, that `sinkbench
validate` uses to check one, and that the example records of the tests and benchmarks use:

* acc, acc_norm and other means of 0/1 outcomes: the mean, Wilson interval; other means: Student's t;
* perplexity (LAMBADA's): exp(-mean log-likelihood);
* word_perplexity, byte_perplexity: exp(-sum log-likelihood / sum words or bytes);
* bits_per_byte: -sum log-likelihood / (sum bytes * ln 2);
the three perplexity kinds with a percentile bootstrap over documents.
"""

from __future__ import annotations

import math

import numpy as np

from sinkbench.record import stats

PERPLEXITY = "perplexity"
WEIGHTED = {"word_perplexity": "words", "byte_perplexity": "bytes", "bits_per_byte": "bytes"}  # metric -> its denominator
DOCUMENT_BOOTSTRAP = f"percentile bootstrap over documents ({stats.N_BOOTSTRAP} resamples, seeded)"


def uses_loglik(metric: str) -> bool:
    return metric == PERPLEXITY or metric in WEIGHTED


def perplexity_value(metric: str, loglik: np.ndarray, sizes: np.ndarray | None) -> float:
    """inf where exp overflows (a log-likelihood of -1e6 is a number, if not a plausible one)."""
    with np.errstate(over="ignore"):
        if metric == PERPLEXITY:
            return float(np.exp(-loglik.mean()))
        if metric == "bits_per_byte":
            return -float(loglik.sum()) / (float(sizes.sum()) * math.log(2))
        return float(np.exp(-loglik.sum() / sizes.sum()))


def metric_estimate(metric: str, values: np.ndarray | None, loglik: np.ndarray | None = None,
                    sizes: np.ndarray | None = None, seed: int = 0, bootstrap: bool = True) -> dict:
    """A metric's value and interval from per-document numbers (values for means; log-likelihoods and
    word or byte counts for perplexities). bootstrap=False: the value (and analytic parts) only."""
    if uses_loglik(metric):
        value = perplexity_value(metric, loglik, sizes)
        if not bootstrap:
            return {"value": value}
        resampler = stats.Resampler(seed)
        if metric == PERPLEXITY:
            replicates = np.exp(-resampler.means(metric, loglik))
        else:
            total_ll, total = resampler.sums(metric, loglik), resampler.sums(metric, sizes)
            replicates = -total_ll / (total * math.log(2)) if metric == "bits_per_byte" else np.exp(-total_ll / total)
        return stats.from_replicates(value, replicates, DOCUMENT_BOOTSTRAP, len(loglik))
    if np.isin(values, (0.0, 1.0)).all():
        return stats.proportion(values)
    return stats.mean(values, "documents")
