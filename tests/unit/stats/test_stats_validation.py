"""Bad input raises one ValueError naming the argument; results are immutable."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pytest_servecert import stats as S


@pytest.mark.parametrize("call,message", [
    (lambda: S.mcnemar(-1, 0), r"^b must be a non-negative integer, got -1$"),
    (lambda: S.mcnemar(0, 2.0), r"^c must be a non-negative integer, got 2\.0$"),
    (lambda: S.mcnemar(True, 0), r"^b must be a non-negative integer, got True$"),
    (lambda: S.sign_test(3, "1"), r"^c must be a non-negative integer"),
    (lambda: S.tost_paired(3, 2, 4), r"^b \+ c must not exceed n, got b \+ c = 5 > n = 4$"),
    (lambda: S.tost_paired(0, 0, 0), r"^n must be a positive integer, got 0$"),
    (lambda: S.tost_paired(1, 0, 10, margin_pp=0), r"^margin_pp must be a positive number"),
    (lambda: S.tost_paired(1, 0, 10, margin_pp=math.nan), r"^margin_pp must be a positive"),
    (lambda: S.tost_paired(1, 0, 10, margin_pp="3"), r"^margin_pp must be a positive number"),
    (lambda: S.tost_paired(1, 0, 10, alpha=0.5), r"^alpha must be in \(0, 0\.5\), got 0\.5$"),
    (lambda: S.tost_paired(1, 0, 10, method="bca"), r"^method must be one of"),
    (lambda: S.tost_paired(1, 0, 10, method="bootstrap", n_boot=0), r"^n_boot must be a pos"),
    (lambda: S.tost_paired(1, 0, 10, method="bootstrap", seed=-1), r"^seed must be a non-neg"),
    (lambda: S.tost_from_summary(1.0, -0.1, 10), r"^se_pp must be non-negative"),
    (lambda: S.tost_from_summary(1.0, 0.1, 0), r"^df must be positive"),
    (lambda: S.tost_from_summary(math.nan, 0.1, 10), r"^delta_pp must be a finite real"),
    (lambda: S.matched_pairs_or(1, 1, alpha=1.0), r"^alpha must be in \(0, 1\), got 1\.0$"),
    (lambda: S.matched_pairs_or(1, 1, alpha=0), r"^alpha must be in \(0, 1\), got 0$"),
    (lambda: S.pool_discordant([]), r"^strata must be a non-empty list of \(b, c\) pairs$"),
    (lambda: S.pool_discordant([(1, 2, 3)]), r"^strata must be a non-empty list"),
    (lambda: S.pool_discordant([(1, -2)]), r"^strata must contain non-negative integer counts"),
    (lambda: S.pool_discordant([(1.5, 2)]), r"^strata must contain non-negative integer counts"),
    (lambda: S.pool_discordant([("a", 2)]), r"^strata must contain non-negative integer counts"),
    (lambda: S.mantel_haenszel_rbg([[1, 2, 3]]),
     r"^tables must be a non-empty list of 2x2 tables$"),
    (lambda: S.mantel_haenszel_rbg([[1, 2, 3, 4], [0, 0, 0, 0]]),
     r"^tables\[1\] has no observations$"),
    (lambda: S.holm([0.1, 1.2]), r"^pvalues\[1\] must be a proportion in \[0, 1\], got 1\.2$"),
    (lambda: S.holm({"x": math.nan}), r"^pvalues\[0\] must be a proportion"),
    (lambda: S.cohen_h(1.1, 0.5), r"^p1 must be a proportion in \[0, 1\], got 1\.1$"),
    (lambda: S.cohen_d([1.0], [1.0, 2.0]), r"^x must hold at least 2 value\(s\), got 1$"),
    (lambda: S.cohen_d([], [1.0, 2.0]), r"^x must hold at least 2 value"),
    (lambda: S.cohen_d([1.0, math.inf], [1.0, 2.0]), r"^x must contain only finite numbers$"),
    (lambda: S.cohen_d([[1.0, 2.0]], [1.0, 2.0]), r"^x must be one-dimensional"),
    (lambda: S.cohen_d(["a", "b"], [1.0, 2.0]), r"^x must be a sequence of real numbers$"),
    (lambda: S.wilson_interval(5, 4), r"^k must not exceed n, got k = 5 > n = 4$"),
    (lambda: S.wilson_interval(0, 0), r"^n must be a positive integer, got 0$"),
    (lambda: S.cohen_kappa([], []), r"^a must not be empty$"),
    (lambda: S.cohen_kappa(["r"], ["r", "c"]),
     r"^a and b must have the same length, got 1 and 2$"),
    (lambda: S.cohen_kappa([["r"]], [["r"]]), r"^labels must be hashable$"),
    (lambda: S.cohen_kappa(["r", "x"], ["r", "r"], categories=["r", "c"]),
     r"^labels \['x'\] are not in categories \['r', 'c'\]$"),
    (lambda: S.cohen_kappa(["r"], ["r"], categories=["r", "r"]), r"^categories must not repeat"),
    (lambda: S.cohen_kappa(["r"], ["r"], n_boot=-5), r"^n_boot must be a non-negative"),
    (lambda: S.cohen_kappa(["r"], ["r"], alpha=2), r"^alpha must be in \(0, 1\)"),
    (lambda: S.cri([1.0, 2.0]), r"^samples must map stack labels to latency samples, got list$"),
    (lambda: S.cri({"a": [1.0, math.nan], "b": [1.0, 2.0]}),
     r"^samples\['a'\] must contain only finite numbers$"),
    (lambda: S.classify_cri(-0.1), r"^index must be non-negative"),
    (lambda: S.classify_cri("1"), r"^index must be a real number"),
    (lambda: S.interaction_spread([]), r"^deltas_pp must hold at least 1 value\(s\), got 0$"),
    (lambda: S.interaction_spread({"a": math.nan}), r"^deltas_pp must contain only finite"),
    (lambda: S.mde_two_sample(0.5, 0), r"^n must be a positive integer, got 0$"),
    (lambda: S.mde_two_sample(0.5, 100, power=1.0), r"^power must be in \(0, 1\), got 1\.0$"),
    (lambda: S.mde_paired(100, discordance_rate=-0.1), r"^discordance_rate must be a proport"),
    (lambda: S.exact_mcnemar_floor(3, family_size=0), r"^family_size must be a positive int"),
])
def test_invalid_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_numpy_integers_are_counts():
    assert S.mcnemar(np.int64(3), np.uint8(0)).pvalue == 0.25
    assert S.tost_paired(np.int32(0), np.int64(0), np.int64(90)).equivalent


def test_results_are_frozen():
    result = S.mcnemar(3, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pvalue = 0.01  # type: ignore[misc]


def test_every_public_name_is_exported_and_documented():
    for name in S.__all__:
        obj = getattr(S, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        if callable(obj) and not isinstance(obj, type):
            assert "Notes" in obj.__doc__ or name == "classify_cri", name
