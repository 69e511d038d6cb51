"""Layer 3 end to end: the real certification file measures two stack points, saves them, and
gates the latency claims on the CRI computed from the saved runs.

Two ``pytest certifications/test_layer3_cri.py -m layer3`` subprocesses run the real compiled
and eager prefill/decode benchmarks of servecert-tiny into one pytest-benchmark storage. Both
compile with the ``aot_eager`` backend (dynamo graphs without inductor's C++ compilation, ~20 s
per run on a quiet machine) and differ only by their stack label: a *declared* stack point on
one torch, not a dependency bump. The real two-torch perturbation is the ``layer3`` /
``layer3-torch214`` tox envs (README, "Layer 3"). The vLLM benchmarks are deselected here
(tests/integration boots vLLM elsewhere).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_servecert import cri
from pytest_servecert.claims.model import Verdict
from pytest_servecert.models import cache_root

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("layer3")]

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "certifications" / "test_layer3_cri.py"
MEASURES = ("prefill", "decode")


def _run(pytester: pytest.Pytester, label: str, backend: str) -> tuple[pytest.RunResult, dict]:
    xml = pytester.path / f"{label}.xml"
    result = pytester.runpytest_subprocess(
        str(SUITE), "-m", "layer3", "-k", "not vllm", "-p", "no:cacheprovider", "-rs",
        "--benchmark-storage", str(pytester.path / "store"), "--benchmark-save", label,
        "--servecert-stack-label", label, "--servecert-compile-backend", backend,
        "--junitxml", str(xml),
    )
    claims = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        for prop in case.iter("property"):
            if prop.get("name") == "servecert_claim":
                data = json.loads(prop.get("value"))
                claims[data["subject"]] = data
    return result, claims


# Read at import, with the real HOME: pytester moves HOME before any fixture of the test runs.
MODEL_CACHE = cache_root().parent


@pytest.fixture
def unpinned(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest-benchmark disables itself when it sees an xdist worker in the environment
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    # point the subprocesses at the built model, or they rebuild it under pytester's HOME
    monkeypatch.setenv("SERVECERT_CACHE_DIR", str(MODEL_CACHE))


def test_two_saved_stacks_gate_the_latency_claims(pytester: pytest.Pytester, unpinned) -> None:
    first, claims = _run(pytester, "ci-a", "aot_eager")
    first.assert_outcomes(passed=4, skipped=2)  # 4 benchmarks; 2 claims: one stack, invalid
    for measure in MEASURES:
        assert claims[measure]["verdict"] == Verdict.INCONCLUSIVE.value
        assert claims[measure]["figures"]["band"] == "invalid"

    second, claims = _run(pytester, "ci-b", "aot_eager")

    # both runs were saved with their stack identity; the claim read them back
    runs = cri.load_runs(pytester.path / "store")
    assert [r.stack["label"] for r in runs] == ["ci-a", "ci-b"]
    assert [r.stack["compile_backend"] for r in runs] == ["aot_eager", "aot_eager"]
    assert runs[0].stack_id != runs[1].stack_id
    for run in runs:
        assert {(b.measure, b.path) for b in run.benchmarks} == {
            (m, p) for m in MEASURES for p in ("compiled", "eager")}
        assert all(len(b.samples) >= 2 for b in run.benchmarks)

    # the in-session claim equals the claim recomputed from the two saved files
    verdicts = []
    for measure in MEASURES:
        reported = claims[measure]
        recomputed = cri.evaluate_measure(runs, measure)
        verdicts.append(recomputed.verdict)
        assert reported["figures"]["n_stacks"] == 2
        assert reported["figures"]["band"] != "invalid"
        assert set(reported["figures"]["worst_pair"]) == {"ci-a", "ci-b"}
        assert set(reported["figures"]["speedups"]) == {"ci-a", "ci-b"}
        assert reported["verdict"] == recomputed.verdict.value
        assert reported["figures"]["cri"] == pytest.approx(recomputed.figures["cri"])
        assert reported["figures"]["eager_cri"] == pytest.approx(recomputed.figures["eager_cri"])
    # and each verdict became its pytest outcome (FAIL fails, CERTIFIED/MONITOR pass, else skip)
    second.assert_outcomes(
        passed=4 + sum(v.passed for v in verdicts),
        failed=sum(v is Verdict.FAIL for v in verdicts),
        skipped=sum(not v.passed and v is not Verdict.FAIL for v in verdicts),
    )
