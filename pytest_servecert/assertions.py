"""Turn a ``ClaimResult`` into a pytest outcome.

CERTIFIED and MONITOR pass; FAIL fails; NOT RUN, UNTESTED, SCAFFOLDED-ONLY and INCONCLUSIVE are
skipped with their reason (never passed) and appear under that verdict in the claim ladder.
"""

from __future__ import annotations

import json

import pytest

from .claims.model import ClaimResult, Verdict
from .session import USER_PROPERTY, result_to_dict

CLAIM_ID_PROPERTY = "servecert_claim_id"
VERDICT_PROPERTY = "servecert_verdict"


def check_claim(request: pytest.FixtureRequest, result: ClaimResult) -> None:
    """Record ``result`` for the ladder and certificate, then end the test with its verdict."""
    # The claim id and verdict also travel as plain properties: JUnit XML (--junitxml) writes
    # user_properties as <property> elements, which CI dashboards read.
    request.node.user_properties.append((CLAIM_ID_PROPERTY, result.id))
    request.node.user_properties.append((VERDICT_PROPERTY, result.verdict.value))
    request.node.user_properties.append((USER_PROPERTY, json.dumps(result_to_dict(result))))
    request.config.hook.pytest_servecert_claim_result(config=request.config, result=result)
    if result.verdict.passed:
        return
    message = f"{result.id}: {result.verdict.value}: {result.headline}"
    if result.reason:
        message += f" — {result.reason}"
    if result.verdict is Verdict.FAIL:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
