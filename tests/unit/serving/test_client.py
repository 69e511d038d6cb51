"""The async sampler against httpx.MockTransport: parsing, retries, timeouts, concurrency."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pytest_servecert.serving import (
    ChatRequest,
    Sampler,
    SampleResult,
    ServerDiedError,
    sample_sync,
)


def completion(text: str = "I cannot help with that.", finish: str = "stop") -> dict[str, Any]:
    return {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def requests(n: int, **kw: Any) -> list[ChatRequest]:
    return [ChatRequest(key=f"k{i}", prompt=f"prompt {i}", **kw) for i in range(n)]


def make_sampler(handler: Callable[..., Any], **kw: Any) -> Sampler:
    kw.setdefault("backoff_s", 0.001)
    kw.setdefault("progress", False)
    return Sampler("http://127.0.0.1:8000", "tiny", transport=httpx.MockTransport(handler), **kw)


def key_of(request: httpx.Request) -> str:
    return json.loads(request.content)["messages"][0]["content"]


def test_success_is_parsed_and_the_body_is_openai_shaped() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion())

    reqs = [
        ChatRequest(key="a", prompt="hi", temperature=1.0, seed=42, max_tokens=32, top_p=0.9),
        ChatRequest(
            key="b", messages=({"role": "system", "content": "s"}, {"role": "user", "content": "u"})
        ),
    ]
    results = make_sampler(handler).sample_sync(reqs)
    assert results == [
        SampleResult("a", "I cannot help with that.", "stop", 11, 7, results[0].latency_s, None, 1),
        SampleResult("b", "I cannot help with that.", "stop", 11, 7, results[1].latency_s, None, 1),
    ]
    by_user = {b["messages"][-1]["content"]: b for b in bodies}
    assert by_user["hi"] == {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 32,
        "temperature": 1.0,
        "top_p": 0.9,
        "seed": 42,
    }
    assert "seed" not in by_user["u"]  # no seed given: the server's own seeding
    assert by_user["u"]["messages"][0] == {"role": "system", "content": "s"}


@pytest.mark.parametrize(
    "failure",
    [
        lambda r: httpx.Response(503, text="overloaded"),
        lambda r: httpx.Response(500, text="internal"),
        lambda r: httpx.Response(429, text="slow down"),
        "connect",
        "disconnect",
    ],
    ids=["503", "500", "429", "connect-error", "server-disconnected"],
)
def test_transient_failures_are_retried_then_succeed(failure: Any) -> None:
    seen: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        key = key_of(request)
        seen[key] += 1
        if seen[key] <= 2:
            if failure == "connect":
                raise httpx.ConnectError("connection refused", request=request)
            if failure == "disconnect":
                raise httpx.RemoteProtocolError("Server disconnected", request=request)
            return failure(request)
        return httpx.Response(200, json=completion())

    results = make_sampler(handler, max_retries=3).sample_sync(requests(3))
    assert [r.ok for r in results] == [True, True, True]
    assert [r.attempts for r in results] == [3, 3, 3]
    assert set(seen.values()) == {3}


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            status, json={"error": {"message": "This model's maximum context length is 512"}}
        )

    [result] = make_sampler(handler, max_retries=5).sample_sync(requests(1))
    assert len(calls) == 1
    assert result.attempts == 1
    assert result.text is None
    assert result.error is not None and result.error.startswith(f"HTTP {status}: ")
    assert "maximum context length" in result.error


def test_retries_are_bounded() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502, text="bad gateway")

    [result] = make_sampler(handler, max_retries=2).sample_sync(requests(1))
    assert len(calls) == 3
    assert result.error == "HTTP 502: bad gateway (gave up after 3 attempts)"


def test_timeout_becomes_an_error_result_not_a_hang() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if key_of(request) == "prompt 0":
            await asyncio.sleep(30)
        return httpx.Response(200, json=completion())

    results = make_sampler(handler, timeout=0.2).sample_sync(requests(2))
    assert results[0].error is not None and "timed out" in results[0].error
    assert results[0].attempts == 1  # a slow generation is not re-sent
    assert results[1].ok


def test_malformed_answer_is_an_error_result() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy error</html>")

    [result] = make_sampler(handler).sample_sync(requests(1))
    assert result.error is not None and result.error.startswith("malformed completion")


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_concurrency_bound_is_respected_and_used(concurrency: int) -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=completion())

    results = make_sampler(handler, concurrency=concurrency).sample_sync(
        requests(4 * concurrency + 1)
    )
    assert all(r.ok for r in results)
    assert peak == concurrency


def test_per_call_concurrency_overrides_the_default() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=completion())

    make_sampler(handler, concurrency=8).sample_sync(requests(10), concurrency=2)
    assert peak == 2


def test_stream_yields_in_completion_order_and_sample_in_request_order() -> None:
    # Request i is released only after request i+1 has answered: completion order is reversed.
    n = 4
    answered = [asyncio.Event() for _ in range(n + 1)]
    answered[n].set()

    async def handler(request: httpx.Request) -> httpx.Response:
        i = int(key_of(request).split()[-1])
        await answered[i + 1].wait()
        answered[i].set()
        return httpx.Response(200, json=completion(text=str(i)))

    async def run() -> tuple[list[str], list[str]]:
        streamed = []
        seen_by_callback = []
        sampler = make_sampler(handler, concurrency=n)
        async with sampler:
            async for result in sampler.stream(requests(n)):
                streamed.append(result.key)
            for event in answered[:n]:
                event.clear()
            ordered = await sampler.sample(
                requests(n), on_result=lambda r: seen_by_callback.append(r.key)
            )
        assert seen_by_callback == ["k3", "k2", "k1", "k0"]
        return streamed, [r.key for r in ordered]

    streamed, ordered = asyncio.run(run())
    assert streamed == ["k3", "k2", "k1", "k0"]
    assert ordered == ["k0", "k1", "k2", "k3"]


def test_dead_server_raises_through_health_check_instead_of_retrying() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("connection refused", request=request)

    def health_check() -> None:
        raise ServerDiedError("killed by signal SIGKILL", returncode=-9)

    sampler = make_sampler(handler, max_retries=10, backoff_s=5.0)
    with pytest.raises(ServerDiedError, match="SIGKILL"):
        sampler.sample_sync(requests(20), health_check=health_check)
    assert len(calls) <= 8  # one per request in flight, no retry loop


def test_watchdog_detects_a_dead_server_while_requests_hang() -> None:
    # A dead server whose port still accepts connections: requests would only time out.
    async def handler(request: httpx.Request) -> httpx.Response:
        if key_of(request) == "prompt 0":
            return httpx.Response(200, json=completion())
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    checks = 0

    def health_check() -> None:
        nonlocal checks
        checks += 1
        if checks >= 3:
            raise ServerDiedError("killed by signal SIGKILL", returncode=-9)

    received = []
    sampler = make_sampler(handler, timeout=60, health_interval_s=0.02, concurrency=4)
    with pytest.raises(ServerDiedError):
        for result in sampler.iter_sample(requests(4), health_check=health_check):
            received.append(result.key)
    assert received == ["k0"]  # what completed before the death is delivered first


def test_timeouts_also_consult_the_health_check() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    def health_check() -> None:
        raise ServerDiedError("gone")

    with pytest.raises(ServerDiedError):
        make_sampler(handler, timeout=0.05, health_interval_s=60).sample_sync(
            requests(1), health_check=health_check
        )


def test_async_health_check_is_awaited() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    async def health_check() -> None:
        raise ServerDiedError("gone")

    async def run() -> None:
        await make_sampler(handler).sample(requests(2), health_check=health_check)

    with pytest.raises(ServerDiedError):
        asyncio.run(run())


def test_without_health_check_a_dead_server_gives_error_results() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    results = make_sampler(handler, max_retries=1).sample_sync(requests(3))
    assert [r.error for r in results] == [
        "ConnectError: connection refused (gave up after 2 attempts)"
    ] * 3


def test_iter_sample_stops_cleanly_when_the_consumer_stops() -> None:
    started = threading.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if key_of(request) != "prompt 0":
            started.set()
            await asyncio.sleep(60)  # would hang the test if not cancelled
        return httpx.Response(200, json=completion())

    before = threading.active_count()
    iterator = make_sampler(handler, concurrency=4).iter_sample(requests(4))
    first = next(iterator)
    assert first.key == "k0"
    started.wait(5)
    iterator.close()  # cancels the three requests in flight and joins the loop thread
    assert threading.active_count() == before


def test_iter_sample_reraises_in_the_caller() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def health_check() -> None:
        raise ServerDiedError("gone")

    with pytest.raises(ServerDiedError):
        list(make_sampler(handler).iter_sample(requests(2), health_check=health_check))


def test_api_key_comes_from_the_environment_and_never_leaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVECERT_TEST_KEY", "sk-very-secret")
    auth = []

    def handler(request: httpx.Request) -> httpx.Response:
        auth.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"error": "bad key"})

    [result] = make_sampler(handler, api_key_env="SERVECERT_TEST_KEY").sample_sync(requests(1))
    assert auth == ["Bearer sk-very-secret"]
    assert result.error is not None and "sk-very-secret" not in result.error
    assert "sk-very-secret" not in repr(make_sampler(handler, api_key_env="SERVECERT_TEST_KEY"))
    monkeypatch.delenv("SERVECERT_TEST_KEY")
    with pytest.raises(ValueError, match="'SERVECERT_TEST_KEY' is not set"):
        make_sampler(handler, api_key_env="SERVECERT_TEST_KEY")


def test_base_url_with_v1_suffix_and_module_helper() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        return httpx.Response(200, json=completion())

    [result] = sample_sync(
        "http://127.0.0.1:8000/v1/",
        "tiny",
        requests(1),
        transport=httpx.MockTransport(handler),
        progress=False,
    )
    assert result.ok


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        ChatRequest(key="x")
    with pytest.raises(ValueError, match="exactly one of"):
        ChatRequest(key="x", prompt="p", messages=({"role": "user", "content": "m"},))
    with pytest.raises(ValueError, match="concurrency"):
        Sampler("http://127.0.0.1:1", "m", concurrency=0)
    with pytest.raises(ValueError, match="duplicate request key 'k0'"):
        make_sampler(lambda r: httpx.Response(200)).sample_sync(requests(1) + requests(1))
