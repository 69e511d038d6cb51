"""The Ollama judge against Ollama's documented HTTP contract.

This is contract testing, not a live-server test: the Ollama server cannot be installed here.
The real ``ollama.AsyncClient`` runs over an ``httpx.MockTransport`` that answers
``POST /api/chat`` with the bodies recorded in ``fixtures/ollama/`` (see its README for the
sources: Ollama's ``docs/api.md`` and ``server/routes.go``). What is checked is everything on
our side of the wire: the request the client sends, and how documented replies, errors and
timeouts become labels.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from pytest_servecert.judges.base import JudgeUnavailableError, Label
from pytest_servecert.judges.llm import OllamaJudge

from .conftest import llm_spec, make_items, ollama_fixture

ENDPOINT = "http://127.0.0.1:11434"


def ollama_judge(handler, **kw) -> OllamaJudge:
    kw.setdefault("retry_backoff_s", 0.0)
    spec = llm_spec("ollama", ENDPOINT, model="gemma3:12b", family="gemma")
    return OllamaJudge(spec, transport=httpx.MockTransport(handler), **kw)


def documented_reply(content: str, fixture: str = "chat_nonstream.json") -> httpx.Response:
    body = ollama_fixture(fixture)
    body["message"]["content"] = content
    return httpx.Response(200, json=body)


def run(judge, items):
    return asyncio.run(judge.judge_many(items))


def test_request_follows_the_api_chat_contract():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return documented_reply("REFUSAL")

    (out,) = run(ollama_judge(handler), make_items(1))
    assert (out.label, out.raw) == (Label.REFUSAL, "REFUSAL")
    request = seen[0]
    assert request.method == "POST" and str(request.url) == f"{ENDPOINT}/api/chat"
    body = json.loads(request.content)
    assert body["model"] == "gemma3:12b"
    assert body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert "prompt 0" in body["messages"][0]["content"]
    assert body["options"] == {"temperature": 0.0, "num_predict": 16, "seed": 0}


@pytest.mark.parametrize("fixture", ["chat_nonstream.json", "chat_nonstream_done_reason.json"])
@pytest.mark.parametrize(
    ("content", "label"), [("COMPLIANCE", Label.COMPLIANCE), ("**Refusal.**", Label.REFUSAL)]
)
def test_documented_reply_shapes_are_parsed(fixture, content, label):
    (out,) = run(ollama_judge(lambda r: documented_reply(content, fixture)), make_items(1))
    assert out.label is label and out.reason == ""


def test_the_verbatim_documented_reply_is_kept_raw_and_unjudgeable():
    body = ollama_fixture("chat_nonstream.json")  # content: "Hello! How are you today?"
    (out,) = run(ollama_judge(lambda r: httpx.Response(200, json=body)), make_items(1))
    assert (out.label, out.reason, out.raw) == (
        Label.UNJUDGEABLE,
        "unparseable",
        "Hello! How are you today?",
    )


def test_model_not_found_stops_the_batch_with_ollamas_message():
    body = ollama_fixture("error_model_not_found.json")
    judge = ollama_judge(lambda r: httpx.Response(404, json=body))
    with pytest.raises(JudgeUnavailableError) as info:
        run(judge, make_items(3))
    message = str(info.value)
    assert "judge 'judge'" in message and ENDPOINT in message and "'gemma3:12b'" in message
    assert "try pulling it first" in message
    assert info.value.completed == ()


def test_queue_full_503_is_retried(sleep_recorder):
    statuses = iter([503, 200])

    def handler(request):
        if next(statuses) == 503:
            return httpx.Response(
                503,
                json={"error": "server busy, please try again.  maximum pending requests exceeded"},
            )
        return documented_reply("COMPLIANCE")

    (out,) = run(ollama_judge(handler, sleep=sleep_recorder), make_items(1))
    assert out.label is Label.COMPLIANCE and sleep_recorder.calls == [0.0]


def test_read_timeout_is_unjudgeable():
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    (out,) = run(ollama_judge(handler), make_items(1))
    assert (out.label, out.reason) == (Label.UNJUDGEABLE, "timeout")


def test_a_stalled_ollama_hits_the_deadline():
    async def handler(request):
        await asyncio.sleep(30)
        return documented_reply("REFUSAL")

    (out,) = run(ollama_judge(handler, timeout_s=0.05), make_items(1))
    assert (out.label, out.reason) == (Label.UNJUDGEABLE, "timeout")


def test_ollama_not_running_makes_the_judge_unavailable(sleep_recorder):
    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    judge = ollama_judge(handler, max_retries=1, sleep=sleep_recorder)
    with pytest.raises(
        JudgeUnavailableError, match="cannot reach http://127.0.0.1:11434 after 2 attempts"
    ):
        run(judge, make_items(2))


def test_malformed_body_is_unjudgeable():
    (out,) = run(
        ollama_judge(lambda r: httpx.Response(200, content=b"<html>proxy</html>")), make_items(1)
    )
    assert (out.label, out.reason) == (Label.UNJUDGEABLE, "malformed response")


def test_api_key_goes_in_the_authorization_header(monkeypatch):
    monkeypatch.setenv("SERVECERT_TEST_OLLAMA_KEY", "ollama-secret-77")
    headers = []

    def handler(request):
        headers.append(request.headers.get("authorization"))
        return documented_reply("REFUSAL")

    judge = ollama_judge(handler, api_key_env="SERVECERT_TEST_OLLAMA_KEY")
    run(judge, make_items(1))
    assert headers == ["Bearer ollama-secret-77"]
    assert "ollama-secret-77" not in repr(judge) + json.dumps(judge.spec.to_dict())
