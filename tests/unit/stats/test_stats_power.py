"""MDE (TR145 SS19 two-sample; discordance-based paired) and the exact McNemar floor."""

from __future__ import annotations

import math

import pytest
import stats_vectors as V

from pytest_servecert.stats import exact_mcnemar_floor, mcnemar, mde_paired, mde_two_sample


@pytest.mark.parametrize("vid,p,n,computed,reported", V.MDE_TV145_9,
                         ids=[v[0] for v in V.MDE_TV145_9])
def test_mde_two_sample_TV145_9(vid, p, n, computed, reported):
    result = mde_two_sample(p, n)
    assert result.mde_pp == pytest.approx(computed, abs=5e-3)
    assert round(result.mde_pp, 1) == pytest.approx(reported)
    assert result.method == "two_sample"


def test_mde_two_sample_constant_and_one_sample_alternative():
    result = mde_two_sample(0.7294, 1554)
    assert result.mde_pp / 100 / math.sqrt(2 * 0.7294 * 0.2706 / 1554) == pytest.approx(
        2.801585, abs=1e-6)
    # the one-sample formula sqrt(p(1-p)/n) would give 3.16 (wrong)
    assert result.mde_pp != pytest.approx(V.MDE_TV145_9_ONE_SAMPLE_WRONG, abs=0.05)


@pytest.mark.parametrize("p", [0.63, 0.64, 0.75, 0.76])
def test_n_518_cannot_detect_3pp_E145_6(p):
    # TR145 claimed n = 518 per model detects >= 3pp; its own formula says 7.4-8.4pp.
    assert 7.4 <= mde_two_sample(p, 518).mde_pp <= 8.41


@pytest.mark.parametrize("n,mde", [(100, 28.0), (400, 14.0)])
def test_mde_paired_worst_case_reproduces_tr149_per_cell_mde(n, mde):
    result = mde_paired(n)
    assert result.mde_pp == pytest.approx(mde, abs=0.05)
    assert (result.rate, result.method) == (1.0, "paired")


def test_mde_paired_shrinks_with_discordance():
    assert mde_paired(90, 0.01).mde_pp == pytest.approx(mde_paired(90).mde_pp / 10)


@pytest.mark.parametrize("k,min_p", [(0, 1.0), (1, 1.0), (2, 0.5), (3, 0.25), (4, 0.125),
                                     (10, 2 ** -9)])
def test_exact_floor_matches_the_most_extreme_mcnemar(k, min_p):
    result = exact_mcnemar_floor(k)
    assert result.min_pvalue == min_p
    assert result.min_pvalue == mcnemar(k, 0).pvalue


def test_exact_floor_E152_5_and_tr152_family():
    # "with <= 3 discordant pairs the minimum exact p is 0.25"
    assert all(exact_mcnemar_floor(k).min_pvalue >= 0.25 for k in range(4))
    single = exact_mcnemar_floor(5)
    assert (single.can_reach, single.discordant_needed) == (False, 6)  # 2^-4 > 0.05 >= 2^-5
    family = exact_mcnemar_floor(3, family_size=72)
    assert family.threshold == pytest.approx(0.05 / 72)
    assert (family.can_reach, family.discordant_needed) == (False, 12)
    assert exact_mcnemar_floor(12, family_size=72).can_reach is True
    assert exact_mcnemar_floor(11, family_size=72).can_reach is False
