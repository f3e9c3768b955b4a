"""Every interval and test statistic on hand-made cases whose answers were worked out by hand."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from sinkbench.record import stats
from sinkbench.record.scores import metric_estimate


def test_standard_error_of_a_zero_one_vector():
    outcomes = [1, 0, 1, 1, 0, 1, 1, 0]  # p = 5/8
    result = stats.proportion(outcomes)
    assert result["value"] == 0.625
    assert result["stderr"] == pytest.approx(math.sqrt(0.625 * 0.375 / 8))  # 0.171163
    assert result["n"] == 8 and "Wilson" in result["method"]


def test_wilson_interval_of_eight_out_of_ten():
    # By hand, z = 1.959964, z^2 = 3.841459: centre (0.8 + z^2/20) / (1 + z^2/10) = 0.992073 / 1.384146 = 0.716741;
    # half-width z * sqrt(0.016 + z^2/400) / 1.384146 = 1.959964 * 0.160011 / 1.384146 = 0.226578.
    low, high = stats.wilson(8, 10)
    assert low == pytest.approx(0.490163, abs=1e-5) and high == pytest.approx(0.943319, abs=1e-5)
    zero_low, zero_high = stats.wilson(0, 10)  # p = 0: [0, z^2 / (n + z^2)] = [0, 3.8415 / 13.8415]
    assert zero_low == 0 and zero_high == pytest.approx(0.277533, abs=1e-5)


def test_suite_score_interval_from_task_standard_errors():
    tasks = [stats.proportion([1] * 60 + [0] * 40), stats.proportion([1] * 30 + [0] * 70)]  # 0.6 and 0.3, n = 100
    result = stats.mean_over_tasks(tasks)
    se = math.sqrt(0.6 * 0.4 / 100 + 0.3 * 0.7 / 100) / 2  # 0.0335410
    assert result["value"] == pytest.approx(0.45)
    assert result["stderr"] == pytest.approx(se)
    assert result["ci_low"] == pytest.approx(0.45 - stats.Z * se) and result["ci_high"] == pytest.approx(0.45 + stats.Z * se)
    degenerate = stats.mean_over_tasks([stats.proportion([1] * 10), stats.proportion([0] * 10)])  # stderr 0 is no interval
    assert degenerate["ci_low"] < 0.5 < degenerate["ci_high"] and "Wilson" in degenerate["method"]


def test_minimal_detectable_effect_by_hand():
    # Miller 2024: delta = (z_0.975 + z_0.80) * se = (1.959964 + 0.841621) * 0.01
    assert stats.mde(0.01) == pytest.approx(0.0280159, abs=1e-6)
    # n = (z_a/2 + z_b)^2 var(d) / delta^2: var(d) = 0.25 and delta = 0.03 need 7.848878 * 0.25 / 0.0009 = 2180.2
    assert (stats.MDE_FACTOR ** 2 * 0.25 / 0.03 ** 2) == pytest.approx(2180.2, abs=0.1)
    assert stats.mde(None) is None


def test_a_paired_bootstrap_sees_a_difference_an_unpaired_one_drowns():
    """B = A - 0.1 on every document: the paired change is exactly -0.1, its interval has width 0."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0.2, 0.8, 200)
    b = a - 0.1
    resampler = stats.Resampler(7)
    paired = resampler.means("task", b) - resampler.means("task", a)  # the same documents on both sides
    result = stats.from_replicates(float(b.mean() - a.mean()), paired, stats.PAIRED, 200)
    assert result["value"] == pytest.approx(-0.1)
    assert result["ci_low"] == pytest.approx(-0.1) and result["ci_high"] == pytest.approx(-0.1) and result["stderr"] < 1e-12
    independent = stats.Resampler(8).means("task", b) - resampler.means("task", a)
    unpaired = stats.from_replicates(float(b.mean() - a.mean()), independent, "unpaired", 200)
    se = math.sqrt(2 * a.var(ddof=1) / 200)  # two independent means of the same spread
    assert unpaired["stderr"] == pytest.approx(se, rel=0.1)  # the bootstrap's own error is a few percent
    assert unpaired["ci_high"] - unpaired["ci_low"] == pytest.approx(2 * stats.Z * se, rel=0.1)


def test_the_same_seed_resamples_the_same_documents():
    values = np.arange(50, dtype=float)
    assert np.array_equal(stats.Resampler(3).means("t", values), stats.Resampler(3).means("t", values))
    assert not np.array_equal(stats.Resampler(3).means("t", values), stats.Resampler(4).means("t", values))
    assert not np.array_equal(stats.Resampler(3).means("t", values), stats.Resampler(3).means("u", values))


def test_mcnemar_on_a_constructed_table():
    # 9 documents right before and wrong after, 1 the reverse, 90 unchanged:
    # exact two-sided p = 2 * P(X <= 1 | n = 10, 1/2) = 2 * 11 / 1024 = 0.021484375
    before = [1] * 9 + [0] + [1] * 45 + [0] * 45
    after = [0] * 9 + [1] + [1] * 45 + [0] * 45
    result = stats.mcnemar(before, after)
    assert (result["lost"], result["gained"], result["n"]) == (9, 1, 100)
    assert result["p_value"] == pytest.approx(22 / 1024)
    assert stats.mcnemar([1, 0], [1, 0])["p_value"] == 1.0  # no discordant pair: no evidence at all


