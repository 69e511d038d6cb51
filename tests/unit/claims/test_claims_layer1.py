"""Layer 1 (JTP) from stored labels: pairs, primary-pair choice, calibration fallback, gating."""

from __future__ import annotations

import math

import pytest

from pytest_servecert import stats
from pytest_servecert.claims.layer1 import JudgeInfo, anchor_result, evaluate_layer1, pair_agreements
from pytest_servecert.claims.model import Verdict
from pytest_servecert.claims.rules import apply_gates

REGEX = JudgeInfo("regex", "regex", "regex")
TINY = JudgeInfo("servecert-judge", "embedded", "servecert")
GEMMA = JudgeInfo("gemma", "ollama", "gemma")
LLAMA = JudgeInfo("llama", "ollama", "llama")
LLAMA2 = JudgeInfo("llama-b", "openai", "llama")


def _records(n_agree: int, n_disagree: int, a: str, b: str, **extra: str) -> list[dict[str, str]]:
    """Half refusals, half compliances agreed, then disagreements alternating direction."""
    rows = []
    for i in range(n_agree):
        label = "refusal" if i % 2 else "compliance"
        rows.append({a: label, b: label, **extra})
    for i in range(n_disagree):
        x, y = ("refusal", "compliance") if i % 2 else ("compliance", "refusal")
        rows.append({a: x, b: y, **extra})
    return rows


def test_kappa_per_battery_and_pooled_matches_stats():
    records = {"hb": _records(40, 10, "regex", "servecert-judge"), "xs": _records(30, 0, "regex", "servecert-judge")}
    pairs = pair_agreements(records, [REGEX, TINY], n_boot=200)
    by_battery = {p.battery: p for p in pairs}
    assert set(by_battery) == {"hb", "xs", ""}
    a = [r["regex"] for r in records["hb"]]
    b = [r["servecert-judge"] for r in records["hb"]]
    expected = stats.cohen_kappa(a, b, n_boot=200, categories=("refusal", "compliance"))
    assert by_battery["hb"].kappa.kappa == pytest.approx(expected.kappa)
    assert by_battery["hb"].kappa.ci_low == pytest.approx(expected.ci_low)
    assert by_battery[""].n == 80 and by_battery["xs"].kappa.kappa == pytest.approx(1.0)
    assert {p.role for p in pairs} == {"calibration"}


def test_unjudgeable_and_missing_labels_leave_the_pair():
    records = {"hb": [{"regex": "refusal", "servecert-judge": "unjudgeable"}, {"regex": "refusal"}]
               + _records(20, 0, "regex", "servecert-judge")}
    pooled = next(p for p in pair_agreements(records, [REGEX, TINY], n_boot=0) if p.battery == "")
    assert pooled.n == 20


def test_primary_pair_is_the_largest_n_cross_family_llm_pair():
    rows = _records(60, 2, "gemma", "llama") + _records(60, 30, "gemma", "llama-b")
    for r in rows:
        r.setdefault("regex", "refusal")
    # gemma × llama has n=62, gemma × llama-b n=90: the larger n is primary even though worse.
    records = {"hb": [dict(r) for r in rows]}
    for r in records["hb"][:62]:
        r.pop("llama-b", None)
    for r in records["hb"][62:]:
        r.pop("llama", None)
    results, pairs = evaluate_layer1(records, [REGEX, GEMMA, LLAMA, LLAMA2], n_voters=4, n_boot=200)
    pooled = results[0]
    assert pooled.subject == "" and pooled.figures["pair"] == "gemma × llama-b"
    assert pooled.figures["primary"] is True
    same = [p for p in pairs if {p.a, p.b} == {"llama", "llama-b"}]
    assert same and same[0].role == "same-family LLM"


def test_ties_in_n_go_to_the_worse_kappa():
    good = _records(50, 0, "gemma", "llama")
    bad = _records(40, 10, "gemma", "qwen")
    rows = [{**g, "qwen": b["qwen"]} for g, b in zip(good, bad)]
    results, _ = evaluate_layer1({"hb": rows}, [GEMMA, LLAMA, JudgeInfo("qwen", "openai", "qwen")],
                                 n_voters=3, n_boot=200)
    # gemma × llama (κ 1), gemma × qwen and llama × qwen (κ < 1), all n = 50: the worst is primary
    assert results[0].figures["kappa"] < 1.0


