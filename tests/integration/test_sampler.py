"""The async sampler against a real vLLM server (the baseline from the shared pool)."""

from __future__ import annotations

import asyncio

import pytest

from pytest_servecert.serving import ChatRequest, Sampler, ServerPool, ServerSpec

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vllm")]


def prompts(n: int, max_tokens: int = 8) -> list[ChatRequest]:
    return [
        ChatRequest(key=f"q{i}", prompt=f"Question {i}: how do plants grow?", max_tokens=max_tokens)
        for i in range(n)
    ]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_every_request_gets_one_result_with_usage(
    server_pool: ServerPool, baseline_spec: ServerSpec, concurrency: int
) -> None:
    server = server_pool.get(baseline_spec)
    requests = prompts(24)
    sampler = Sampler(server.base_url, server.served_model_name, progress=False)
    results = sampler.sample_sync(
        requests, concurrency=concurrency, health_check=server.check_alive
    )
    assert [r.key for r in results] == [r.key for r in requests]
    for result in results:
        assert result.ok, result.error
        assert result.attempts == 1
        assert result.prompt_tokens and result.prompt_tokens > 0
        assert result.completion_tokens is not None and 0 < result.completion_tokens <= 8
        assert result.finish_reason == ("length" if result.completion_tokens == 8 else "stop")


def test_async_stream_delivers_each_result_once(
    server_pool: ServerPool, baseline_spec: ServerSpec
) -> None:
    server = server_pool.get(baseline_spec)

    async def run() -> list[str]:
        async with Sampler(
            server.base_url, server.served_model_name, concurrency=4, progress=False
        ) as sampler:
            return [
                r.key async for r in sampler.stream(prompts(12), health_check=server.check_alive)
            ]

    keys = asyncio.run(run())
    assert sorted(keys) == sorted(r.key for r in prompts(12))


def test_server_rejections_are_error_results_without_retry(
    server_pool: ServerPool, baseline_spec: ServerSpec
) -> None:
    server = server_pool.get(baseline_spec)
    too_long = ChatRequest(
        key="too-long", prompt="Hello", max_tokens=100_000
    )  # > --max-model-len 512
    [result] = Sampler(server.base_url, server.served_model_name, progress=False).sample_sync(
        [too_long]
    )
    assert result.error is not None and result.error.startswith("HTTP 400"), result.error
    assert result.attempts == 1 and result.text is None
    [unknown] = Sampler(server.base_url, "no-such-model", progress=False).sample_sync(prompts(1))
    assert unknown.error is not None and unknown.error.startswith("HTTP 404"), unknown.error
    assert unknown.attempts == 1