def test_an_interval_that_cannot_be_trusted_is_left_out_with_a_reason():
    mostly_undefined = np.full(100, np.nan)
    mostly_undefined[:50] = 1.0
    result = stats.from_replicates(1.0, mostly_undefined, stats.PAIRED, 10)
    assert result["ci_low"] is None and "undefined in 50%" in result["note"]
    off = stats.from_replicates(5.0, np.linspace(0, 1, 100), stats.PAIRED, 10)  # estimate outside its own bootstrap
    assert off["ci_low"] is None and "does not cover the estimate" in off["note"]


def test_perplexities_from_per_document_log_likelihoods():
    loglik = np.array([-10.0, -20.0, -30.0])
    words = np.array([5.0, 10.0, 15.0])
    word_ppl = metric_estimate("word_perplexity", None, loglik, words, seed=0)
    assert word_ppl["value"] == pytest.approx(math.exp(60 / 30))  # exp(-sum ll / sum words) = e^2
    assert word_ppl["ci_low"] is None and "3 documents" in word_ppl["note"]  # three documents: no bootstrap interval
    eight = metric_estimate("word_perplexity", None, np.tile(loglik, 3)[:8], np.tile(words, 3)[:8], seed=0)
    assert eight["ci_low"] <= eight["value"] <= eight["ci_high"]
    bits = metric_estimate("bits_per_byte", None, loglik, words, seed=0, bootstrap=False)
    assert bits["value"] == pytest.approx(60 / (30 * math.log(2)))
    lambada = metric_estimate("perplexity", None, np.array([-1.0, -3.0]), None, bootstrap=False)
    assert lambada["value"] == pytest.approx(math.exp(2.0))  # exp(-mean ll)


def test_mean_is_students_t_from_eight_values():
    # 1..8: mean 4.5, sd sqrt(6) = 2.449490, se 0.866025; t(0.975, 7 df) = 2.364624, half-width 2.047825.
    result = stats.mean(np.arange(1.0, 9.0))
    assert result["value"] == 4.5 and result["stderr"] == pytest.approx(0.866025, abs=1e-6)
    assert result["ci_low"] == pytest.approx(2.452175, abs=1e-6) and result["ci_high"] == pytest.approx(6.547825, abs=1e-6)
    # Seven values: under the minimum sample, the mean alone and the reason.
    seven = stats.mean(np.arange(1.0, 8.0), "texts")
    assert seven["value"] == 4.0 and seven["ci_low"] is None and seven["note"].startswith("7 texts: too few")
    # 0 x 7 and 0.8: mean 0.1, sd sqrt(0.08), se 0.1, half-width 0.236462: cut to [0, 1] at the bottom.
    cut = stats.mean([0.0] * 7 + [0.8], within=(0.0, 1.0))
    assert (cut["ci_low"], cut["ci_high"]) == (0.0, pytest.approx(0.336462, abs=1e-6))
    same = stats.mean([0.5] * 8)  # no spread: the interval is the value
    assert (same["ci_low"], same["ci_high"]) == (0.5, 0.5)


def test_mean_of_task_means_adds_the_tasks_variances():
    # Task A: 0, 1 four times (mean 0.5, var 2/7, var/n 0.0357143); task B: 1 x 8 (var 0).
    # stderr sqrt(0.0357143) / 2 = 0.0944911; 0.75 -+ 1.959964 * 0.0944911 = 0.75 -+ 0.185199.
    result = stats.mean_of_task_means([np.array([0.0, 1.0] * 4), np.ones(8)])
    assert result["value"] == 0.75 and result["stderr"] == pytest.approx(0.0944911, abs=1e-6)
    assert result["ci_low"] == pytest.approx(0.564801, abs=1e-6) and result["ci_high"] == pytest.approx(0.935199, abs=1e-6)
    short = stats.mean_of_task_means([np.array([0.0, 1.0] * 4), np.ones(7)])  # a task of 7 documents
    assert short["value"] == pytest.approx((0.5 + 1) / 2) and short["ci_low"] is None and "7 documents" in short["note"]


def test_no_bootstrap_interval_from_fewer_than_the_minimum_sample():
    replicates = np.linspace(0.4, 0.6, 101)  # would give [0.405, 0.595]
    assert stats.from_replicates(0.5, replicates, stats.TEXTS, stats.MIN_UNITS)["ci_low"] == pytest.approx(0.405)
    few = stats.from_replicates(0.5, replicates, stats.TEXTS, stats.MIN_UNITS - 1)
    assert few["value"] == 0.5 and few["ci_low"] is None and "too few" in few["note"]
    stratum = stats.from_replicates(0.5, replicates, stats.TEXTS, 40, fewest=2)  # 40 in all, 2 in one stratum
    assert stratum["ci_low"] is None
    kept = stats.with_replicates(0.5, replicates, stats.TEXTS, 40, fewest=2)
    assert kept["replicates"] is None  # a comparison between records may not make one either


SOURCES = Path(stats.__file__).resolve().parents[1]
# What makes an interval: a quantile of replicates, a normal or t quantile, scipy's interval helpers, the level.
INTERVAL_MAKERS = re.compile(r"np\.quantile|np\.percentile|\.ppf\(|\.interval\(|sps\.bootstrap|0\.95\b|0\.975\b|"
                             r"1\.96\b|N_BOOTSTRAP\s*=|CONFIDENCE\s*=")


def test_only_the_stats_module_makes_intervals():
    """One home for the level, the resample count and the rule: no other module of the package makes an interval."""
    makers = sorted(str(path.relative_to(SOURCES)) for path in SOURCES.rglob("*.py")
                    if path != Path(stats.__file__).resolve() and INTERVAL_MAKERS.search(path.read_text(encoding="utf-8")))
    assert makers == [], makers
