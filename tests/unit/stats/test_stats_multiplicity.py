"""Holm–Bonferroni against the reference vectors and a hand-written step-down."""

from __future__ import annotations

import pytest
import stats_vectors as V
from statsmodels.stats.multitest import multipletests

from pytest_servecert.stats import holm, mcnemar


def test_holm_TV152_3_family_of_72():
    result = holm(V.HOLM_TV152_3)
    assert result.family_size == 72
    assert result.n_rejected == 0
    assert min(result.adjusted) == 1.0  # 72 x 0.25 = 18, capped


def test_holm_TV145_1_three_models():
    result = holm(V.HOLM_TV145_1["pvalues"])
    assert tuple(round(x, 3) for x in sorted(result.adjusted)) == V.HOLM_TV145_1["sorted_adjusted"]
    assert result.n_rejected == 0


def test_holm_TV145_2_qwen_capability_survives_in_2_and_6_test_families():
    qwen = mcnemar(70, 37).pvalue
    two = holm({"safety": mcnemar(45, 35).pvalue, "capability": qwen})
    assert two.adjusted[1] == pytest.approx(2 * 0.001840, abs=5e-6)
    assert two.rejected == (False, True) and two.labels == ("safety", "capability")
    six = holm([1.0, 0.596615, 0.314307, 1.0, 0.115318, qwen])
    assert six.adjusted[-1] == pytest.approx(6 * 0.001840, abs=5e-5) and six.rejected[-1]


def test_holm_TV08_and_TV10_smallest_p_does_not_survive():
    assert holm([mcnemar(10, 1).pvalue] + [1.0] * 119).adjusted[0] == 1.0  # TV-08, m = 120
    assert holm([0.125] * 12).adjusted == (1.0,) * 12  # TV-10, m = 12


def _holm_by_hand(pvalues, alpha):
    # adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j)) (seed-conclusive-a §2.9)
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize("pvalues", [[0.01, 0.04, 0.03, 0.2], [0.001] * 5, [0.5, 0.02, 0.9],
                                     [0.0, 1.0, 0.012, 0.013, 0.049]])
def test_holm_agrees_with_hand_step_down_and_statsmodels(pvalues):
    result = holm(pvalues, alpha=0.05)
    assert result.adjusted == pytest.approx(_holm_by_hand(pvalues, 0.05), abs=1e-15)
    reject, _adjusted, *_ = multipletests(pvalues, alpha=0.05, method="holm")
    assert result.rejected == tuple(reject)
    assert result.raw == tuple(pvalues)


def test_holm_empty_family():
    result = holm([])
    assert (result.adjusted, result.rejected, result.family_size) == ((), (), 0)
