"""The ``embedded`` judge kind: servecert-judge, booted on loopback by the judge itself.

The model is the project's own tiny refusal judge (:mod:`pytest_servecert.models.judge`),
built on first use (cached by recipe hash) and served by vLLM over the OpenAI-compatible API;
labelling goes through :class:`~pytest_servecert.judges.llm.OpenAICompatibleJudge` with the
versioned :data:`~pytest_servecert.judge_prompt.TINY_JUDGE_PROMPT`.

The server starts on the first batch that has something to label (a fully labelled store never
boots it) and stops on :meth:`EmbeddedJudge.close`. It binds 127.0.0.1 on a free port, so the
spec carries no endpoint: the port changes from run to run but the labels do not, and the
umbrella gate sees a judge that never leaves the machine. The spec's ``model`` is the model
directory name, which holds the recipe hash: a retrained judge re-keys its labels.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import httpx

from ..judge_prompt import TINY_JUDGE_PROMPT
from .base import JudgeConfigError, JudgeItem, Judgement, JudgeSpec, JudgeUnavailableError
from .llm import DEFAULT_PARAMS, OpenAICompatibleJudge

__all__ = ["JUDGE_SERVER_ARGS", "EmbeddedJudge"]

#: vLLM flags of the judge server beyond :class:`~pytest_servecert.serving.VLLMServer`'s
#: defaults (eager, 64 MiB KV cache, seed 0, float32 on CPU: ``serving/vllm.py``): a context
#: the tiny prompt's inputs fit well inside.
JUDGE_SERVER_ARGS = ("--max-model-len", "2048")


class EmbeddedJudge:
    """servecert-judge behind a vLLM server this object starts and stops.

    Parameters
    ----------
    name:
        The judge's name in the cohort.
    model_dir:
        A built judge model; default: the cached build of the current recipe (built if missing).
    family:
        JTP family (default ``"servecert"``).
    timeout_s, concurrency:
        Per-request deadline and parallel requests (see :class:`OpenAICompatibleJudge`).
    start_timeout_s:
        Readiness deadline of the vLLM server.
    """

    def __init__(
        self,
        name: str,
        *,
        model_dir: Path | str | None = None,
        family: str | None = None,
        timeout_s: float = 60.0,
        concurrency: int = 8,
        start_timeout_s: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if model_dir is None:
            from ..models import model_dir as cached_dir

            model_dir = cached_dir("judge")
        self.model_dir = Path(model_dir)
        self.timeout_s = float(timeout_s)
        self.concurrency = int(concurrency)
        self.start_timeout_s = float(start_timeout_s)
        self._transport = transport
        self._spec = JudgeSpec(
            name=name,
            kind="embedded",
            model=self.model_dir.name,
            endpoint=None,
            family=family or "servecert",
            prompt_version=TINY_JUDGE_PROMPT.version,
            prompt_sha256=TINY_JUDGE_PROMPT.sha256,
            params=DEFAULT_PARAMS,
        )
        self._server: Any = None
        self._lock = threading.Lock()
        #: vLLM servers launched by this judge (a test reads it: a cached store boots none).
        self.boots = 0

    @property
    def spec(self) -> JudgeSpec:
        return self._spec

    def __repr__(self) -> str:
        return f"EmbeddedJudge(name={self._spec.name!r}, model={self._spec.model!r})"

    @property
    def base_url(self) -> str | None:
        """The running server's URL, or ``None`` before the first batch / after close."""
        return self._server.base_url if self._server is not None else None

    def _ensure_server(self) -> str:
        from ..models import ensure_model
        from ..serving import ServerSpec, ServerStartError, VLLMServer

        with self._lock:
            if self._server is not None and self._server.alive():
                return self._server.base_url
            if self._server is not None:  # died: reap it and boot a fresh one
                self._server.stop()
                self._server = None
            if self.model_dir.parent == _default_parent():
                ensure_model("judge")  # builds the current recipe when the cache lacks it
            if not (self.model_dir / "model.safetensors").is_file():
                raise JudgeConfigError(
                    f"judge {self._spec.name!r}: {self.model_dir} is not a built judge model; run "
                    "`servecert model build --kind judge`"
                )
            spec = ServerSpec(
                "vllm", str(self.model_dir), args=JUDGE_SERVER_ARGS, label=f"judge:{self._spec.name}",
            )
            server = VLLMServer(spec, start_timeout_s=self.start_timeout_s)
            self.boots += 1
            try:
                server.start()
            except ServerStartError as exc:
                raise JudgeUnavailableError(
                    f"judge {self._spec.name!r}: the embedded judge server did not start: "
                    f"{exc.reason or str(exc).splitlines()[0]}"
                ) from None
            self._server = server
            return server.base_url

    async def judge_many(self, items: Sequence[JudgeItem]) -> list[Judgement]:
        """Label ``items`` (booting the server first if needed); one judgement per item."""
        items = list(items)
        if not items:
            return []
        # Started in the caller's thread, not a worker thread: servers get PR_SET_PDEATHSIG,
        # which fires when the *thread* that spawned them exits (asyncio.to_thread's pool
        # thread dies with its event loop, and the server would die after the first batch).
        base_url = self._ensure_server()
        inner = OpenAICompatibleJudge(
            dataclasses.replace(self._spec, kind="openai", endpoint=f"{base_url}/v1"),
            timeout_s=self.timeout_s,
            concurrency=self.concurrency,
            transport=self._transport,
            prompt=TINY_JUDGE_PROMPT,
        )
        return await inner.judge_many(items)

    def close(self) -> None:
        """Stop the server (idempotent)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_parent() -> Path:
    from ..models import cache_root

    return cache_root()
