"""The release gate seen from a user's run (pytester): every verdict × policy, [gate] require,
the closing block, and verdicts that stay honest in the ladder and JUnit properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

VERDICT_TESTS = '''
import pytest
from pytest_servecert.assertions import check_claim
from pytest_servecert.claims.model import Claim, ClaimResult, Layer, Tier, Verdict

CORE = Claim(id="L5.harmful_core", layer=Layer.SERVING_STATE, tier=Tier.SUPPORTED,
             statement="core", statistic="count", threshold="== 0")
TAIS = Claim(id="L2.tais", layer=Layer.BEHAVIOURAL_SCREENS, tier=Tier.SUPPORTED,
             statement="tais", statistic="h", threshold="< 0.1")

@pytest.mark.layer5
def test_required(request):
    check_claim(request, ClaimResult(claim=CORE, verdict=Verdict({verdict!r}), headline="headline",
                                     subject="fp8_kv", reason="{reason}"))

@pytest.mark.layer2
def test_not_required_by_default(request):
    check_claim(request, ClaimResult(claim=TAIS, verdict=Verdict.UNTESTED, headline="T > 0",
                                     reason="the claim applies at T = 0 only"))
'''

MINIMAL_CONFIG = """
[arms.baseline]
[arms.candidate]
kv_cache_dtype = "fp8"
{gate}
"""

VERDICTS = ["CERTIFIED", "MONITOR", "FAIL", "NOT RUN", "INCONCLUSIVE", "UNTESTED", "SCAFFOLDED-ONLY"]
# exit status by (verdict, policy): only CERTIFIED and MONITOR pass a strict gate; under
# "report" the test outcome alone decides (FAIL fails, the others are skips).
EXPECTED = {
    **{(v, "strict"): pytest.ExitCode.TESTS_FAILED for v in VERDICTS},
    **{(v, "report"): pytest.ExitCode.OK for v in VERDICTS},
    ("CERTIFIED", "strict"): pytest.ExitCode.OK,
    ("MONITOR", "strict"): pytest.ExitCode.OK,
    ("FAIL", "report"): pytest.ExitCode.TESTS_FAILED,
}


def _write(pytester: pytest.Pytester, verdict: str, reason: str = "why it is so", gate: str = "") -> None:
    pytester.makepyfile(test_claims=VERDICT_TESTS.format(verdict=verdict, reason=reason))
    if gate:
        pytester.makefile(".toml", servecert=MINIMAL_CONFIG.format(gate=gate))


@pytest.mark.parametrize("policy", ["strict", "report"])
@pytest.mark.parametrize("verdict", VERDICTS)
def test_every_verdict_under_every_policy(pytester: pytest.Pytester, verdict: str, policy: str) -> None:
    _write(pytester, verdict, reason=f"reason for {verdict}")
    result = pytester.runpytest(f"--servecert-gate={policy}")
    assert result.ret == EXPECTED[(verdict, policy)]
    out = result.stdout.str()
    block = out[out.index("servecert gate ("):]
    if verdict in ("CERTIFIED", "MONITOR"):
        assert f"servecert gate ({policy}): PASSED: all 1 required claims" in block
        assert "L5.harmful_core[fp8_kv]:" not in block
    else:
        head = "NOT PASSED" if policy == "strict" else "1 of 1 required claims are not"
        assert head in block.splitlines()[0]
        # the unmet claim is named with its verdict and its reason
        result.stdout.fnmatch_lines([f"  L5.harmful_core[fp8_kv]: {verdict}: reason for {verdict}"])
    # the layer-2 UNTESTED claim is not required by default and never listed as unmet
    assert "L2.tais" not in block
    # the verdict itself stays honest in the ladder
    ladder = out[out.index("servecert claim ladder"):out.index("servecert gate (")]
    assert verdict in ladder


def test_strict_is_the_default_policy(pytester: pytest.Pytester) -> None:
    _write(pytester, "NOT RUN", reason="server did not start: FP8 KV cache on CPU requires AVX-512")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(skipped=2)  # the verdicts are skips; the gate alone fails the session
    result.stdout.fnmatch_lines([
        "*servecert gate (strict): NOT PASSED: 1 of 1 required claims*",
        "  L5.harmful_core[fp8_kv]: NOT RUN: server did not start: FP8 KV cache on CPU requires AVX-512",
    ])


def test_require_names_claims_and_patterns(pytester: pytest.Pytester) -> None:
    _write(pytester, "CERTIFIED", gate='[gate]\nrequire = ["L2.*"]')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # L2.tais is UNTESTED and now required
    result.stdout.fnmatch_lines(["  L2.tais: UNTESTED: the claim applies at T = 0 only"])


def test_require_by_result_id_is_literal(pytester: pytest.Pytester) -> None:
    # brackets are literal (result ids contain them), not glob character classes
    _write(pytester, "NOT RUN", gate='[gate]\nrequire = ["L5.harmful_core[other]"]')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*not evaluated in this session (deselected): L5.harmful_core[[]other]*"])


def test_config_policy_and_option_override(pytester: pytest.Pytester) -> None:
    _write(pytester, "INCONCLUSIVE", gate='[gate]\npolicy = "report"')
    assert pytester.runpytest().ret == pytest.ExitCode.OK
    assert pytester.runpytest("--servecert-gate=strict").ret == pytest.ExitCode.TESTS_FAILED


def test_empty_require_gates_nothing(pytester: pytest.Pytester) -> None:
    _write(pytester, "NOT RUN", gate="[gate]\nrequire = []")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*servecert gate (strict): PASSED: all 0 required claims*"])


def test_a_typo_in_require_is_a_config_error(pytester: pytest.Pytester) -> None:
    _write(pytester, "CERTIFIED", gate='[gate]\nrequire = ["L5.harmfull_core"]')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # fail closed: no gate, no pass
    result.stdout.fnmatch_lines(
        ["servecert: *servecert.toml: [[]gate] require = 'L5.harmfull_core': expected a claim id*"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_junit_properties_keep_the_verdict(pytester: pytest.Pytester) -> None:
    _write(pytester, "NOT RUN")
    result = pytester.runpytest("--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    verdicts = [p.get("value") for p in root.iter("property") if p.get("name") == "servecert_verdict"]
    assert "NOT RUN" in verdicts and "servecert_claim_id" in props


def test_gate_under_xdist(pytester: pytest.Pytester) -> None:
    _write(pytester, "NOT RUN")
    result = pytester.runpytest("-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.stdout.str().count("servecert gate (strict): NOT PASSED") == 1


def test_no_gate_without_claims(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    assert "servecert gate" not in result.stdout.str()


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
BAD_CONFIG = """
[arms.baseline]
[arms.cand]
kv_cache_dtype = "fp8"
[claims]
margin_pp = nan
[engine]
args = ["--host", "0.0.0.0"]
"""


def _suite(pytester: pytest.Pytester) -> None:
    """The real certification suite's conftest and layer-5 tests, with a bad servecert.toml."""
    suite = pytester.mkdir("certifications")
    for name in ("conftest.py", "test_layer5_serving_state.py"):
        (suite / name).write_text((ROOT / "certifications" / name).read_text())
    pytester.makefile(".toml", servecert=BAD_CONFIG)


