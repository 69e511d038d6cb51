"""Layer 1 — judge validity (JTP; README "Claims", seed 002 C4 and §6.2/§7.4, seed-conclusive-a §2.2).

Every cohort judge labels the calibration corpus once ([judges.calibration], default the XSTest
v2 completions: 1,350 real answers with human labels; labels cached in the store) and every
answer of this run. These tests read the claim results the runner computed from those labels:
each judge's κ vs human per source model with a bootstrap CI; a voter below 0.40 vs human is
barred from voting (one line in the ladder); the band (robust / triangulate / untrustable) is
read from the κ vs human of the valid voters' majority; the run-label pair κ is the drift figure
per battery, and voters that disagree on this run's answers far more than on the corpus make the
claim INCONCLUSIVE (out of distribution), naming the weaker judge. A FAIL here makes every
label-dependent layer-5 claim INCONCLUSIVE.

With ``corpus = "none"`` the run-label rule applies: κ of the largest-n cross-family LLM pair,
UNTESTED with only regex + one LLM judge (FAIL if that κ < 0.40).
"""

from __future__ import annotations

import pytest

from pytest_servecert.assertions import check_claim
from pytest_servecert.plugin import certification_config

pytestmark = pytest.mark.layer1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "battery" in metafunc.fixturenames:
        metafunc.parametrize("battery", certification_config(metafunc.config).batteries.use)


def test_judge_cohort_validity(request, servecert_run):
    """κ vs human of the valid voters' majority on the corpus → band → dispatch (gates layer 5)."""
    check_claim(request, servecert_run.result("L1.judge_validity"))


def test_judge_validity_per_battery(request, servecert_run, battery):
    """Per battery: the corpus decision, with this battery's run-label κ as drift (OOD ⇒ INCONCLUSIVE)."""
    check_claim(request, servecert_run.result("L1.judge_validity", battery))


def test_integrity_anchor(request, servecert_run):
    """A recorded κ for a judge pair ([judges.anchor]) is reproduced within ±0.10 (UNTESTED when none is recorded)."""
    check_claim(request, servecert_run.result("L1.integrity_anchor"))
