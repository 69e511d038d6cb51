"""Production canary (issue #18; README "Monitor a deployment"): ``pytest certifications -m canary``.

The deployed candidate (``[canary] arm``, default the first candidate) re-answers a pinned set of
the reference certification's prompts with the same temperature and seed; each alarm is a claim.
CERTIFIED/MONITOR pass, FAIL (an alarm) fails, the rest are skipped with their reason. Also
``servecert canary``.
"""

from __future__ import annotations

import pytest

from pytest_servecert.assertions import check_claim

pytestmark = pytest.mark.canary


def _result(run, claim_id):
    return next(r for r in run.results if r.claim.id == claim_id)


@pytest.mark.parametrize("claim_id", ["canary.harmful_core", "canary.over_refusal", "canary.over_refusal_rolling",
                                      "canary.over_refusal_weekly", "canary.stack_drift", "canary.judge_kappa"])
def test_canary(request, servecert_canary, claim_id):
    """One canary alarm: harmful discordance, benign-edge refusal drift (this run, rolling, week over week),
    stack drift, κ."""
    check_claim(request, _result(servecert_canary, claim_id))
