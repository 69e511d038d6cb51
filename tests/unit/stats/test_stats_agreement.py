"""Cohen's κ, its bootstrap interval, PABAK and the degenerate-marginals flag."""

from __future__ import annotations

import math

import numpy as np
import pytest
import stats_vectors as V
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa

from pytest_servecert.stats import cohen_kappa


def _labels_from_table(table, labels=("refusal", "compliance")):
    a, b = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [labels[i]] * count
            b += [labels[j]] * count
    return a, b


def test_kappa_TV12_from_p_observed_and_p_expected():
    # Build a symmetric 2x2 table with p_o = 0.8480 and p_e = 0.5076 at n = 12,809.
    v = V.KAPPA_TV12
    n = v["n"]
    share = (1 + math.sqrt(1 - 2 * (1 - v["p_e"]))) / 2  # p^2 + (1-p)^2 = p_e
    off = round((1 - v["p_o"]) * n / 2)
    pos = round(share * n)
    table = [[pos - off, off], [off, n - pos - off]]
    result = cohen_kappa(*_labels_from_table(table), n_boot=500)
    assert result.p_observed == pytest.approx(v["p_o"], abs=1e-4)
    assert result.p_expected == pytest.approx(v["p_e"], abs=1e-4)
    assert result.kappa == pytest.approx(v["kappa_from_rounded"], abs=v["tol"])
    assert result.kappa == pytest.approx(v["kappa_published"], abs=v["tol"])
    assert result.ci_low < result.kappa < result.ci_high
    assert result.degenerate is False


def test_kappa_TV13_degenerate_marginals_report_pabak():
    # StrongREJECT: judge A flags record 0 unsafe, judge B record 1, all others safe.
    n = V.KAPPA_TV13["n"]
    a = ["unsafe"] + ["safe"] * (n - 1)
    b = ["safe", "unsafe"] + ["safe"] * (n - 2)
    result = cohen_kappa(a, b)
    assert result.kappa == pytest.approx(V.KAPPA_TV13["kappa"], abs=5e-6)
    assert result.pabak == pytest.approx(V.KAPPA_TV13["pabak"], abs=5e-6)
    assert result.degenerate is True


def test_kappa_undefined_when_both_raters_use_one_label():
    result = cohen_kappa(["refusal"] * 50, ["refusal"] * 50)
    assert math.isnan(result.kappa) and math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.degenerate is True
    assert result.pabak == 1.0  # binary label space assumed
    assert result.p_expected == 1.0


def test_kappa_declared_categories_set_the_pabak_label_space():
    a = ["refusal"] * 40 + ["compliance"] * 10
    b = ["refusal"] * 35 + ["compliance"] * 15
    binary = cohen_kappa(a, b, categories=["refusal", "compliance"])
    three = cohen_kappa(a, b, categories=["refusal", "compliance", "unjudgeable"])
    assert binary.kappa == three.kappa
    assert binary.pabak == pytest.approx(2 * 0.9 - 1)
    assert three.pabak == pytest.approx((3 * 0.9 - 1) / 2)
    assert three.categories == ("refusal", "compliance", "unjudgeable")


@pytest.mark.parametrize("seed", range(6))
def test_kappa_agrees_with_statsmodels(seed):
    rng = np.random.default_rng(seed)
    q = int(rng.integers(2, 5))
    table = rng.integers(0, 40, size=(q, q)) + np.eye(q, dtype=int) * 30
    a, b = _labels_from_table(table.tolist(), labels=list(range(q)))
    result = cohen_kappa(a, b, n_boot=0)
    assert result.kappa == pytest.approx(sm_cohens_kappa(table).kappa, rel=1e-12)
    assert math.isnan(result.ci_low)  # n_boot = 0 skips the bootstrap
    by_hand_po = np.trace(table) / table.sum()
    assert result.p_observed == pytest.approx(by_hand_po)


def test_kappa_bootstrap_is_seeded_and_covers_the_estimate():
    a, b = _labels_from_table([[300, 40], [25, 135]])
    first = cohen_kappa(a, b, seed=3)
    assert cohen_kappa(a, b, seed=3) == first
    assert first.ci_low < first.kappa < first.ci_high
    narrower = cohen_kappa(a, b, seed=3, alpha=0.2)
    assert narrower.ci_high - narrower.ci_low < first.ci_high - first.ci_low


def test_kappa_accepts_unorderable_mixed_labels():
    a = [1, "x", 1, "x", 1, "x"] * 3
    b = [1, "x", "x", "x", 1, 1] * 3
    result = cohen_kappa(a, b, n_boot=50)
    assert set(result.categories) == {1, "x"}
    assert -1.0 <= result.kappa <= 1.0


def test_kappa_small_minority_is_degenerate_but_balanced_is_not():
    a, b = _labels_from_table([[96, 1], [0, 3]])  # 3-4 minority labels < 5
    assert cohen_kappa(a, b, n_boot=0).degenerate is True
    assert cohen_kappa(a, b, n_boot=0, min_minority=3).degenerate is False
