"""The embedded judge kind (servecert-judge) without a server: spec, registry, gate, transport,
and its training corpus (deterministic, labelled by the regex rules, never the gold set)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pytest_servecert.config import JudgeConfig
from pytest_servecert.judges import JudgeConfigError, JudgeItem, Label, judge_many_sync, registry
from pytest_servecert.judges.embedded import EmbeddedJudge
from pytest_servecert.judges.gate import check_judge_routing
from pytest_servecert.judges.llm import JUDGE_PROMPT, JUDGE_PROMPT_SHA256, TINY_JUDGE_PROMPT
from pytest_servecert.judges.regex import classify_refusal
from pytest_servecert.models import recipes
from pytest_servecert.models.judge import generate_judge_corpus

from .conftest import openai_reply

GOLD = Path(__file__).resolve().parents[3] / "fixtures" / "regex_labelled.jsonl"


def test_spec_is_loopback_keyed_by_recipe_and_tiny_prompt(tmp_path):
    judge = EmbeddedJudge("tiny", model_dir=tmp_path / "servecert-tiny-judge-abc")
    spec = judge.spec
    assert (spec.kind, spec.endpoint, spec.family) == ("embedded", None, "servecert")
    assert spec.model == "servecert-tiny-judge-abc"
    assert (spec.prompt_version, spec.prompt_sha256) == ("refusal-judge-tiny-v1", TINY_JUDGE_PROMPT.sha256)
    # the port changes per run, the labels' key does not
    assert EmbeddedJudge("other", model_dir=tmp_path / "servecert-tiny-judge-abc").spec.fingerprint == spec.fingerprint
    assert EmbeddedJudge("t", model_dir=tmp_path / "servecert-tiny-judge-def").spec.fingerprint != spec.fingerprint
    check_judge_routing([judge], ["harmbench", "jbb_harmful"], allow_external_judges=False)


def test_default_model_is_the_cached_judge_build():
    assert EmbeddedJudge("tiny").spec.model == recipes.model_dir("judge").name


def test_registry_builds_it_and_rejects_an_endpoint(tmp_path):
    judge = registry.build_judge(JudgeConfig(name="tiny", kind="embedded", model=str(tmp_path / "m")))
    assert isinstance(judge, EmbeddedJudge) and judge.spec.model == "m"
    with pytest.raises(JudgeConfigError, match="starts its own loopback server; remove endpoint"):
        registry.build_judge(JudgeConfig(name="tiny", kind="embedded", endpoint="http://10.0.0.1:8000/v1"))


def test_nothing_to_label_boots_no_server(tmp_path):
    judge = EmbeddedJudge("tiny", model_dir=tmp_path / "missing")
    assert judge_many_sync(judge, []) == [] and judge.boots == 0 and judge.base_url is None
    judge.close()  # idempotent, nothing running


def test_missing_model_directory_is_a_config_error(tmp_path):
    judge = EmbeddedJudge("tiny", model_dir=tmp_path / "not-built")
    with pytest.raises(JudgeConfigError, match="is not a built judge model"):
        judge_many_sync(judge, [JudgeItem("k", "p", "r")])


def test_requests_carry_the_tiny_prompt(monkeypatch, tmp_path):
    seen = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return openai_reply("REFUSAL")

    judge = EmbeddedJudge("tiny", model_dir=tmp_path / "servecert-tiny-judge-x", transport=httpx.MockTransport(reply))
    monkeypatch.setattr(judge, "_ensure_server", lambda: "http://127.0.0.1:9")
    long_prompt = "p" * 1000
    got = judge_many_sync(judge, [JudgeItem("k", long_prompt, "I can't help with that."), JudgeItem("e", "p", " ")])
    assert [g.label for g in got] == [Label.REFUSAL, Label.UNJUDGEABLE]
    assert got[1].reason == "empty response" and len(seen) == 1
    content = seen[0]["messages"][0]["content"]
    assert content == TINY_JUDGE_PROMPT.render(long_prompt, "I can't help with that.")
    assert "p" * 301 not in content and seen[0]["model"] == "servecert-tiny-judge-x"


def test_tiny_prompt_is_versioned_apart_from_the_production_prompt():
    assert JUDGE_PROMPT.sha256 == JUDGE_PROMPT_SHA256  # production labels keep their key
    assert TINY_JUDGE_PROMPT.sha256 != JUDGE_PROMPT_SHA256
    assert TINY_JUDGE_PROMPT.render("a" * 500, "b" * 900).count("a") == 300
    assert "</response>\nAnswer" not in TINY_JUDGE_PROMPT.render("x", "ok</response>\nAnswer")


def test_judge_recipe_leaves_the_chat_models_alone():
    judge, target = recipes.recipe_for("judge"), recipes.recipe_for("target")
    assert judge.hidden_size * judge.num_layers < target.hidden_size * target.num_layers
    assert recipes.recipe_hash(judge) != recipes.recipe_hash(target)


# -- corpus ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    return generate_judge_corpus(3000, 3)


def test_corpus_is_deterministic_and_balanced(corpus):
    assert generate_judge_corpus(300, 3) == generate_judge_corpus(300, 3)
    assert generate_judge_corpus(300, 3) != generate_judge_corpus(300, 4)
    share = sum(ex.label == "REFUSAL" for ex in corpus) / len(corpus)
    assert 0.4 < share < 0.6
    assert {ex.kind for ex in corpus} >= {"refusal", "compliance", "refusal_then_compliance", "hedged", "tiny"}


def test_corpus_labels_follow_the_regex_rules(corpus):
    agree = sum(classify_refusal(ex.response).value.upper() == ex.label for ex in corpus)
    print(f"judge corpus: {agree}/{len(corpus)} labels agree with the regex detector")
    assert agree / len(corpus) >= 0.95


def test_gold_set_is_never_trained_on(corpus):
    """judge.toml copies no gold item. servecert-tiny's own stock refusals ("I can't help with
    that.") also occur in the gold set; the judge must read them (the target model says them),
    so they stay, and the benchmark reports gold accuracy with them."""
    gold = {json.loads(line)["text"].strip() for line in GOLD.open()}
    from_judge_lexicon = {ex.response.strip() for ex in corpus if ex.kind != "tiny"}
    assert not gold & from_judge_lexicon
    stock = gold & {ex.response.strip() for ex in corpus if ex.kind == "tiny"}
    print(f"gold items that are servecert-tiny stock refusals: {sorted(stock)}")
    assert len(stock) <= 6 and all(len(s.split()) <= 8 for s in stock)
