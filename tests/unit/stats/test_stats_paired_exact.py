"""The exact TOST of the TAIS screen: its size is valid, computed exactly (no simulation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from pytest_servecert.stats import pairs_needed_exact, tost_paired, tost_paired_exact


def _certify_region(n: int, margin: float, alpha: float) -> np.ndarray:
    """certify[b, c] for every (b, c) with b + c <= n, vectorised from the same bounds."""
    k = np.arange(n + 1)
    half = alpha / 2
    upper = np.where(k >= n, 1.0, sps.beta.ppf(1 - half, k + 1, np.maximum(n - k, 1)))
    lower = np.where(k <= 0, 0.0, sps.beta.ppf(half, np.maximum(k, 1), n - k + 1))
    high = 100 * (upper[None, :] - lower[:, None])  # [b, c]
    low = 100 * (lower[None, :] - upper[:, None])
    feasible = k[:, None] + k[None, :] <= n
    return (high < margin) & (low > -margin) & feasible


def _size(n: int, pb: float, pc: float, margin: float = 3.0, alpha: float = 0.05) -> float:
    """P(certify) under the trinomial (pb, pc, 1 - pb - pc): exact, summed over every (b, c)."""
    region = _certify_region(n, margin, alpha)
    b, c = np.nonzero(region)
    rest = n - b - c
    with np.errstate(divide="ignore"):
        logp = (special.gammaln(n + 1) - special.gammaln(b + 1) - special.gammaln(c + 1)
                - special.gammaln(rest + 1) + special.xlogy(b, pb) + special.xlogy(c, pc)
                + special.xlogy(rest, 1 - pb - pc))
    return float(np.exp(logp).sum())


@pytest.mark.parametrize("n", [40, 91, 122, 160, 300, 800])
@pytest.mark.parametrize("pb", [0.0, 0.005, 0.02, 0.1])
@pytest.mark.parametrize("sign", [+1, -1])
def test_a_true_margin_shift_is_certified_at_most_alpha_of_the_time(n, pb, sign) -> None:
    # delta = pc - pb = ±3 pp exactly (the boundary of the null: the worst case of each side)
    pc = pb + 0.03
    size = _size(n, pb, pc) if sign > 0 else _size(n, pc, pb)
    assert size <= 0.05


def test_the_vectorised_region_is_the_function() -> None:
    region = _certify_region(200, 3.0, 0.05)
    rng = np.random.default_rng(1)
    for b, c in rng.integers(0, 12, size=(40, 2)):
        assert bool(region[b, c]) == tost_paired_exact(int(b), int(c), 200).equivalent


def test_zero_discordance_needs_122_pairs() -> None:
    # 1 - 0.025 ** (1 / n) < 0.03  ⇔  n ≥ 122: the percentile bootstrap certifies it at any n
    assert tost_paired(0, 0, 40, method="bootstrap").equivalent  # why TAIS does not use it
    assert not tost_paired_exact(0, 0, 121).equivalent
    result = tost_paired_exact(0, 0, 122)
    assert result.equivalent and result.ci_low_pp == -result.ci_high_pp
    assert result.ci_high_pp == pytest.approx(100 * (1 - 0.025 ** (1 / 122)))
    assert pairs_needed_exact(0, 0, 40) == 122
    assert pairs_needed_exact(0, 0, 5000) == 122


def test_interval_pvalue_and_orientation() -> None:
    result = tost_paired_exact(2, 3, 800)
    assert result.delta_pp == pytest.approx(100 * 1 / 800)
    assert result.ci_low_pp < result.delta_pp < result.ci_high_pp
    assert result.equivalent and result.pvalue < 0.05
    assert result.method == "exact_cp_bonferroni" and math.isnan(result.se_pp)
    sparse = tost_paired_exact(1, 0, 40)
    assert not sparse.equivalent and sparse.pvalue >= 0.05


def test_pairs_needed_scales_the_observed_discordance() -> None:
    need = pairs_needed_exact(3, 2, 100)
    assert need is not None and need > 100
    assert tost_paired_exact(round(0.03 * need), round(0.02 * need), need).equivalent
    assert not tost_paired_exact(round(0.03 * (need - 1)), round(0.02 * (need - 1)),
                                 need - 1).equivalent
    assert pairs_needed_exact(40, 0, 400) is None  # a 10 pp shift: no n shows equivalence


@pytest.mark.parametrize(("args", "message"), [
    ((-1, 0, 10), "b must be a non-negative integer"),
    ((5, 6, 10), "b \\+ c must not exceed n"),
    ((0, 0, 0), "n must be a positive integer"),
])
def test_bad_input(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        tost_paired_exact(*args)


def test_clusters_widen_the_interval_and_keep_the_unit_count() -> None:
    # 40 prompts answered identically in 4 contexts: 160 pairs, but only 40 independent units
    assert tost_paired_exact(0, 0, 160).equivalent  # what counting pairs would (wrongly) say
    clustered = tost_paired_exact(0, 0, 40, cluster_size=4)
    assert not clustered.equivalent
    assert pairs_needed_exact(0, 0, 40, cluster_size=4) == 122
    single = tost_paired_exact(3, 2, 300)
    wide = tost_paired_exact(3, 2, 300, cluster_size=4)
    assert wide.ci_low_pp <= single.ci_low_pp and wide.ci_high_pp >= single.ci_high_pp
    assert math.isnan(wide.delta_pp)  # the point estimate is over pairs: the caller's
    # a prompt may have a degraded pair in one context and an improved one in another
    assert tost_paired_exact(30, 30, 40, cluster_size=4).ci_low_pp < 0
