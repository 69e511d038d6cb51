"""Our pytest-benchmark hooks: every saved run carries the stack identity and raw samples.

A pytester run saves a tiny ``pedantic`` benchmark; the JSON pytest-benchmark writes must have
the ``servecert`` stack record (with a field added through ``pytest_servecert_stack_info``),
the samples of the layer-3 benchmark even without ``--benchmark-save-data``, and the stack id in
``machine_info`` (so ``--benchmark-compare`` warns across stacks).
"""

from __future__ import annotations

import json

import pytest

from pytest_servecert import cri
from pytest_servecert.latency_stack import stack_id

TESTS = '''
import pytest

def test_tagged(benchmark):
    benchmark.extra_info["servecert"] = {"measure": "noop", "path": "eager"}
    benchmark.pedantic(lambda: sum(range(100)), rounds=7, warmup_rounds=1)

def test_untagged(benchmark):
    benchmark.pedantic(lambda: None, rounds=3)
'''

CONFTEST = '''
def pytest_servecert_stack_info(config, arm, stack):
    if arm == "layer3":
        stack["driver"] = "none (cpu)"
'''


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # pytest-benchmark disables itself on an xdist worker, which the outer suite may be
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(test_bench=TESTS)
    pytester.makeconftest(CONFTEST)
    return pytester


def _saved(pytester: pytest.Pytester, *args: str) -> dict:
    result = pytester.runpytest("-p", "no:cacheprovider", "--benchmark-storage", "store",
                                "--benchmark-save", "run", *args)
    result.assert_outcomes(passed=2)
    (saved,) = (pytester.path / "store").rglob("*_run.json")
    return json.loads(saved.read_text())


def test_saved_json_records_stack_identity_and_samples(bench: pytest.Pytester) -> None:
    data = _saved(bench, "--servecert-stack-label", "ci-a", "--servecert-compile-mode",
                  "max-autotune")
    record = data["servecert"]
    stack = record["stack"]
    assert record["schema"] == 1 and record["stack_id"] == stack_id(stack)
    assert data["machine_info"]["servecert_stack_id"] == record["stack_id"]
    assert stack["label"] == "ci-a" and stack["compile_mode"] == "max-autotune"
    assert stack["compile_backend"] == "inductor"
    assert stack["extra"] == {"driver": "none (cpu)"}
    for key in ("device", "isa", "torch", "triton", "vllm", "cache_implementation", "code_sha"):
        assert key in stack
    by_name = {b["name"]: b for b in data["benchmarks"]}
    assert len(by_name["test_tagged"]["stats"]["data"]) == 7  # no --benchmark-save-data given
    assert "data" not in by_name["test_untagged"]["stats"]  # other benchmarks untouched
    run = cri.run_from_json(data, "saved")
    assert [(b.measure, b.path, len(b.samples)) for b in run.benchmarks] == [("noop", "eager", 7)]


def test_stack_label_makes_a_new_stack_point(bench: pytest.Pytester) -> None:
    first = _saved(bench, "--servecert-stack-label", "a")["servecert"]["stack_id"]
    for saved in (bench.path / "store").rglob("*.json"):
        saved.unlink()
    second = _saved(bench, "--servecert-stack-label", "b")["servecert"]["stack_id"]
    assert first != second
