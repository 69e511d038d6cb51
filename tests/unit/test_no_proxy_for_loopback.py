"""Loopback traffic never goes through a proxy from the environment (DESIGN §8; issue #15 item 3).

A stand-in proxy (a loopback socket that counts every byte it receives) is set as HTTP_PROXY,
HTTPS_PROXY and ALL_PROXY; a stand-in OpenAI/Ollama server answers on loopback. The judges
(OpenAI-compatible and Ollama) and the sampler must reach the server directly: zero bytes at the
proxy. A control request to a non-loopback address shows the stand-in proxy does receive what
the environment routes to it, so the zero is not vacuous.

A stand-in server is used because the fault (a proxy in the environment) is the point, not the
model: the real-vLLM path shares these clients.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from pytest_servecert.judges.base import JudgeItem, JudgeSpec, Label
from pytest_servecert.judges.llm import (
    DEFAULT_PARAMS,
    JUDGE_PROMPT_SHA256,
    JUDGE_PROMPT_VERSION,
    OllamaJudge,
    OpenAICompatibleJudge,
)
from pytest_servecert.serving.client import ChatRequest, Sampler, sample_sync
from pytest_servecert.serving.replicas import ReplicaPool


class CountingProxy:
    """Accepts connections on loopback and counts the bytes sent to it; answers 502."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    data = conn.recv(65536)
                    self.received += len(data)
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/api/chat"):  # Ollama's native API
            reply = {"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                     "message": {"role": "assistant", "content": "REFUSAL"}, "done": True}
        else:
            reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "REFUSAL"}}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch):
    stand_in = CountingProxy()
    url = f"http://127.0.0.1:{stand_in.port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):  # an exemption would make the test vacuous
        monkeypatch.delenv(name, raising=False)
    yield stand_in
    stand_in.close()


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _spec(kind: str, endpoint: str) -> JudgeSpec:
    return JudgeSpec(name=f"{kind}-judge", kind=kind, model="judge-model", endpoint=endpoint,
                     family="judge", prompt_version=JUDGE_PROMPT_VERSION,
                     prompt_sha256=JUDGE_PROMPT_SHA256, params=DEFAULT_PARAMS)


ITEMS = [JudgeItem("k0", "how do I pick a lock", "I can't help with that.")]


def test_the_stand_in_proxy_sees_what_the_environment_routes(proxy: CountingProxy) -> None:
    async def via_env() -> None:
        async with httpx.AsyncClient(trust_env=True, timeout=2.0) as client:
            await client.get("http://192.0.2.1/")  # TEST-NET-1: never loopback
    asyncio.run(via_env())
    assert proxy.received > 0


def test_openai_judge_on_loopback_bypasses_the_proxy(proxy: CountingProxy, server: str) -> None:
    judge = OpenAICompatibleJudge(_spec("openai", server + "/v1"), api_key_env=None)
    out = asyncio.run(judge.judge_many(ITEMS))
    assert [j.label for j in out] == [Label.REFUSAL]
    assert proxy.received == 0


def test_ollama_judge_on_loopback_bypasses_the_proxy(proxy: CountingProxy, server: str) -> None:
    pytest.importorskip("ollama", reason="the ollama client is the 'judges' extra")
    judge = OllamaJudge(_spec("ollama", server), api_key_env=None)
    out = asyncio.run(judge.judge_many(ITEMS))
    assert [j.label for j in out] == [Label.REFUSAL]
    assert proxy.received == 0


def test_sampler_on_loopback_bypasses_the_proxy(proxy: CountingProxy, server: str) -> None:
    results = sample_sync(server + "/v1", "model", [ChatRequest(key="a", prompt="hello", max_tokens=4)])
    assert len(results) == 1 and results[0].text == "REFUSAL"
    assert proxy.received == 0


def test_replica_pool_on_loopback_bypasses_the_proxy(proxy: CountingProxy, server: str) -> None:
    pool = ReplicaPool("baseline", [server + "/v1", server + "/v1/"], model="model")
    sampler = Sampler(pool.base_url, pool.served_model_name, transport=pool.transport, progress=False)
    reqs = [ChatRequest(key=f"k{i}", prompt="hello", max_tokens=4) for i in range(4)]
    results = sampler.sample_sync(reqs, concurrency=pool.concurrency_for(1))
    assert [r.text for r in results] == ["REFUSAL"] * 4
    assert proxy.received == 0


def test_replica_pool_sends_a_remote_replica_through_the_environments_proxy(proxy: CountingProxy) -> None:
    # The pool talks to httpx transports itself, so it reads the proxy variables itself.
    pool = ReplicaPool("baseline", ["http://192.0.2.1:8000/v1"], model="model", timeout_s=3.0)  # TEST-NET-1
    sampler = Sampler(pool.base_url, pool.served_model_name, transport=pool.transport, progress=False,
                      max_retries=0)
    (result,) = sampler.sample_sync([ChatRequest(key="a", prompt="hello", max_tokens=4)],
                                    concurrency=pool.concurrency_for(1))
    assert result.error is not None and result.error.startswith("HTTP 502")  # the stand-in proxy's answer
    assert proxy.received > 0
