"""Minimal vLLM launcher and chat client for exercising ``servecert-tiny``.

Used by ``benchmarks/tiny_model_rates.py`` and ``tests/integration/test_tiny_model.py``
to check the built model end to end. It follows the project's server rules
(argv list, 127.0.0.1, own process group, hard start-up deadline, log tail in
the error, teardown by PID) but is deliberately small: the certification
suite's engines live in ``serving/vllm.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["ServerError", "TinyServer", "chat_many", "serve"]

# Settings measured on this project's CPU machines (see HELPERS/DESIGN §5).
BASE_ARGS = (
    "--enforce-eager",
    "--dtype", "float32",
    "--kv-cache-memory-bytes", "67108864",
    "--seed", "0",
)


class ServerError(RuntimeError):
    """The server did not become ready; the message carries the log tail."""


@dataclass(frozen=True)
class TinyServer:
    """A running server: where to reach it and which model name to ask for."""

    base_url: str
    model: str
    pid: int
    log_path: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def serve(
    model_dir: Path,
    extra_args: Sequence[str] = (),
    *,
    max_model_len: int = 2048,
    startup_timeout: float = 600.0,
    python: str = sys.executable,
) -> Iterator[TinyServer]:
    """Run ``vllm.entrypoints.openai.api_server`` on ``model_dir`` for the ``with`` block.

    The process gets its own process group and is terminated (SIGTERM, then
    SIGKILL) on exit, whatever happened inside the block.
    """
    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="servecert-tiny-vllm-"))
    log_path = work / "server.log"
    name = Path(model_dir).name
    argv = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", str(max_model_len),
        *BASE_ARGS,
        *extra_args,
    ]
    env = dict(os.environ)
    env.update(
        VLLM_ENABLE_V1_MULTIPROCESSING="0",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_CACHE_ROOT=str(work / "vllm-cache"),
        TORCHINDUCTOR_CACHE_DIR=str(work / "inductor-cache"),
        VLLM_CPU_OMP_THREADS_BIND="nobind",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise ServerError(f"vLLM exited with code {proc.returncode} during start-up:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{base_url}/v1/models", timeout=2.0, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"vLLM not ready after {startup_timeout:.0f} s:\n{_tail(log_path)}")
            time.sleep(1.0)
        yield TinyServer(base_url=base_url, model=name, pid=proc.pid, log_path=log_path)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


async def _chat_all(
    server: TinyServer,
    prompts: Sequence[str],
    *,
    temperature: float,
    max_tokens: int,
    seed: int | None,
    concurrency: int,
    timeout: float,
) -> list[str | None]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=timeout, trust_env=False) as client:

        async def one(text: str) -> str | None:
            body: dict[str, object] = {
                "model": server.model,
                "messages": [{"role": "user", "content": text}],
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
            if seed is not None:
                body["seed"] = seed
            async with sem:
                resp = await client.post("/v1/chat/completions", json=body)
            if resp.status_code != 200:
                return None  # e.g. prompt longer than --max-model-len
            return str(resp.json()["choices"][0]["message"]["content"] or "")

        return list(await asyncio.gather(*(one(p) for p in prompts)))


def chat_many(
    server: TinyServer,
    prompts: Sequence[str],
    *,
    temperature: float = 0.0,
    max_tokens: int = 48,
    seed: int | None = None,
    concurrency: int = 16,
    timeout: float = 300.0,
) -> list[str | None]:
    """Send each prompt as one user turn; ``None`` where the server rejected the request."""
    return asyncio.run(
        _chat_all(
            server, prompts, temperature=temperature, max_tokens=max_tokens, seed=seed,
            concurrency=concurrency, timeout=timeout,
        )
    )
