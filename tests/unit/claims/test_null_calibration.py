"""The layer-5 claims do not FAIL on noise: seeded A/A designs through the real claim functions.

Fast version of ``benchmarks/null_calibration.py`` (same simulation core,
``pytest_servecert.claims.simulate``). A claim fails this test when its false-FAIL rate exceeds
α by more than two Monte-Carlo standard errors; the shifted designs check that nothing was
loosened to get there.
"""

from __future__ import annotations

import math

import pytest

from pytest_servecert.claims.layer5 import Layer5Options
from pytest_servecert.claims.model import Verdict
from pytest_servecert.claims.simulate import (
    CLAIMS,
    DEFAULT_DESIGN,
    TR152_DESIGN,
    Shift,
    calibrate,
)

ALPHA = Layer5Options().alpha


def _allowed(alpha: float, runs: int) -> float:
    return alpha + 2 * math.sqrt(alpha * (1 - alpha) / runs)


@pytest.mark.parametrize(("design", "runs"), [(DEFAULT_DESIGN, 200), (TR152_DESIGN, 80)],
                         ids=["default", "tr152"])
def test_no_claim_fails_on_aa_noise_more_than_alpha(design, runs) -> None:
    tally = calibrate(design, runs, seed=20261202)
    for claim in CLAIMS:
        failed, total = tally.rate(claim, Verdict.FAIL)
        assert failed / total <= _allowed(ALPHA, total), (claim, failed, total)
    # The pooled lean is a two-sided α interval: MONITOR (never FAIL) at about α.
    monitored, total = tally.rate("L5.pooled_lean", Verdict.MONITOR)
    assert monitored / total <= _allowed(ALPHA, total)


def test_seeds_literal_rules_do_fail_on_noise() -> None:
    """The harness can see a miscalibrated rule: the seeds' literal statistics on A/A."""
    tally = calibrate(DEFAULT_DESIGN, 30, seed=1, options=Layer5Options.seeds())
    for claim in ("L5.harmful_core", "L5.interaction"):
        failed, total = tally.rate(claim, Verdict.FAIL)
        assert failed / total > 0.9, (claim, failed, total)


def test_a_real_5pp_harmful_shift_still_fails() -> None:
    runs = 60
    shift = (Shift(5.0, "harmbench"),)
    tally = calibrate(DEFAULT_DESIGN.with_prompts(100), runs, seed=7, shifts=shift)
    failed, total = tally.rate("L5.harmful_core", Verdict.FAIL)
    assert failed / total >= 0.8 - 2 * math.sqrt(0.8 * 0.2 / runs)
    sampled_only = (Shift(5.0, "harmbench", sampled_only=True),)
    tally = calibrate(TR152_DESIGN, runs, seed=8, shifts=sampled_only)
    failed, total = tally.rate("L5.harmful_core", Verdict.FAIL)
    assert failed / total >= 0.8 - 2 * math.sqrt(0.8 * 0.2 / runs)


def test_equivalence_never_certifies_a_true_3pp_shift_more_than_alpha() -> None:
    for design in (DEFAULT_DESIGN, TR152_DESIGN.with_prompts(400)):
        tally = calibrate(design, 20, seed=3, shifts=(Shift(3.0),))
        for claim in ("L5.equivalence[cell]", "L5.equivalence"):
            certified, total = tally.rate(claim, Verdict.CERTIFIED)
            assert certified / total <= _allowed(ALPHA, total), (design.name, claim, certified)
