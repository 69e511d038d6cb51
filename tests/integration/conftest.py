"""Shared real-vLLM fixtures: the embedded models, prompts and one session-wide server pool.

Each vLLM CPU boot costs ~20-40 s and ~1.5 GB, so the serving tests share servers through
one :class:`ServerPool` (one process per distinct spec, at most two alive) and build their
specs with the ``make_spec`` fixture, so equal configurations map to the same process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pytest_servecert.serving import ChatRequest, Sampler, Server, ServerPool, ServerSpec

# Short prompts in the embedded model's domain: harmful requests it refuses, benign ones
# it answers. A shared system prompt makes the prefix-caching requests share blocks.
PROMPTS = (
    "How do I bake bread at home?",
    "Explain how to pick a lock to break into a house.",
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "How can I make a weapon at home?",
    "Tell me how to hack my neighbour's wifi.",
    "How do plants grow?",
    "Give me some tips for studying.",
)
SYSTEM = (
    "You are a careful assistant. Answer helpfully when a request is safe, and refuse "
    "politely when it asks for help with harm. Keep every answer short and clear. "
) * 3

SpecFactory = Callable[..., ServerSpec]


@pytest.fixture(scope="session")
def target_model() -> Path:
    from pytest_servecert.models import ensure_model

    return ensure_model("target")


@pytest.fixture(scope="session")
def draft_model() -> Path:
    from pytest_servecert.models import ensure_model

    return ensure_model("draft")


@pytest.fixture(scope="session")
def server_pool() -> Iterator[ServerPool]:
    """Servers shared by the serving tests; all torn down at session end."""
    with ServerPool(max_live=2, start_timeout_s=420) as pool:
        yield pool


@pytest.fixture(scope="session")
def make_spec(target_model: Path) -> SpecFactory:
    """``make_spec(*args, label=, env=)``: a vLLM spec on the target model."""

    def make(*args: str, label: str = "", env: dict[str, str] | None = None) -> ServerSpec:
        return ServerSpec("vllm", str(target_model), args=args, env=env or {}, label=label)

    return make


@pytest.fixture(scope="session")
def baseline_spec(make_spec: SpecFactory) -> ServerSpec:
    return make_spec(label="baseline")


def chat_requests(kind: str = "plain", **options: object) -> list[ChatRequest]:
    """The :data:`PROMPTS` as requests; ``kind="prefixed"`` adds the shared system prompt."""
    if kind == "plain":
        return [ChatRequest(key=f"p{i}", prompt=p, **options) for i, p in enumerate(PROMPTS)]  # type: ignore[arg-type]
    return [
        ChatRequest(
            key=f"s{i}",
            messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": p}),
            **options,  # type: ignore[arg-type]
        )
        for i, p in enumerate(PROMPTS)
    ]


def texts(server: Server, requests: list[ChatRequest], *, concurrency: int = 1) -> list[str]:
    """Sample ``requests`` and return the texts, failing on any error result."""
    sampler = Sampler(server.base_url, server.served_model_name, progress=False)
    results = sampler.sample_sync(
        requests, concurrency=concurrency, health_check=server.check_alive
    )
    errors = [r.error for r in results if not r.ok]
    assert not errors, errors
    return [r.text or "" for r in results]


@pytest.fixture(scope="session")
def baseline_greedy(server_pool: ServerPool, baseline_spec: ServerSpec) -> dict[str, list[str]]:
    """The baseline's greedy answers (one request at a time): the reference for every arm."""
    server = server_pool.get(baseline_spec)
    return {
        "plain": texts(server, chat_requests("plain", max_tokens=32)),
        "prefixed": texts(server, chat_requests("prefixed", max_tokens=32)),
    }


def metric(server: Server, name: str) -> float:
    """Sum of a Prometheus counter/gauge over its label sets from ``/metrics``."""
    total = 0.0
    for line in httpx.get(f"{server.base_url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def speculative(config: dict[str, object]) -> tuple[str, str]:
    return ("--speculative-config", json.dumps(config, sort_keys=True))


def has_avx512_or_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """What vLLM's CPU FP8 KV cache needs, read from the CPU flags."""
    for line in Path(cpuinfo).read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return "avx512f" in flags or "amx_tile" in flags
    return False


class Helpers:
    """The helpers above, for test modules (conftest modules are not imported directly)."""

    chat_requests = staticmethod(chat_requests)
    texts = staticmethod(texts)
    metric = staticmethod(metric)
    speculative = staticmethod(speculative)
    has_avx512_or_amx = staticmethod(has_avx512_or_amx)


@pytest.fixture(scope="session")
def serving() -> type[Helpers]:
    return Helpers
