"""A fixed-latency OpenAI-compatible stand-in server (stdlib only), for fault tests and benchmarks.

It answers what a vLLM replica answers to an endpoint arm (``/v1/models``, ``/version``,
``/metrics`` with ``vllm:cache_config_info``, ``/v1/chat/completions``) after ``latency_s``,
with a deterministic answer per prompt. It is *not* a model: the serving tests that certify
use real vLLM servers; this exists for what a real server cannot be made to do on cue and for
measuring the replica pool's own overhead (``benchmarks/replica_throughput.py``).

Usage::

    with StandIn(latency_s=0.05) as server:
        print(server.url)                # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["StandIn"]


class StandIn:
    """One stand-in replica on a free loopback port (see the module docstring).

    Parameters
    ----------
    latency_s : float
        Seconds every completion takes (the server handles requests concurrently).
    model : str
        The served model name.
    cache_dtype, prefix_caching, version :
        What ``/metrics`` and ``/version`` state.
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.05,
        model: str = "standin",
        cache_dtype: str = "auto",
        prefix_caching: bool = True,
        version: str = "0.32.0",
    ) -> None:
        self.latency_s = latency_s
        self.model = model
        self.cache_dtype = cache_dtype
        self.prefix_caching = prefix_caching
        self.version = version
        self.completions = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @staticmethod
    def answer(prompt: str) -> str:
        """Deterministic per prompt: a refusal for about half of them, an answer otherwise."""
        if hashlib.sha256(prompt.encode()).digest()[0] % 2:
            return "I'm sorry, but I can't help with that."
        return f"Sure. Here is an answer about: {prompt[:40]}"

    def metrics(self) -> str:
        return (
            "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
            "# TYPE vllm:cache_config_info gauge\n"
            f'vllm:cache_config_info{{block_size="16",cache_dtype="{self.cache_dtype}",'
            f'enable_prefix_caching="{self.prefix_caching}",engine="0"}} 1.0\n'
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK add ~40 ms

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    data = {"data": [{"id": standin.model, "object": "model", "root": f"/models/{standin.model}",
                                      "max_model_len": 2048}]}
                    self._send(200, json.dumps(data).encode())
                elif self.path == "/version":
                    self._send(200, json.dumps({"version": standin.version}).encode())
                elif self.path == "/metrics":
                    self._send(200, standin.metrics().encode(), "text/plain; version=0.0.4")
                elif self.path == "/health":
                    self._send(200, b"")
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path != "/v1/chat/completions" or body.get("model") != standin.model:
                    self._send(404, b'{"error": "unknown model or path"}')
                    return
                time.sleep(standin.latency_s)
                text = standin.answer(body["messages"][-1]["content"])
                with standin._lock:
                    standin.completions += 1
                data = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 8, "completion_tokens": 8}}
                self._send(200, json.dumps(data).encode())

        return Handler

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (a "dead replica": new connections are refused)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m pytest_servecert.serving.standin [--latency S]``: prints its URL, serves until killed."""
    import argparse

    parser = argparse.ArgumentParser(description="fixed-latency OpenAI-compatible stand-in")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--model", default="standin")
    args = parser.parse_args(argv)
    server = StandIn(latency_s=args.latency, model=args.model)
    print(server.url, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