@pytest.mark.parametrize("args", [("certifications",), ()], ids=["conftest-at-start", "conftest-in-collection"])
def test_a_bad_config_is_a_usage_error_without_traceback(pytester: pytest.Pytester, args) -> None:
    _suite(pytester)
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "_pytest" not in text
    assert "[claims] margin_pp = nan" in text
    if args:  # validated before collection: one line per problem, all of them, nothing else
        problems = [line for line in result.stderr.lines if "servecert.toml" in line]
        assert len(problems) == 2 and "--host is set by servecert" in problems[1]


CANARY_TESTS = '''
import pytest
from pytest_servecert.assertions import check_claim
from pytest_servecert.claims.catalogue import CANARY_HARMFUL_CORE, CANARY_JUDGE_KAPPA, CANARY_STACK_DRIFT
from pytest_servecert.claims.model import ClaimResult, Verdict

pytestmark = pytest.mark.canary

def test_core(request):
    check_claim(request, ClaimResult(CANARY_HARMFUL_CORE, Verdict({core!r}), "b 0", reason="core reason"))

def test_stack(request):
    check_claim(request, ClaimResult(CANARY_STACK_DRIFT, Verdict.CERTIFIED, "identity unchanged"))

def test_kappa(request):
    check_claim(request, ClaimResult(CANARY_JUDGE_KAPPA, Verdict.NOT_RUN, "one judge", reason="one judge"))
'''


@pytest.mark.parametrize(("core", "gate", "expected", "unmet"), [
    # default require names no canary claim: harmful core, over-refusal and stack drift decide
    ("CERTIFIED", "", pytest.ExitCode.OK, []),
    ("INCONCLUSIVE", "", pytest.ExitCode.TESTS_FAILED, ["canary.harmful_core: INCONCLUSIVE: core reason"]),
    # canary.*: κ NOT RUN is required too, and fails closed
    ("CERTIFIED", '[gate]\nrequire = ["L1.*", "L5.*", "canary.*"]', pytest.ExitCode.TESTS_FAILED,
     ["canary.judge_kappa: NOT RUN: one judge"]),
    ("INCONCLUSIVE", '[gate]\nrequire = ["canary.stack_drift"]', pytest.ExitCode.OK, []),
])
def test_a_canary_session_is_decided_by_the_canary_entries_of_require(
    pytester: pytest.Pytester, core: str, gate: str, expected: pytest.ExitCode, unmet: list[str]
) -> None:
    pytester.makepyfile(test_canary_claims=CANARY_TESTS.format(core=core))
    pytester.makefile(".toml", servecert=MINIMAL_CONFIG.format(gate=gate))
    result = pytester.runpytest("-m", "canary")
    assert result.ret == expected, result.stdout.str()
    block = result.stdout.str()[result.stdout.str().index("servecert gate ("):]
    for line in unmet:
        assert f"  {line}" in block
    if not unmet:
        assert "PASSED: all" in block.splitlines()[0]
    assert "L5.*" not in block.split("required:")[0]  # as `servecert canary`: L1.*/L5.* do not apply to a canary
