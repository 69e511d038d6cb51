"""Pooled odds ratios (matched-pairs Haldane/Wald, unpaired MH-RBG) and the interaction spread."""

from __future__ import annotations

import math

import numpy as np
import pytest
import stats_vectors as V
from statsmodels.stats.contingency_tables import StratifiedTable, Table2x2

from pytest_servecert.stats import (
    interaction_spread,
    mantel_haenszel_rbg,
    matched_pairs_or,
    pool_discordant,
)


# --- matched pairs --------------------------------------------------------------------------
@pytest.mark.parametrize("vid,b,c,orr,lo,hi,tol", V.MATCHED_OR, ids=[v[0] for v in V.MATCHED_OR])
def test_matched_pairs_or_vectors(vid, b, c, orr, lo, hi, tol):
    result = matched_pairs_or(b, c)
    assert result.estimate == pytest.approx(orr, abs=tol)
    assert result.ci_low == pytest.approx(lo, abs=tol)
    assert result.ci_high == pytest.approx(hi, abs=tol)
    assert result.method == "matched_pairs_haldane_wald"
    assert result.z == 1.96


def test_matched_pairs_or_TV152_4_log_and_se():
    result = matched_pairs_or(17, 6)
    assert result.log_estimate == pytest.approx(V.MATCHED_OR_TV152_4_EXTRA["log_or"], abs=5e-7)
    assert result.se == pytest.approx(V.MATCHED_OR_TV152_4_EXTRA["se"], abs=5e-7)
    assert not result.brackets_one  # "lower bound excludes 1.0": a located lean


def test_matched_pairs_or_negative_controls_TV152_4_TV01():
    # Without Haldane the report's numbers don't come out; with raw-count SE neither.
    no_haldane = V.MATCHED_OR_TV152_4_NO_HALDANE
    assert matched_pairs_or(17, 6).estimate != pytest.approx(no_haldane[0], abs=1e-3)
    tv01 = matched_pairs_or(12, 15)
    assert tv01.ci_low != pytest.approx(V.MATCHED_OR_TV01_RAW_SE_CI[0], abs=1e-3)
    assert tv01.ci_high != pytest.approx(V.MATCHED_OR_TV01_RAW_SE_CI[1], abs=1e-3)


@pytest.mark.parametrize("vid,b,c,orr,lo,hi", V.MATCHED_OR_DERIVED,
                         ids=[v[0] for v in V.MATCHED_OR_DERIVED])
def test_matched_pairs_or_derived_per_model_values(vid, b, c, orr, lo, hi):
    # The reference computed these with z = 1.959964; at z = 1.96 they agree to 3 dp.
    result = matched_pairs_or(b, c)
    assert result.estimate == pytest.approx(orr, abs=5e-5)
    assert result.ci_low == pytest.approx(lo, abs=5e-4)
    assert result.ci_high == pytest.approx(hi, rel=5e-5)
    exact_z = matched_pairs_or(b, c, alpha=0.05 + 1e-12)  # any alpha != 0.05 uses Phi^-1
    assert exact_z.z == pytest.approx(1.959963985, abs=1e-8)
    assert exact_z.ci_low == pytest.approx(lo, abs=5e-5)
    assert exact_z.ci_high == pytest.approx(hi, abs=5e-5)


@pytest.mark.parametrize("vid,b,c,orr", V.MCNEMAR_OR_HA, ids=[v[0] for v in V.MCNEMAR_OR_HA])
def test_tr145_mcnemar_or_is_haldane_anscombe(vid, b, c, orr):
    assert matched_pairs_or(b, c).estimate == pytest.approx(orr, abs=5e-5)


