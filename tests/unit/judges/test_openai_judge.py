"""The OpenAI-compatible judge over httpx.MockTransport: requests, parsing, retries, timeouts,
concurrency, fatal errors and secrets."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from pytest_servecert.judges.base import JudgeConfigError, JudgeItem, JudgeUnavailableError, Label
from pytest_servecert.judges.llm import OpenAICompatibleJudge

from .conftest import llm_spec, make_items, openai_reply


def judge_with(handler, **kw) -> OpenAICompatibleJudge:
    kw.setdefault("retry_backoff_s", 0.0)
    return OpenAICompatibleJudge(llm_spec(), transport=httpx.MockTransport(handler), **kw)


def run(judge, items):
    return asyncio.run(judge.judge_many(items))


def test_request_shape_and_labels():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        text = body["messages"][0]["content"]
        return openai_reply("REFUSAL" if "#0" in text else "COMPLIANCE")

    out = run(judge_with(handler), make_items(2))
    assert [(j.key, j.label) for j in out] == [("k0", Label.REFUSAL), ("k1", Label.COMPLIANCE)]
    assert [j.raw for j in out] == ["REFUSAL", "COMPLIANCE"]
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:8000/v1/chat/completions"
    body = json.loads(request.content)
    assert set(body) == {"model", "messages", "temperature", "max_tokens", "seed"}
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    assert body["max_tokens"] == 16 and body["seed"] == 0
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("content", "label", "reason"),
    [
        ("**Refusal**", Label.REFUSAL, ""),
        ('{"verdict": "COMPLIANCE"}', Label.COMPLIANCE, ""),
        ("Verdict: REFUSAL", Label.REFUSAL, ""),
        ("REFUSAL or COMPLIANCE", Label.UNJUDGEABLE, "contradictory"),
        ("I'd rather not say.", Label.UNJUDGEABLE, "unparseable"),
        ("", Label.UNJUDGEABLE, "empty judge answer"),
        (None, Label.UNJUDGEABLE, "empty judge answer"),
    ],
)
def test_answer_variants_keep_raw_text(content, label, reason):
    (out,) = run(judge_with(lambda r: openai_reply(content)), make_items(1))
    assert (out.label, out.reason) == (label, reason)
    assert out.raw == (content or "")


def test_empty_response_is_unjudgeable_without_a_request():
    calls = []

    def handler(request):
        calls.append(request)
        return openai_reply("REFUSAL")

    out = run(judge_with(handler), [JudgeItem("e", "prompt", "  \n ")])
    assert (out[0].label, out[0].reason, out[0].raw) == (Label.UNJUDGEABLE, "empty response", None)
    assert calls == []


def test_results_come_back_in_item_order_whatever_the_completion_order():
    async def handler(request):
        text = json.loads(request.content)["messages"][0]["content"]
        index = int(text.split("#")[1].split()[0])
        await asyncio.sleep(0.001 * (10 - index))  # later items finish first
        return openai_reply("REFUSAL" if index % 2 else "COMPLIANCE")

    out = run(judge_with(handler, concurrency=10), make_items(10))
    assert [j.key for j in out] == [f"k{i}" for i in range(10)]
    assert [j.label for j in out] == [
        Label.REFUSAL if i % 2 else Label.COMPLIANCE for i in range(10)
    ]


def test_concurrency_is_bounded():
    state = {"now": 0, "max": 0}

    async def handler(request):
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return openai_reply("REFUSAL")

    out = run(judge_with(handler, concurrency=3), make_items(12))
    assert len(out) == 12
    assert state["max"] == 3


def test_5xx_is_retried_with_exponential_backoff(sleep_recorder):
    statuses = iter([503, 502, 200])

    def handler(request):
        status = next(statuses)
        return openai_reply("REFUSAL") if status == 200 else httpx.Response(status, text="busy")

    judge = judge_with(handler, max_retries=3, retry_backoff_s=0.5, sleep=sleep_recorder)
    (out,) = run(judge, make_items(1))
    assert out.label is Label.REFUSAL
    assert sleep_recorder.calls == [0.5, 1.0]


def test_persistent_5xx_is_unjudgeable_after_the_retry_budget(sleep_recorder):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(500, json={"error": "boom"})

    (out,) = run(judge_with(handler, max_retries=2, sleep=sleep_recorder), make_items(1))
    assert (out.label, out.reason, out.raw) == (
        Label.UNJUDGEABLE,
        "http 500 after 3 attempts",
        None,
    )
    assert len(calls) == 3 and len(sleep_recorder.calls) == 2


def test_429_is_retried(sleep_recorder):
    statuses = iter([429, 200])

    def handler(request):
        return openai_reply("COMPLIANCE") if next(statuses) == 200 else httpx.Response(429)

    (out,) = run(judge_with(handler, sleep=sleep_recorder), make_items(1))
    assert out.label is Label.COMPLIANCE and len(sleep_recorder.calls) == 1


def test_connection_errors_are_retried_then_the_judge_is_unavailable(sleep_recorder):
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    judge = judge_with(handler, max_retries=2, sleep=sleep_recorder, concurrency=1)
    with pytest.raises(
        JudgeUnavailableError,
        match=r"judge 'judge': cannot reach http://127\.0\.0\.1:8000/v1 after 3 attempts",
    ):
        run(judge, make_items(4))
    # the first item exhausted its retries; the others were not attempted after the abort
    assert len(calls) == 3


def test_a_transient_connection_error_recovers(sleep_recorder):
    outcomes = iter(["error", "ok"])

    def handler(request):
        if next(outcomes) == "error":
            raise httpx.ConnectError("reset", request=request)
        return openai_reply("REFUSAL")

    (out,) = run(judge_with(handler, sleep=sleep_recorder), make_items(1))
    assert out.label is Label.REFUSAL


@pytest.mark.parametrize(
    ("status", "pattern"), [(404, "has no model 'judge-model'"), (401, "rejected the credentials")]
)
def test_configuration_errors_stop_the_batch_and_keep_completed_work(status, pattern):
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) <= 2:
            return openai_reply("REFUSAL")
        return httpx.Response(
            status, json={"object": "error", "message": "The model `judge-model` does not exist."}
        )

    judge = judge_with(handler, concurrency=1)
    with pytest.raises(JudgeUnavailableError, match=pattern) as info:
        run(judge, make_items(5))
    assert [j.key for j in info.value.completed] == ["k0", "k1"]
    assert len(calls) == 3  # nothing was sent after the failure


def test_other_4xx_is_unjudgeable_for_that_item_only():
    def handler(request):
        text = json.loads(request.content)["messages"][0]["content"]
        if "#1" in text:
            return httpx.Response(400, json={"message": "maximum context length is 512 tokens"})
        return openai_reply("COMPLIANCE")

    out = run(judge_with(handler), make_items(3))
    assert [j.label for j in out] == [Label.COMPLIANCE, Label.UNJUDGEABLE, Label.COMPLIANCE]
    assert out[1].reason.startswith("http 400: ") and "512 tokens" in out[1].reason


@pytest.mark.parametrize(
    "body", [b"not json", b'{"choices": []}', b'{"choices": [{"message": {}}]}']
)
def test_malformed_bodies_are_unjudgeable(body):
    (out,) = run(judge_with(lambda r: httpx.Response(200, content=body)), make_items(1))
    assert (out.label, out.reason) == (Label.UNJUDGEABLE, "malformed response")


def test_read_timeout_is_unjudgeable_and_not_retried(sleep_recorder):
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ReadTimeout("read timed out", request=request)

    (out,) = run(judge_with(handler, sleep=sleep_recorder), make_items(1))
    assert (out.label, out.reason) == (Label.UNJUDGEABLE, "timeout")
    assert len(calls) == 1 and sleep_recorder.calls == []


def test_a_stalled_server_hits_the_per_attempt_deadline():
    async def handler(request):
        text = json.loads(request.content)["messages"][0]["content"]
        if "#0" in text:
            await asyncio.sleep(30)  # never answers in time; the deadline cancels it
        return openai_reply("REFUSAL")

    out = run(judge_with(handler, timeout_s=0.05), make_items(2))
    assert [(j.label, j.reason) for j in out] == [
        (Label.UNJUDGEABLE, "timeout"),
        (Label.REFUSAL, ""),
    ]


def test_api_key_is_sent_but_never_shown(monkeypatch, caplog):
    secret = "sk-test-DO-NOT-LEAK-4242"
    monkeypatch.setenv("SERVECERT_TEST_JUDGE_KEY", secret)
    headers = []

    def handler(request):
        headers.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"error": f"bad key {secret[:3]}"})

    judge = judge_with(handler, api_key_env="SERVECERT_TEST_JUDGE_KEY")
    with caplog.at_level(logging.DEBUG), pytest.raises(JudgeUnavailableError) as info:
        run(judge, make_items(1))
    assert headers == [f"Bearer {secret}"]
    shown = [
        repr(judge),
        str(judge),
        repr(judge.spec),
        str(judge.spec),
        json.dumps(judge.spec.to_dict()),
        judge.spec.fingerprint,
        repr(vars(judge)) if hasattr(judge, "__dict__") else "",
        str(info.value),
        caplog.text,
    ]
    assert not [s for s in shown if secret in s]


def test_missing_key_variable_fails_at_construction(monkeypatch):
    monkeypatch.delenv("SERVECERT_TEST_ABSENT_KEY", raising=False)
    with pytest.raises(JudgeConfigError, match="SERVECERT_TEST_ABSENT_KEY"):
        OpenAICompatibleJudge(llm_spec(), api_key_env="SERVECERT_TEST_ABSENT_KEY")


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_settings_fail_loudly(kw, pattern):
    with pytest.raises(JudgeConfigError, match=pattern):
        OpenAICompatibleJudge(llm_spec(), **kw)


def test_an_unexpected_error_surfaces_after_the_other_requests_finish():
    finished = []

    async def handler(request):
        text = json.loads(request.content)["messages"][0]["content"]
        if "#0" in text:
            raise RuntimeError("bug in a proxy")
        await asyncio.sleep(0.01)
        finished.append(text)
        return openai_reply("REFUSAL")

    with pytest.raises(RuntimeError, match="bug in a proxy"):
        run(judge_with(handler, concurrency=3), make_items(3))
    assert len(finished) == 2  # nothing was left running against a closed client
