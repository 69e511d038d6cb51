"""Shared helpers for the judge tests (OpenAI-compatible replies, items, specs)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pytest_servecert.judges.base import JudgeItem, JudgeSpec
from pytest_servecert.judges.llm import DEFAULT_PARAMS, JUDGE_PROMPT_SHA256, JUDGE_PROMPT_VERSION

OLLAMA_FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "ollama"


def openai_reply(content: str | None, *, status: int = 200) -> httpx.Response:
    """A chat.completion body in the shape the OpenAI API (and vLLM) documents."""
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "judge-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102},
    }
    return httpx.Response(status, json=body)


def make_items(n: int, response: str = "Some response.") -> list[JudgeItem]:
    return [JudgeItem(f"k{i}", f"prompt {i}", f"{response} #{i}") for i in range(n)]


def llm_spec(kind: str = "openai", endpoint: str = "http://127.0.0.1:8000/v1", **kw) -> JudgeSpec:
    return JudgeSpec(
        name=kw.pop("name", "judge"),
        kind=kind,
        model=kw.pop("model", "judge-model"),
        endpoint=endpoint,
        family=kw.pop("family", "llama"),
        prompt_version=JUDGE_PROMPT_VERSION,
        prompt_sha256=JUDGE_PROMPT_SHA256,
        params=kw.pop("params", DEFAULT_PARAMS),
    )


def ollama_fixture(name: str) -> dict:
    return json.loads((OLLAMA_FIXTURES / name).read_text(encoding="utf-8"))


class SleepRecorder:
    """Stands in for asyncio.sleep in retry tests: records the backoff, waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep_recorder() -> SleepRecorder:
    return SleepRecorder()