def test_pool_discordant_applies_haldane_once_TV152_4():
    strata = [(1, 0)] * 17 + [(0, 1)] * 6 + [(0, 0)] * 49  # 72 cells, Σb = 17, Σc = 6
    pooled = pool_discordant(strata)
    assert pooled.n_strata == 72
    assert pooled.estimate == pytest.approx(17.5 / 6.5)
    assert pooled.estimate != pytest.approx(53 / 42, abs=1e-2)  # per-stratum +0.5 (wrong)
    direct = matched_pairs_or(17, 6)
    assert (pooled.ci_low, pooled.ci_high) == (direct.ci_low, direct.ci_high)


def test_pool_discordant_accepts_arrays_TV02():
    # TV-04..07: per-model (b, c) of TR152 v2, pooling to Σb = 87, Σc = 46.
    per_model = np.array([[50, 16], [29, 4], [5, 11], [2, 4], [1, 11]])
    pooled = pool_discordant(per_model)
    assert pooled.estimate == pytest.approx(1.8817, abs=5e-5)
    assert pooled.n_strata == 5


def test_matched_pairs_or_without_discordance_is_one():
    result = matched_pairs_or(0, 0)
    assert result.estimate == 1.0 and result.brackets_one


def test_matched_pairs_or_other_alpha_uses_the_exact_quantile():
    result = matched_pairs_or(17, 6, alpha=0.10)
    assert result.z == pytest.approx(1.6448536, abs=1e-7)
    assert result.ci_low > matched_pairs_or(17, 6).ci_low


# --- unpaired MH with RBG variance ----------------------------------------------------------
def test_mantel_haenszel_rbg_TV145_6():
    v = V.MH_RBG_TV145_6
    result = mantel_haenszel_rbg(v["tables"])
    assert result.estimate == pytest.approx(v["or"], abs=5e-7)
    assert result.se == pytest.approx(v["se_log"], abs=5e-7)
    assert result.ci_low == pytest.approx(v["ci"][0], abs=5e-7)
    assert result.ci_high == pytest.approx(v["ci"][1], abs=5e-7)
    assert f"{result.ci_high:.4f}" == "6.9853"  # only z = 1.96 prints this (Phi^-1: 6.9852)
    assert result.method == "mantel_haenszel_rbg" and result.n_strata == 2


def test_mantel_haenszel_rbg_wrong_orientation_TV145_6():
    # Safe as the outcome (columns swapped) gives the reciprocal, 0.4859 [0.1432, 1.6489].
    flipped = [[b, a, d, c] for a, b, c, d in V.MH_RBG_TV145_6["tables"]]
    wrong = V.MH_RBG_TV145_6["wrong_orientation"]
    result = mantel_haenszel_rbg(flipped)
    assert (result.estimate, result.ci_low, result.ci_high) == (
        pytest.approx(wrong[0], abs=1e-4), pytest.approx(wrong[1], abs=1e-4),
        pytest.approx(wrong[2], abs=1e-4))
    assert result.estimate != pytest.approx(V.MH_RBG_TV145_6["or"], abs=0.1)


def test_mantel_haenszel_rbg_TV145_7_reconstruction():
    v = V.MH_RBG_TV145_7
    tables = []
    for rate, (b, c) in zip(v["fp16_safe_rate"], v["discordant"], strict=True):
        fp16_safe = round(rate * v["n"])
        fp8_safe = fp16_safe - b + c
        tables.append([v["n"] - fp8_safe, fp8_safe, v["n"] - fp16_safe, fp16_safe])
    result = mantel_haenszel_rbg(tables)
    got = (result.estimate, result.ci_low, result.ci_high)
    for ours, reconstructed, reported in zip(got, v["reconstructed"], v["reported"], strict=True):
        assert ours == pytest.approx(reconstructed, abs=5e-5)
        assert ours == pytest.approx(reported, abs=0.005)  # REPORTED, approximate only


def _rbg_by_hand(tables):
    # seed-tr152-tr145 §2.6(B), written out independently of statsmodels.
    a, b, c, d = (np.array(x, dtype=float) for x in zip(*tables, strict=True))
    n = a + b + c + d
    p, q, r, s = (a + d) / n, (b + c) / n, a * d / n, b * c / n
    var = ((p * r).sum() / (2 * r.sum() ** 2) + (p * s + q * r).sum() / (2 * r.sum() * s.sum())
           + (q * s).sum() / (2 * s.sum() ** 2))
    return r.sum() / s.sum(), math.sqrt(var)


