"""The plugin seen from a user's test run (pytester): markers, options, claim outcomes, ladder."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CLAIM_TESTS = '''
import pytest
from pytest_servecert.assertions import check_claim
from pytest_servecert.claims.model import Claim, ClaimResult, Layer, Tier, Verdict

CLAIM = Claim(id="L5.demo", layer=Layer.SERVING_STATE, tier=Tier.SUPPORTED,
              statement="demo", statistic="count", threshold="== 0")
JUDGES = Claim(id="L1.demo", layer=Layer.JUDGE_VALIDITY, tier=Tier.SUPPORTED,
               statement="judges", statistic="kappa", threshold=">= 0.70")

@pytest.mark.layer5
@pytest.mark.parametrize("verdict", ["CERTIFIED", "FAIL", "NOT RUN", "INCONCLUSIVE", "MONITOR"])
def test_claim(request, verdict):
    result = ClaimResult(claim=CLAIM, verdict=Verdict(verdict), headline=f"headline {verdict}",
                         subject=verdict.lower().replace(" ", "_"),
                         reason="server could not start" if verdict == "NOT RUN" else "")
    check_claim(request, result)

@pytest.mark.layer1
def test_judges(request):
    check_claim(request, ClaimResult(claim=JUDGES, verdict=Verdict.CERTIFIED, headline="kappa 0.81"))
'''


def test_layer_markers_are_registered_and_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.layer3
        def test_ok(): pass
        @pytest.mark.layer6
        def test_unknown(): pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.stdout.fnmatch_lines(["*'layer6' not found in `markers` configuration option*"])
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.layer1: protocol layer 1*", "@pytest.mark.layer5: protocol layer 5*"])


def test_config_option_is_listed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--servecert-config=PATH*"])


def test_verdicts_map_to_outcomes_and_the_ladder(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CLAIM_TESTS)
    result = pytester.runpytest("-rs")
    # CERTIFIED and MONITOR pass, FAIL fails, NOT RUN and INCONCLUSIVE are skipped (never passed)
    result.assert_outcomes(passed=3, failed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*SKIPPED*NOT RUN*server could not start*"])
    out = result.stdout.str()
    assert "servecert claim ladder" in out
    ladder = out[out.index("servecert claim ladder"):]
    # grouped by layer: layer 1 before layer 5
    assert ladder.index("L1.demo") < ladder.index("L5.demo")
    for verdict in ("CERTIFIED", "FAIL", "NOT RUN", "INCONCLUSIVE", "MONITOR"):
        assert verdict in ladder


def test_ladder_survives_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CLAIM_TESTS)
    result = pytester.runpytest("-n", "2")
    result.assert_outcomes(passed=3, failed=1, skipped=2)
    out = result.stdout.str()
    assert out.count("servecert claim ladder") == 1
    ladder = out[out.index("servecert claim ladder"):]
    assert "L5.demo" in ladder and "L1.demo" in ladder and "NOT RUN" in ladder


def test_no_ladder_without_claims(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "servecert claim ladder" not in result.stdout.str()
