"""McNemar, sign test and TOST against the reference vectors and against scipy/statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import stats_vectors as V
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.weightstats import ttost_paired

from pytest_servecert.stats import mcnemar, sign_test, tost_from_summary, tost_paired


# --- McNemar --------------------------------------------------------------------------------
@pytest.mark.parametrize("vid,b,c,p,tol", V.MCNEMAR_EXACT, ids=[v[0] for v in V.MCNEMAR_EXACT])
def test_mcnemar_exact_vectors(vid, b, c, p, tol):
    result = mcnemar(b, c)
    assert result.pvalue == pytest.approx(p, abs=tol)
    assert (result.b, result.c, result.n_discordant) == (b, c, b + c)


@pytest.mark.parametrize(
    "vid,b,c,stat,p", V.MCNEMAR_CHI2_CC, ids=[v[0] for v in V.MCNEMAR_CHI2_CC]
)
def test_mcnemar_edwards_chi2_vectors(vid, b, c, stat, p):
    result = mcnemar(b, c)
    assert result.statistic == pytest.approx(stat, abs=5e-6)
    assert result.pvalue_asymptotic == pytest.approx(p, abs=5e-7)


def test_mcnemar_exact_is_not_one_of_the_wrong_alternatives_TV152_1():
    p = mcnemar(3, 0).pvalue
    for name, wrong in V.MCNEMAR_3_0_WRONG.items():
        assert p != pytest.approx(wrong, abs=1e-3), name
    # the chi2+CC alternative is what pvalue_asymptotic reports, not the verdict p
    assert mcnemar(3, 0).pvalue_asymptotic == pytest.approx(V.MCNEMAR_3_0_WRONG["chi2_cc"],
                                                            abs=5e-5)


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (3, 0), (5, 5), (17, 6), (45, 35), (70, 37),
                                 (0, 400), (612, 580)])
def test_mcnemar_agrees_with_statsmodels_and_scipy(b, c):
    table = [[100, b], [c, 100]]
    ours = mcnemar(b, c)
    exact = sm_mcnemar(table, exact=True)
    assert ours.pvalue == pytest.approx(exact.pvalue, rel=1e-12, abs=1e-15)
    if b + c:  # statsmodels divides by zero on a fully concordant table
        corrected = sm_mcnemar(table, exact=False, correction=True)
        assert ours.pvalue == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
        assert ours.statistic == pytest.approx(corrected.statistic, rel=1e-12)
        assert ours.pvalue_asymptotic == pytest.approx(corrected.pvalue, rel=1e-9)


def test_mcnemar_equal_discordance_keeps_the_unclipped_correction():
    # R's mcnemar.test and statsmodels both give (|0| - 1)^2 / 10 for b == c == 5.
    assert mcnemar(5, 5).statistic == pytest.approx(0.1)
    assert mcnemar(5, 5).pvalue == 1.0


# --- sign test ------------------------------------------------------------------------------
def test_sign_test_TV152_5():
    v = V.SIGN_TV152_5
    result = sign_test(v["b"], v["c"])
    assert result.pvalue == pytest.approx(v["p"], abs=5e-7)
    for name, wrong in v["wrong"].items():
        assert result.pvalue != pytest.approx(wrong, abs=1e-4), name
    # the uncorrected normal approximation equals chi2 without CC (z^2 = X2)
    assert result.pvalue_normal == pytest.approx(V.SIGN_TV152_5_CHI2_NO_CC_P, abs=5e-7)


@pytest.mark.parametrize("vid,u,s,p,tol", V.SIGN_TV145_8, ids=[v[0] for v in V.SIGN_TV145_8])
def test_sign_test_TV145_8(vid, u, s, p, tol):
    assert sign_test(u, s).pvalue == pytest.approx(p, abs=tol)
    assert sign_test(u, s).pvalue == mcnemar(u, s).pvalue


def test_sign_test_is_two_sided_not_the_withdrawn_one_sided_E145_2():
    assert sign_test(80, 65).pvalue != pytest.approx(V.SIGN_TV145_8_ONE_SIDED_WRONG, abs=1e-3)


def test_sign_test_TV11_exact_and_normal():
    v = V.SIGN_TV11
    result = sign_test(v["b"], v["c"])
    assert result.z == pytest.approx(v["z"], abs=5e-5)
    assert result.pvalue == pytest.approx(v["p_exact"], abs=5e-7)
    assert result.pvalue_normal == pytest.approx(v["p_normal"], abs=5e-7)
    assert 0.0003 <= result.pvalue <= 0.0005  # published "p ≈ 0.0004", I-2 tolerance


def test_sign_test_without_discordance():
    result = sign_test(0, 0)
    assert (result.pvalue, result.z, result.pvalue_normal) == (1.0, 0.0, 1.0)


# --- TOST, paired t -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "vid,b,c,n,delta,se,p,lo,hi,eq", V.TOST_T_TV145_3, ids=[v[0] for v in V.TOST_T_TV145_3]
)
def test_tost_paired_t_TV145_3(vid, b, c, n, delta, se, p, lo, hi, eq):
    result = tost_paired(b, c, n)
    assert result.method == "paired_t"
    assert result.delta_pp == pytest.approx(delta, abs=5e-5)
    assert result.se_pp == pytest.approx(se, abs=5e-5)
    assert result.pvalue == pytest.approx(p, abs=5e-5 if p > 0.9 else 5e-7)
    assert (result.ci_low_pp, result.ci_high_pp) == (pytest.approx(lo, abs=5e-4),
                                                     pytest.approx(hi, abs=5e-4))
    assert result.equivalent is eq
    assert result.df == n - 1
    assert result.ci_level == pytest.approx(0.90)


def test_tost_paired_t_is_t_not_z_TV145_3():
    # The z approximation gives 0.00339 / 0.07106; the report's 0.0035 / 0.071 is the t version.
    assert tost_paired(13, 12, 485).pvalue != pytest.approx(0.00339, abs=5e-5)
    assert tost_paired(14, 6, 485).pvalue != pytest.approx(0.07106, abs=5e-5)


@pytest.mark.parametrize("row,b,c,n,delta,delta2,p", V.TV152_1_CELLS,
                         ids=[f"TV152-1#{v[0]}" for v in V.TV152_1_CELLS])
def test_tost_TV152_1_t_pvalues_and_bootstrap_failures(row, b, c, n, delta, delta2, p):
    t = tost_paired(b, c, n, method="paired_t")
    assert t.delta_pp == pytest.approx(delta, abs=5e-5)
    assert round(t.delta_pp, 2) == pytest.approx(delta2)
    assert t.pvalue == pytest.approx(p, abs=5e-5)
    assert t.equivalent is (row in V.TV152_1_T_TOST_PASS_ROWS)
    for alpha in (0.05, 0.025):  # 90 % and 95 % percentile intervals both reproduce TR152
        boot = tost_paired(b, c, n, alpha=alpha, method="bootstrap")
        assert boot.equivalent is False
        assert boot.delta_pp == t.delta_pp


def test_tost_count_TV152_10_method_sensitivity():
    cells = [(b, c, n) for _, b, c, n, *_ in V.TV152_1_CELLS]
    cells += [(0, 0, 100)] * V.TV152_N_CONCORDANT_CELLS
    for alpha in (0.05, 0.025):
        boot = sum(tost_paired(*cell, alpha=alpha, method="bootstrap").equivalent
                   for cell in cells)
        assert boot == 60  # matches the report's 60/72
    assert sum(tost_paired(*cell).equivalent for cell in cells) == 64  # TR145's t-TOST


def test_tost_from_summary_TV145_4_and_excess_E145_7():
    v = V.TOST_SUMMARY_TV145_4
    result = tost_from_summary(v["delta"], v["se"], v["df"])
    assert result.pvalue == pytest.approx(v["p"], abs=5e-4)
    assert result.ci_low_pp == pytest.approx(v["ci"][0], abs=5e-3)
    assert result.ci_high_pp == pytest.approx(v["ci"][1], abs=5e-3)
    assert result.equivalent is False
    # "fails by 0.09pp" is the point estimate; the interval misses the margin by 2.91pp.
    assert result.excess_pp == pytest.approx(v["excess"], abs=5e-3)


@pytest.mark.parametrize("b,c,n", [(13, 12, 485), (14, 6, 485), (0, 1, 91), (3, 0, 91),
                                   (70, 37, 485), (5, 40, 60)])
@pytest.mark.parametrize("margin", [1.0, 3.0, 5.0])
def test_tost_paired_t_agrees_with_statsmodels_ttost_paired(b, c, n, margin):
    candidate = np.zeros(n)
    baseline = np.zeros(n)
    baseline[:b] = 1.0  # b: baseline safe, candidate unsafe -> d = -1
    candidate[b:b + c] = 1.0  # c: candidate safe, baseline unsafe -> d = +1
    p_sm, *_ = ttost_paired(candidate, baseline, -margin / 100, margin / 100)
    ours = tost_paired(b, c, n, margin_pp=margin)
    assert ours.pvalue == pytest.approx(float(p_sm), rel=1e-9, abs=1e-15)


# --- TOST, bootstrap ------------------------------------------------------------------------
@pytest.mark.parametrize("k,n,equivalent", [
    (1, 100, False),  # the 95th percentile lands exactly on +3.0pp: strict rule fails it
    (1, 101, True),
    (2, 120, False),
    (2, 200, True),
    (3, 200, False),
    (3, 201, True),
])
def test_bootstrap_boundary_rule_matches_the_derived_design_fact(k, n, equivalent):
    # seed-tr152-tr145 §2.5 (DERIVED): k same-direction discordant pairs pass only from
    # n >= ~101 (k=1), ~167 (k=2), ~201 (k=3).
    for b, c in ((0, k), (k, 0)):
        result = tost_paired(b, c, n, method="bootstrap")
        assert result.equivalent is equivalent
        assert result.equivalent is (result.pvalue < result.alpha)
        assert result.equivalent is (-3.0 < result.ci_low_pp and result.ci_high_pp < 3.0)


def test_bootstrap_exact_boundary_is_not_equivalent():
    result = tost_paired(0, 1, 100, method="bootstrap")
    assert result.ci_high_pp == 3.0
    assert result.equivalent is False
    assert result.excess_pp == 0.0


def test_bootstrap_is_reproducible_and_seeded():
    first = tost_paired(30, 20, 1000, method="bootstrap", seed=7)
    assert tost_paired(30, 20, 1000, method="bootstrap", seed=7) == first
    others = {tost_paired(30, 20, 1000, method="bootstrap", seed=s).pvalue for s in range(5)}
    assert len(others) > 1


def test_bootstrap_agrees_with_scipy_bootstrap_on_the_per_prompt_deltas():
    b, c, n = 40, 25, 1200
    deltas = np.zeros(n)
    deltas[:b] = -100.0
    deltas[b:b + c] = 100.0
    ref = sps.bootstrap((deltas,), np.mean, confidence_level=0.90, method="percentile",
                        n_resamples=20_000, random_state=np.random.default_rng(1))
    ours = tost_paired(b, c, n, method="bootstrap", n_boot=20_000, seed=3)
    # Two Monte Carlo estimates of the same bootstrap distribution: agree to MC error.
    assert ours.ci_low_pp == pytest.approx(ref.confidence_interval.low, abs=0.1)
    assert ours.ci_high_pp == pytest.approx(ref.confidence_interval.high, abs=0.1)


@pytest.mark.parametrize("method", ["paired_t", "bootstrap"])
def test_zero_discordance_is_equivalent_with_a_zero_interval_TV152_2(method):
    result = tost_paired(0, 0, 100, method=method)
    assert (result.delta_pp, result.ci_low_pp, result.ci_high_pp) == (0.0, 0.0, 0.0)
    assert result.equivalent is True
    assert result.pvalue == 0.0
    assert result.method == method


def test_all_pairs_discordant_one_way_has_zero_variance():
    result = tost_paired(0, 50, 50)
    assert (result.delta_pp, result.se_pp, result.pvalue, result.equivalent) == (
        100.0, 0.0, 1.0, False)
    inside = tost_from_summary(1.0, 0.0, 10)
    assert (inside.pvalue, inside.equivalent) == (0.0, True)


def test_single_discordant_pair_has_no_t_test():
    result = tost_paired(1, 0, 1)
    assert math.isnan(result.pvalue) and result.equivalent is False
    assert math.isnan(result.ci_low_pp)
    boot = tost_paired(1, 0, 1, method="bootstrap", n_boot=100)
    assert boot.equivalent is False and boot.ci_low_pp == boot.ci_high_pp == -100.0


def test_cost_does_not_grow_with_the_number_of_pairs():
    # A per-pair implementation could not allocate 10**15 pairs; counts make it O(n_boot).
    n = 10**15
    t = tost_paired(10**12, 2 * 10**12, n)
    boot = tost_paired(10**12, 2 * 10**12, n, method="bootstrap", n_boot=1000)
    assert t.equivalent and boot.equivalent
    assert boot.delta_pp == pytest.approx(0.1)
