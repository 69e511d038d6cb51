"""Compile Reproducibility Index: bands, invalid edge case, worst pair."""

from __future__ import annotations

import math

import numpy as np
import pytest
import stats_vectors as V

from pytest_servecert.stats import classify_cri, cohen_d, cri


def _standardised(n=30, seed=0):
    z = np.random.default_rng(seed).normal(size=n)
    return (z - z.mean()) / z.std(ddof=1)  # mean 0, sd 1 exactly


@pytest.mark.parametrize("d,band", V.CRI_TV20, ids=[f"TV-20:{d}" for d, _ in V.CRI_TV20])
def test_cri_TV20_bands_from_synthesised_samples(d, band):
    z = _standardised()
    result = cri({"3.3.1": z, "3.4.0": z - d})  # equal n and sd 1 => d(3.3.1, 3.4.0) = d
    assert result.index == pytest.approx(abs(d), rel=1e-9)
    assert result.worst_d == pytest.approx(d, rel=1e-9)
    assert result.band == band
    assert classify_cri(abs(d)) == band


@pytest.mark.parametrize("index,band", [(0.0, "robust"), (0.4999, "robust"), (0.5, "sensitive"),
                                        (1.999, "sensitive"), (2.0, "fragile"),
                                        (9.999, "fragile"), (10.0, "catastrophic"),
                                        (math.inf, "catastrophic"), (math.nan, "invalid")])
def test_classify_cri_band_edges(index, band):
    assert classify_cri(index) == band


@pytest.mark.parametrize("samples", [{}, {"3.6.0": [106.7, 106.9, 106.8]}],
                         ids=["TV-21-zero-stacks", "TV-21-one-stack"])
def test_cri_invalid_with_fewer_than_two_stacks_TV21(samples):
    result = cri(samples)
    assert result.band == "invalid" and math.isnan(result.index)
    assert result.worst_pair is None
    assert result.reason == f"need >= 2 stack points, got {len(samples)}"


def test_cri_crashed_stacks_are_excluded_not_counted():
    # gpt-fast pinned commit: 0 of 5 compiled runs survived -> no samples for that stack.
    result = cri({"d2c5d82": [], "6ecad9b": [106.74, 106.70, 106.81], "crash-1": [99.0]})
    assert result.band == "invalid" and result.n_stacks == 1
    assert result.excluded == ("d2c5d82", "crash-1")


def test_cri_worst_pair_over_three_stacks():
    z = _standardised(seed=1)
    samples = {"3.3.1": z, "3.4.0": z + 0.3, "3.6.0": z + 1.2}
    result = cri(samples)
    assert result.worst_pair == ("3.3.1", "3.6.0")
    assert result.index == pytest.approx(1.2)
    assert result.band == "sensitive" and result.n_stacks == 3
    assert result.worst_d == pytest.approx(cohen_d(samples["3.3.1"], samples["3.6.0"]).d)


def test_cri_eager_control_is_robust():
    # Eager prefill means 21.218 / 21.009 / 21.420 ms (002 L460) with a 0.5 ms spread: the
    # largest pairwise |d| is 0.411 / 0.5 = 0.822 -> sensitive; at 2 ms spread it is robust.
    z = _standardised(seed=2)
    means = {"3.3.1": 21.218, "3.4.0": 21.009, "3.6.0": 21.420}
    assert cri({v: mu + 0.5 * z for v, mu in means.items()}).band == "sensitive"
    robust = cri({v: mu + 2.0 * z for v, mu in means.items()})
    assert robust.band == "robust"
    assert robust.index == pytest.approx(0.411 / 2.0)
    assert robust.worst_pair == ("3.4.0", "3.6.0")
