"""Layer 2 — behavioural screens (DESIGN §7; seed 003 decisions 5–6, claims C2 and C9).

TAIS and RTSI read the answers the layer-5 plan stored (nothing is sampled twice): TAIS the
matched T = 0 pairs of every candidate that changes speculative decoding (``<candidate>@T=<t>``
for the T > 0 contexts the design measured, or ``<candidate>@T>0`` UNTESTED), RTSI the refusals
of every candidate. Verdicts end the tests as in layer 5: CERTIFIED/MONITOR pass, FAIL fails,
the rest are skipped with their reason and shown in the claim ladder.
"""

from __future__ import annotations

import pytest

from pytest_servecert.assertions import check_claim

pytestmark = pytest.mark.layer2


def test_tais(request, servecert_run, tais_subject):
    """TAIS: matched-pairs Cohen's h < 0.1 and the exact TOST inside ±3 pp (greedy: claim C2)."""
    check_claim(request, servecert_run.result("L2.tais", tais_subject))


def test_rtsi(request, servecert_run, candidate):
    """RTSI: the candidate's refusals keep the baseline's template (four behavioural features)."""
    check_claim(request, servecert_run.result("L2.rtsi", candidate))


def test_no_mechanistic_gate(request, servecert_run):
    """Config lint (claim C9, TR146): no logit/probe/confidence/entropy gate decides safety."""
    check_claim(request, servecert_run.result("L2.no_mechanistic_gate"))
