"""Report evidence read from a real store: bounded discordant examples and judge agreement."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pytest_servecert.batteries import Prompt
from pytest_servecert.report import evidence
from pytest_servecert.report.evidence import cell_examples, judge_agreement
from pytest_servecert.run.pair import count_pairs, pair_cell
from pytest_servecert.run.results import DiscordantPair
from pytest_servecert.store import ResponseKey, SampledResponse, Store

JUDGE = "cohort-fp"
SAFE, UNSAFE = "refusal", "compliance"


def _key(arm: str, prompt: Prompt) -> ResponseKey:
    return ResponseKey(
        arm_fingerprint=arm, stack_fingerprint="stack", context="baseline", battery=prompt.battery,
        prompt_id=prompt.prompt_id, expected="refuse", temperature=0.0, seed=0, max_tokens=16,
        top_p=1.0, replicate=0, prompt_sha256=hashlib.sha256(prompt.text.encode()).hexdigest(),
    )


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as s:
        yield s


def test_examples_are_bounded_per_direction_and_carry_both_answers(store: Store, monkeypatch) -> None:
    monkeypatch.setattr(evidence, "MAX_CHARS", 40)
    prompts = {}
    # 5 degraded, 3 improved, 4 concordant pairs
    plan = ["b"] * 5 + ["c"] * 3 + ["a"] * 4
    for i, kind in enumerate(plan):
        prompt = Prompt("harmbench", f"p{i}", f"prompt {i} <b>", "refuse", "cat", True)
        base, cand = _key("base", prompt), _key("cand", prompt)
        base_label = SAFE if kind in "ab" else UNSAFE
        cand_label = SAFE if kind in "ac" else UNSAFE
        store.put_responses([(base, SampledResponse(f"base says {base_label} " + "x" * 80)),
                             (cand, SampledResponse(f"cand says {cand_label}"))])
        store.put_labels([(base.fingerprint, JUDGE, "cohort", base_label, ""),
                          (cand.fingerprint, JUDGE, "cohort", cand_label, "")])
        prompts[base.fingerprint] = prompt
    kept: list = []
    count_pairs(store.iter_pairs("base", "cand", JUDGE), discordant=kept)
    assert [cell for _, cell in kept] == [pair_cell(p) for p, _ in kept] == [1] * 5 + [2] * 3
    pairs = [
        DiscordantPair(
            prompt_id=p.prompt_id, cell=cell, expected=p.expected,
            prompt=prompts[p.baseline_fingerprint].text,
            baseline_label=p.baseline_label, candidate_label=p.candidate_label,
            baseline_text=store.get_response(p.baseline_fingerprint).text,
            candidate_text=store.get_response(p.candidate_fingerprint).text,
        )
        for p, cell in kept
    ]
    examples = cell_examples(pairs)
    directions = [e["direction"] for e in examples]
    assert directions.count("degraded") == evidence.EXAMPLES_PER_DIRECTION == 2
    assert directions.count("improved") == 2
    degraded = next(e for e in examples if e["direction"] == "degraded")
    assert degraded["baseline"] == {"label": SAFE, "text": "base says refusal " + "x" * 22 + " […]"}
    assert degraded["candidate"] == {"label": UNSAFE, "text": "cand says compliance"}
    assert degraded["prompt"].startswith("prompt ") and degraded["expected"] == "refuse"


def test_agreement_needs_two_judges() -> None:
    assert judge_agreement({"regex": {"r1": SAFE}}) == ()
    assert judge_agreement({}) == ()


def test_agreement_of_two_judges() -> None:
    a = {f"r{i}": SAFE if i % 2 else UNSAFE for i in range(20)}
    b = dict(a, r0=SAFE, r2=SAFE)  # two disagreements
    b["only-b"] = SAFE
    (row,) = judge_agreement({"regex": a, "llm": b})
    assert (row["a"], row["b"], row["n"]) == ("llm", "regex", 20)
    assert row["agreement"] == pytest.approx(18 / 20)
    assert row["kappa"] == pytest.approx(0.8)  # p_o 0.9, p_e 0.5
    assert row["pabak"] == pytest.approx(0.8)


def test_agreement_with_one_shared_label_has_no_kappa() -> None:
    (row,) = judge_agreement({"a": {"r1": SAFE, "r2": SAFE}, "b": {"r1": SAFE, "r2": SAFE}})
    assert row["agreement"] == 1.0 and row["kappa"] is None
