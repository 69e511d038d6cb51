"""Hypothesis property tests: invariants every estimator must keep for any valid input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.multitest import multipletests

from pytest_servecert.stats import (
    cohen_d,
    cohen_h,
    cohen_kappa,
    cri,
    exact_mcnemar_floor,
    holm,
    interaction_spread,
    mantel_haenszel_rbg,
    matched_pairs_or,
    mcnemar,
    pool_discordant,
    sign_test,
    tost_paired,
)

counts = st.integers(min_value=0, max_value=400)
alphas = st.floats(min_value=0.001, max_value=0.2)


@st.composite
def cells(draw, max_n=2000):
    """(b, c, n) with b + c <= n."""
    n = draw(st.integers(min_value=2, max_value=max_n))
    b = draw(st.integers(min_value=0, max_value=n))
    c = draw(st.integers(min_value=0, max_value=n - b))
    return b, c, n


# --- McNemar / sign ---------------------------------------------------------------------------
@given(counts, counts)
def test_mcnemar_pvalues_are_probabilities_and_symmetric(b, c):
    result = mcnemar(b, c)
    assert 0.0 <= result.pvalue <= 1.0
    assert 0.0 <= result.pvalue_asymptotic <= 1.0
    assert result.statistic >= 0.0
    assert mcnemar(c, b).pvalue == result.pvalue
    assert sign_test(b, c).pvalue == result.pvalue


@given(counts, counts)
def test_mcnemar_exact_agrees_with_statsmodels(b, c):
    expected = sm_mcnemar([[0, b], [c, 0]], exact=True).pvalue
    assert mcnemar(b, c).pvalue == pytest.approx(expected, rel=1e-9, abs=1e-300)


@given(st.integers(0, 60))
def test_exact_floor_is_consistent(k):
    floor = exact_mcnemar_floor(k, family_size=72)
    assert floor.can_reach is (k >= floor.discordant_needed)
    assert floor.min_pvalue == mcnemar(k, 0).pvalue


# --- odds ratios ------------------------------------------------------------------------------
@given(counts, counts, alphas)
def test_swapping_arms_inverts_the_matched_pairs_or(b, c, alpha):
    forward, backward = matched_pairs_or(b, c, alpha), matched_pairs_or(c, b, alpha)
    assert forward.estimate * backward.estimate == pytest.approx(1.0)
    assert forward.ci_low * backward.ci_high == pytest.approx(1.0)
    assert forward.se == backward.se
    assert forward.ci_low <= forward.estimate <= forward.ci_high


@given(st.lists(st.tuples(counts, counts), min_size=1, max_size=30))
def test_pooling_is_summing_the_discordant_counts(strata):
    pooled = pool_discordant(strata)
    total = matched_pairs_or(sum(b for b, _ in strata), sum(c for _, c in strata))
    assert pooled.estimate == total.estimate and pooled.ci_high == total.ci_high
    assert pool_discordant(list(reversed(strata))).estimate == pooled.estimate


@given(st.lists(st.tuples(*[st.integers(1, 200)] * 4), min_size=1, max_size=8))
def test_swapping_arms_inverts_the_mh_rbg_or(tables):
    forward = mantel_haenszel_rbg([list(t) for t in tables])
    backward = mantel_haenszel_rbg([[c, d, a, b] for a, b, c, d in tables])
    assert forward.estimate * backward.estimate == pytest.approx(1.0)
    assert forward.se == pytest.approx(backward.se)
    assert forward.ci_low <= forward.estimate <= forward.ci_high


# --- TOST -------------------------------------------------------------------------------------
@given(cells(), st.floats(min_value=0.1, max_value=50), alphas)
def test_swapping_arms_flips_delta_and_mirrors_the_t_interval(cell, margin, alpha):
    b, c, n = cell
    forward = tost_paired(b, c, n, margin_pp=margin, alpha=alpha)
    backward = tost_paired(c, b, n, margin_pp=margin, alpha=alpha)
    assert backward.delta_pp == -forward.delta_pp
    assert backward.ci_low_pp == pytest.approx(-forward.ci_high_pp)
    assert backward.pvalue == pytest.approx(forward.pvalue)
    assert backward.equivalent is forward.equivalent


@given(cells(), st.floats(min_value=0.1, max_value=50), alphas,
       st.sampled_from(["paired_t", "bootstrap"]))
@settings(max_examples=60, deadline=None)
def test_tost_decision_is_the_strict_interval_rule(cell, margin, alpha, method):
    b, c, n = cell
    result = tost_paired(b, c, n, margin_pp=margin, alpha=alpha, method=method, n_boot=400)
    assert 0.0 <= result.pvalue <= 1.0
    assert result.equivalent is (result.pvalue < alpha)
    inside = -margin < result.ci_low_pp and result.ci_high_pp < margin
    if not math.isclose(abs(result.ci_low_pp), margin) and not math.isclose(
            abs(result.ci_high_pp), margin):
        assert result.equivalent is inside
    assert result.ci_low_pp <= result.ci_high_pp
    assert result.delta_pp == pytest.approx(100 * (c - b) / n)


@given(cells(), st.sampled_from(["paired_t", "bootstrap"]))
@settings(max_examples=50, deadline=None)
def test_an_infinite_margin_is_always_equivalent(cell, method):
    b, c, n = cell
    result = tost_paired(b, c, n, margin_pp=math.inf, method=method, n_boot=100)
    assert result.equivalent is True


@given(cells(), st.floats(min_value=0.1, max_value=20), st.floats(min_value=1.0, max_value=5.0))
def test_a_wider_margin_never_loses_equivalence(cell, margin, factor):
    b, c, n = cell
    if tost_paired(b, c, n, margin_pp=margin).equivalent:
        assert tost_paired(b, c, n, margin_pp=margin * factor).equivalent


# --- Holm -------------------------------------------------------------------------------------
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=80), alphas)
def test_holm_adjusted_is_at_least_raw_and_at_most_one(pvalues, alpha):
    result = holm(pvalues, alpha)
    assert result.family_size == len(pvalues)
    for raw, adj, rejected in zip(pvalues, result.adjusted, result.rejected, strict=True):
        assert raw <= adj + 1e-15 and adj <= 1.0
        if rejected:
            assert adj <= alpha * (1 + 1e-9)
        else:
            assert adj >= alpha * (1 - 1e-9)
    order = np.argsort(pvalues, kind="stable")
    assert np.all(np.diff(np.asarray(result.adjusted)[order]) >= 0)


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=80), alphas)
@settings(max_examples=10, deadline=None)  # multipletests runs gc.collect() on every call
def test_holm_agrees_with_statsmodels_multipletests(pvalues, alpha):
    _reject, adjusted, *_ = multipletests(pvalues, alpha=alpha, method="holm")
    assert holm(pvalues, alpha).adjusted == pytest.approx(tuple(adjusted), rel=1e-12, abs=0)


# --- κ ----------------------------------------------------------------------------------------
labels = st.lists(st.sampled_from(["refusal", "compliance", "unjudgeable"]), min_size=1,
                  max_size=200)


@given(labels)
@settings(deadline=None)
def test_kappa_of_a_labelling_with_itself_is_one(a):
    result = cohen_kappa(a, a, n_boot=50)
    if len(set(a)) == 1:
        assert math.isnan(result.kappa)  # p_e == 1: undefined, not an error
    else:
        assert result.kappa == pytest.approx(1.0)
        assert result.ci_low == pytest.approx(1.0) and result.ci_high == pytest.approx(1.0)
    assert result.pabak == 1.0 and result.p_observed == 1.0


@given(st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from("ab")), min_size=2,
                max_size=200))
@settings(deadline=None)
def test_kappa_is_symmetric_bounded_and_matches_statsmodels(pairs):
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    forward, backward = cohen_kappa(a, b, n_boot=0), cohen_kappa(b, a, n_boot=0)
    assert forward.kappa == pytest.approx(backward.kappa, nan_ok=True)
    assert -1.0 <= forward.pabak <= 1.0
    if not math.isnan(forward.kappa):
        assert -1.0 <= forward.kappa <= 1.0 + 1e-12
        table = np.zeros((2, 2))
        for x, y in pairs:
            table["ab".index(x), "ab".index(y)] += 1
        with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels' z on a 0 SE
            expected = sm_cohens_kappa(table).kappa
        assert forward.kappa == pytest.approx(expected, abs=1e-9)


# --- effect sizes, CRI, spread ----------------------------------------------------------------
@given(st.floats(0, 1), st.floats(0, 1))
def test_cohen_h_is_antisymmetric_and_bounded(p1, p2):
    h = cohen_h(p1, p2).h
    assert cohen_h(p2, p1).h == -h
    assert abs(h) <= math.pi + 1e-12


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@given(st.lists(finite, min_size=2, max_size=40), st.lists(finite, min_size=2, max_size=40),
       st.floats(min_value=0.01, max_value=100), st.floats(min_value=-100, max_value=100))
def test_cohen_d_is_antisymmetric_and_affine_invariant(x, y, scale, shift):
    d = cohen_d(x, y)
    assume(d.sd_pooled > 1e-6)
    assert cohen_d(y, x).d == pytest.approx(-d.d)
    moved = cohen_d([scale * v + shift for v in x], [scale * v + shift for v in y])
    assert moved.d == pytest.approx(d.d, rel=1e-6, abs=1e-9)


@given(st.dictionaries(st.text(min_size=1, max_size=5),
                       st.lists(finite, min_size=2, max_size=20), min_size=2, max_size=5))
def test_cri_is_max_pairwise_abs_d_and_never_robust_by_accident(samples):
    result = cri(samples)
    labels = list(samples)
    ds = [abs(cohen_d(samples[i], samples[j]).d)
          for k, i in enumerate(labels) for j in labels[k + 1:]]
    assert result.index == max(ds)
    assert result.band != "invalid" and result.n_stacks == len(samples)


@given(st.lists(finite, min_size=1, max_size=100))
def test_interaction_spread_is_the_range(values):
    result = interaction_spread(values)
    assert result.spread == max(values) - min(values) >= 0
    assert values[result.argmax] == result.max_delta and values[result.argmin] == result.min_delta