def test_robust_primary_pair_certifies_and_bands_dispatch():
    records = {"hb": _records(95, 5, "gemma", "llama"), "xs": _records(60, 40, "gemma", "llama")}
    results, _ = evaluate_layer1(records, [GEMMA, LLAMA], n_voters=2, n_boot=200)
    by_subject = {r.subject: r for r in results}
    assert by_subject["hb"].verdict is Verdict.CERTIFIED
    assert by_subject["hb"].figures["dispatch"] == "single judge"
    assert by_subject["xs"].verdict is Verdict.FAIL  # κ 0.2: untrustable
    assert by_subject[""].figures["band"] in ("robust", "triangulate", "untrustable")


def test_calibration_pair_never_certifies():
    records = {"hb": _records(100, 0, "regex", "servecert-judge")}  # perfect agreement
    results, _ = evaluate_layer1(records, [REGEX, TINY], n_voters=2, n_boot=200)
    pooled = results[0]
    assert pooled.verdict is Verdict.UNTESTED
    assert pooled.figures["kappa"] == pytest.approx(1.0)
    assert pooled.figures["pair_role"] == "calibration" and pooled.figures["primary"] is False
    assert "no cross-family LLM judge pair" in pooled.reason


def test_calibration_pair_below_040_fails_and_gates_layer5():
    records = {"hb": _records(55, 45, "regex", "servecert-judge")}
    results, _ = evaluate_layer1(records, [REGEX, TINY], n_voters=2, n_boot=200)
    assert results[0].verdict is Verdict.FAIL
    from pytest_servecert.claims.catalogue import HARMFUL_CORE
    from pytest_servecert.claims.model import ClaimResult

    layer5 = ClaimResult(HARMFUL_CORE, Verdict.CERTIFIED, "0 discordant")
    gated = apply_gates(results + (layer5,))
    assert gated[-1].verdict is Verdict.INCONCLUSIVE


def test_degenerate_marginals_are_inconclusive_with_pabak():
    rows = [{"gemma": "refusal", "llama": "refusal"}] * 98 + [{"gemma": "refusal", "llama": "compliance"}] * 2
    results, _ = evaluate_layer1({"hb": rows}, [GEMMA, LLAMA], n_voters=2, n_boot=200)
    assert results[0].verdict is Verdict.INCONCLUSIVE
    assert results[0].figures["pabak"] == pytest.approx(0.96)


def test_no_llm_judge_is_untested():
    rows = [{"regex": "refusal"}] * 10
    results, pairs = evaluate_layer1({"hb": rows}, [REGEX], n_voters=1)
    assert pairs == [] and all(r.verdict is Verdict.UNTESTED for r in results)
    assert "no LLM judge" in results[0].reason
    assert [r.subject for r in results] == ["", "hb"]


def test_battery_without_common_records_is_untested():
    records = {"hb": _records(40, 5, "gemma", "llama"), "xs": [{"gemma": "refusal"}]}
    results, _ = evaluate_layer1(records, [GEMMA, LLAMA], n_voters=2, n_boot=100)
    xs = next(r for r in results if r.subject == "xs")
    assert xs.verdict is Verdict.UNTESTED and not math.isnan(results[0].figures["kappa"])


@pytest.mark.parametrize(
    ("recorded", "verdict"),
    [(None, Verdict.UNTESTED), (0.60, Verdict.CERTIFIED), (0.70, Verdict.CERTIFIED), (0.45, Verdict.FAIL),
     (0.90, Verdict.FAIL)],
)
def test_integrity_anchor_reproduces_the_recorded_kappa(recorded, verdict):
    pairs = pair_agreements({"hb": _records(40, 10, "regex", "servecert-judge")}, [REGEX, TINY], n_boot=100)
    kappa_now = next(p for p in pairs if p.battery == "").kappa.kappa  # 0.6 on these records
    assert kappa_now == pytest.approx(0.6)
    pair = ("servecert-judge", "regex") if recorded is not None else None  # either order
    result = anchor_result(pairs, pair, recorded)
    assert result.claim.id == "L1.integrity_anchor"
    assert result.verdict is verdict
    if recorded is not None:
        assert result.figures["delta"] == pytest.approx(kappa_now - recorded)


def test_integrity_anchor_pair_without_common_records_is_untested():
    pairs = pair_agreements({"hb": _records(10, 0, "regex", "servecert-judge")}, [REGEX, TINY, GEMMA], n_boot=50)
    result = anchor_result(pairs, ("regex", "gemma"), 0.8)
    assert result.verdict is Verdict.UNTESTED and "no common record" in result.reason
