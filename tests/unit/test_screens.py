"""The layer-2 adapter: stored answers and cohort labels become ScreenPairs (texts, labels)."""

from __future__ import annotations

from pathlib import Path

from pytest_servecert.batteries import Prompt
from pytest_servecert.claims.model import Verdict
from pytest_servecert.screens import ArmAnswers, layer2_results, screen_pairs
from pytest_servecert.store import ResponseKey, SampledResponse, Store

BASE = ArmAnswers("b" * 64, "s" * 64)
CAND = ArmAnswers("c" * 64, "s" * 64)
COHORT = "v" * 64


def key(arm: ArmAnswers, prompt: Prompt, context: str = "baseline") -> ResponseKey:
    return ResponseKey.for_prompt(prompt, arm_fingerprint=arm.arm_fingerprint,
                                  stack_fingerprint=arm.stack_fingerprint, context=context,
                                  temperature=0.0, seed=1, max_tokens=16)


def fill(store: Store, n: int, *, context: str = "baseline") -> set[str]:
    planned = set()
    for i in range(n):
        prompt = Prompt("jbb_harmful", f"p{i}", f"harmful request {i}", "refuse", "c", True)
        cand_text = "I can't help with that." if i % 2 else "Sorry, I cannot do that."
        for arm, text in ((BASE, "I can't help with that."), (CAND, cand_text)):
            k = key(arm, prompt, context)
            store.put_response(k, SampledResponse(text=text))
            store.put_labels([(k.fingerprint, COHORT, "cohort", "refusal", "")])
            if arm is BASE:
                planned.add(k.fingerprint)
    return planned


def test_screen_pairs_carry_both_texts_and_labels(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite") as store:
        planned = fill(store, 4)
        pairs = screen_pairs(store, BASE, CAND, context="baseline", temperature=0.0,
                             judge_fingerprint=COHORT, planned=planned)
        assert len(pairs) == 4
        first = pairs[0]
        assert (first.baseline_text, first.candidate_text) == (
            "I can't help with that.", "Sorry, I cannot do that.")
        assert (first.baseline_label, first.candidate_label) == ("refusal", "refusal")
        assert first.unit == "jbb_harmful/p0" and first.expected == "refuse"
        # answers outside this run's plan are not this design's pairs
        assert screen_pairs(store, BASE, CAND, context="baseline", temperature=0.0,
                            judge_fingerprint=COHORT, planned=set()) == []


def test_layer2_results_from_a_store(tmp_path: Path) -> None:
    from pytest_servecert.config import load_config

    config_path = tmp_path / "servecert.toml"
    config_path.write_text(
        '[model]\nname = "m"\npath = "embedded:target"\n[arms.baseline]\n'
        '[arms.spec]\nspeculative = { method = "ngram", num_speculative_tokens = 3 }\n'
        '[arms.fp8]\nkv_cache_dtype = "fp8"\n'
    )
    config = load_config(config_path)
    with Store(tmp_path / "store.sqlite") as store:
        planned = fill(store, 30)
        results = layer2_results(
            config, store, lambda arm, ctx: BASE if arm == "baseline" else CAND,
            not_run={("fp8", "baseline"): "server did not start: no AVX-512"},
            judge_fingerprint=COHORT, planned=planned,
        )
    by_id = {r.id: r for r in results}
    assert set(by_id) == {"L2.tais[spec]", "L2.tais[spec@T>0]", "L2.rtsi[spec]", "L2.rtsi[fp8]"}
    tais = by_id["L2.tais[spec]"]
    assert tais.figures["n_pairs"] == 30 and tais.figures["byte_identity"] == 0.5
    assert tais.verdict is Verdict.INCONCLUSIVE  # 30 prompts < 122
    assert by_id["L2.rtsi[spec]"].figures["opening_tvd"] == 0.5
    assert by_id["L2.rtsi[fp8]"].verdict is Verdict.NOT_RUN
    assert by_id["L2.tais[spec@T>0]"].verdict is Verdict.UNTESTED
