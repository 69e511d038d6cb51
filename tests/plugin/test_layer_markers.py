"""Every protocol layer is selectable by its marker: ``-m layerN`` collects ≥ 1 claim test.

Collection only (``--collect-only``): the certification suite parametrises its tests from the
default ``servecert.toml`` without booting anything. A claim test is one whose body ends in
``check_claim``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "certifications"


def _claim_tests() -> set[tuple[str, str]]:
    """(file name, function name) of every certification test that calls check_claim."""
    found = set()
    for path in SUITE.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                calls = {n.func.id for n in ast.walk(node)
                         if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
                if "check_claim" in calls:
                    found.add((path.name, node.name))
    return found


@pytest.mark.parametrize("layer", [1, 2, 3, 4, 5])
def test_every_layer_marker_selects_a_claim_test(pytester: pytest.Pytester, layer: int) -> None:
    result = pytester.runpytest_subprocess(
        str(SUITE), "--collect-only", "-q", "-m", f"layer{layer}", "-p", "no:cacheprovider",
        "--servecert-config", str(ROOT / "servecert.toml"), "--rootdir", str(ROOT),
        # under xdist the child sees a worker environment and pytest-benchmark warns (an error here)
        "-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    claim_tests = _claim_tests()
    selected = set()
    for line in result.stdout.lines:
        if "::" not in line:
            continue
        path, _, name = line.partition("::")
        selected.add((Path(path).name, name.split("[")[0]))
    assert selected & claim_tests, f"-m layer{layer} selects no claim test: {sorted(selected)}"
    # a layer's marker selects its own file (and the verdict snapshot rides with layer 5)
    own = {p.name for p in SUITE.glob(f"test_layer{layer}_*.py")}
    assert {f for f, _ in selected} <= own | ({"test_verdict_snapshot.py"} if layer == 5 else set())
    if layer == 2:  # the default config: spec_draft is speculative, its design has T 0.7 and 1
        ids = {line.split("::", 1)[1] for line in result.stdout.lines if "::" in line}
        assert ids == {
            "test_tais[spec_draft]", "test_tais[spec_draft@T=0.7]", "test_tais[spec_draft@T=1]",
            "test_rtsi[fp8_kv]", "test_rtsi[spec_draft]", "test_no_mechanistic_gate",
        }


def test_the_canary_marker_selects_only_the_canary_claims(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        str(SUITE), "--collect-only", "-q", "-m", "canary", "-p", "no:cacheprovider",
        "--servecert-config", str(ROOT / "servecert.toml"), "--rootdir", str(ROOT),
        "-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    ids = {line.split("::", 1)[1] for line in result.stdout.lines if "::" in line}
    claims = ("harmful_core", "over_refusal", "over_refusal_rolling", "over_refusal_weekly", "stack_drift",
              "judge_kappa")
    assert ids == {f"test_canary[canary.{c}]" for c in claims}
    assert {Path(line.split("::")[0]).name for line in result.stdout.lines if "::" in line} == {"test_canary.py"}
