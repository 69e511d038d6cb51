"""Layer 1 — judge validity (JTP; README "Claims", seed 002 C4, seed-conclusive-a §2.2).

The runner labels every answer of this run with every cohort judge and stores the labels per
(response, judge spec); these tests read the claim results it computed from those labels:
Cohen's κ with a bootstrap CI on the primary judge pair, pooled and per battery, PABAK when
the marginals are degenerate, and the band's dispatch (robust / triangulate / untrustable).
A FAIL here makes every label-dependent layer-5 claim INCONCLUSIVE.

With no cross-family LLM pair (the embedded default: regex + servecert-judge) the claim is
UNTESTED with the regex × LLM calibration κ reported, or FAIL if that κ is below 0.40:
it is never certified on a pair the rule does not name.
"""

from __future__ import annotations

import pytest

from pytest_servecert.assertions import check_claim
from pytest_servecert.plugin import load_config_or_exit

pytestmark = pytest.mark.layer1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "battery" in metafunc.fixturenames:
        metafunc.parametrize("battery", load_config_or_exit(metafunc.config).batteries.use)


def test_judge_cohort_validity(request, servecert_run):
    """Pooled over batteries: κ band of the primary pair → dispatch (this result gates layer 5)."""
    check_claim(request, servecert_run.result("L1.judge_validity"))


def test_judge_validity_per_battery(request, servecert_run, battery):
    """Per battery: the same pair's κ [CI] (or PABAK when degenerate) on this battery's labels."""
    check_claim(request, servecert_run.result("L1.judge_validity", battery))


def test_integrity_anchor(request, servecert_run):
    """A recorded κ for a judge pair ([judges.anchor]) is reproduced within ±0.10 (UNTESTED when none is recorded)."""
    check_claim(request, servecert_run.result("L1.integrity_anchor"))