@pytest.mark.parametrize("seed", range(5))
def test_mantel_haenszel_rbg_agrees_with_formula_and_statsmodels(seed):
    rng = np.random.default_rng(seed)
    tables = rng.integers(1, 60, size=(rng.integers(1, 8), 4)).tolist()
    result = mantel_haenszel_rbg(tables)
    orr, se = _rbg_by_hand(tables)
    assert result.estimate == pytest.approx(orr, rel=1e-12)
    assert result.se == pytest.approx(se, rel=1e-12)
    sm = StratifiedTable([np.array(t).reshape(2, 2) for t in tables])
    assert result.estimate == pytest.approx(sm.oddsratio_pooled, rel=1e-12)
    assert result.se == pytest.approx(sm.logodds_pooled_se, rel=1e-12)


def test_mantel_haenszel_rbg_one_stratum_is_the_cross_product_or():
    table = [[12, 30], [5, 41]]
    result = mantel_haenszel_rbg([table])
    t22 = Table2x2(np.array(table))
    assert result.estimate == pytest.approx(t22.oddsratio, rel=1e-12)
    assert result.se == pytest.approx(t22.log_oddsratio_se, rel=1e-12)  # RBG -> Woolf


@pytest.mark.parametrize("tables,estimate,log_est", [
    ([[0, 10, 3, 7]], 0.0, -math.inf),
    ([[3, 7, 0, 10]], math.inf, math.inf),
    ([[0, 10, 0, 10]], math.nan, math.nan),
])
def test_mantel_haenszel_rbg_degenerate_cross_products_are_nan_not_errors(tables, estimate,
                                                                          log_est):
    result = mantel_haenszel_rbg(tables)
    assert result.estimate == pytest.approx(estimate, nan_ok=True)
    assert result.log_estimate == pytest.approx(log_est, nan_ok=True)
    assert math.isnan(result.se) and math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.brackets_one is False


# --- interaction spread ---------------------------------------------------------------------
def _tv152_cell_deltas():
    deltas = {f"TV152-1#{row}": 100 * (c - b) / n for row, b, c, n, *_ in V.TV152_1_CELLS}
    deltas.update({f"concordant-{i}": 0.0 for i in range(V.TV152_N_CONCORDANT_CELLS)})
    return deltas


def test_interaction_spread_TV152_7():
    result = interaction_spread(_tv152_cell_deltas())
    v = V.SPREAD_TV152_7
    assert result.spread == pytest.approx(v["spread"], abs=5e-5)
    assert result.max_delta == pytest.approx(v["max"], abs=5e-5)
    assert result.min_delta == pytest.approx(v["min"], abs=5e-5)
    # E152-8: the max is the +1.12 cell (qwen-1.5b bs=8), not one of the +1.10 cells
    assert result.argmax == "TV152-1#12" and result.argmin == "TV152-1#1"
    assert result.n_cells == 72
    rounded = interaction_spread([round(x, 2) for x in _tv152_cell_deltas().values()])
    assert rounded.spread == pytest.approx(v["spread_from_2dp"])
    assert rounded.spread > 3.0  # "at least one cell moves more than the margin allows"


def test_interaction_spread_TV15():
    values = [x for pair in V.SPREAD_TV15_MINMAX.values() for x in pair]
    result = interaction_spread(values)
    assert result.spread == pytest.approx(2.99)
    assert result.spread <= 3.0  # H2 rejected
    assert (result.argmax, result.argmin) == (1, 8)  # positions in a sequence


def test_interaction_spread_single_cell_is_zero():
    result = interaction_spread({"only": -1.5})
    assert (result.spread, result.argmax, result.argmin) == (0.0, "only", "only")
