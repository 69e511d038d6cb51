"""Cohen's h, Cohen's d and the Wilson interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import stats_vectors as V
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from pytest_servecert.stats import cohen_d, cohen_h, wilson_interval


def test_cohen_h_identical_rates_is_zero_TV26():
    result = cohen_h(0.42, 0.42)
    assert result.h == 0.0 and result.magnitude == "negligible"


@pytest.mark.parametrize("p1,p2", [(0.5, 0.4), (0.98, 0.92), (0.0, 1.0), (0.39, 0.3671)])
def test_cohen_h_agrees_with_statsmodels(p1, p2):
    assert cohen_h(p1, p2).h == pytest.approx(proportion_effectsize(p1, p2), rel=1e-12)


@pytest.mark.parametrize("h,band", [(0.0, "negligible"), (0.1999, "negligible"), (0.2, "small"),
                                    (0.5, "medium"), (0.8, "large"), (-math.pi, "large")])
def test_cohen_h_bands(h, band):
    # sin(x / 2)^2 inverts h = 2 asin(sqrt(p)) - 0
    result = cohen_h(math.sin(abs(h) / 2) ** 2, 0.0)
    assert result.magnitude == band


def _binary(rate, n):
    k = round(rate * n)
    return np.r_[np.ones(k), np.zeros(n - k)]


@pytest.mark.parametrize("vid,n,fp16,fp8,d", V.COHEN_D_TV145_10,
                         ids=[v[0] for v in V.COHEN_D_TV145_10])
def test_cohen_d_TV145_10(vid, n, fp16, fp8, d):
    result = cohen_d(_binary(fp8, n), _binary(fp16, n))  # FP8 minus FP16
    assert result.d == pytest.approx(d, abs=0.0015)


@pytest.mark.parametrize("vid,n,fp16,fp8,reported,recomputed", V.COHEN_D_TV145_10_MISMATCH,
                         ids=[v[0] + "-MISMATCH" for v in V.COHEN_D_TV145_10_MISMATCH])
def test_cohen_d_TV145_10_mismatch_rows_follow_the_means_not_the_report(vid, n, fp16, fp8,
                                                                        reported, recomputed):
    result = cohen_d(_binary(fp8, n), _binary(fp16, n))
    assert result.d == pytest.approx(recomputed, abs=0.0015)
    assert result.d != pytest.approx(reported, abs=0.0015)


def test_cohen_d_equal_arms_is_tr145_average_variance_form():
    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 2.0, 40), rng.normal(0.0, 1.0, 40)
    tr145 = (x.mean() - y.mean()) / math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
    assert cohen_d(x, y).d == pytest.approx(tr145, rel=1e-12)


def test_cohen_d_unequal_arms_uses_n_weighted_pooling():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 4.0]
    pooled = math.sqrt((5 * np.var(x, ddof=1) + 1 * np.var(y, ddof=1)) / 6)
    result = cohen_d(x, y)
    assert result.sd_pooled == pytest.approx(pooled)
    assert result.d == pytest.approx((3.5 - 3.0) / pooled)
    assert (result.n1, result.n2, result.mean1, result.mean2) == (6, 2, 3.5, 3.0)


def test_cohen_d_constant_samples():
    assert cohen_d([2.0, 2.0], [2.0, 2.0]).d == 0.0
    assert cohen_d([3.0, 3.0], [2.0, 2.0]).d == math.inf
    assert cohen_d([1.0, 1.0], [2.0, 2.0]).d == -math.inf
    assert cohen_d([1.0, 1.0], [2.0, 2.0]).magnitude == "large"


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (97, 100), (93, 100), (99, 100), (1, 1878),
                                 (523, 1455)])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
def test_wilson_agrees_with_statsmodels_and_scipy(k, n, alpha):
    result = wilson_interval(k, n, alpha)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        proportion_confint(k, n, alpha=alpha, method="wilson"), rel=1e-12)
    ref = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
    assert (result.ci_low, result.ci_high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert 0.0 <= result.ci_low <= result.estimate <= result.ci_high <= 1.0


def test_wilson_stays_inside_unit_interval_unlike_tr145_t_interval_TV145_18():
    # TR145 printed 0.99 -> [0.970, 1.010] (t, unclipped); the Wilson interval cannot exceed 1.
    result = wilson_interval(99, 100)
    assert result.ci_high < 1.0
    assert result.ci_high != pytest.approx(1.010, abs=5e-4)


def test_magnitude_of_an_undefined_effect():
    from pytest_servecert.stats.results import magnitude

    assert magnitude(math.nan) == "undefined"
    assert magnitude(-0.79) == "medium"


def test_newcombe_difference_reproduces_newcombe_1998_and_the_wilson_construction():
    from pytest_servecert.stats import newcombe_difference

    # Newcombe (1998) Stat Med 17:873, Table II example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339
    result = newcombe_difference(56, 70, 48, 80)
    assert result.estimate == pytest.approx(0.2) and result.method == "newcombe"
    assert (result.ci_low, result.ci_high) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    # the hybrid built from the two Wilson intervals, at another level and near a boundary
    for k1, n1, k2, n2, alpha in ((0, 40, 3, 40, 0.1), (30, 420, 126, 420, 0.1), (9, 10, 1, 10, 0.05)):
        a, b = wilson_interval(k1, n1, alpha), wilson_interval(k2, n2, alpha)
        got = newcombe_difference(k1, n1, k2, n2, alpha)
        d = a.estimate - b.estimate
        low = d - math.hypot(a.estimate - a.ci_low, b.ci_high - b.estimate)
        high = d + math.hypot(a.ci_high - a.estimate, b.estimate - b.ci_low)
        assert (got.ci_low, got.ci_high) == pytest.approx((low, high), abs=1e-12)
    with pytest.raises(ValueError):
        newcombe_difference(5, 4, 1, 2)
