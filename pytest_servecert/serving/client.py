"""Async OpenAI-compatible chat sampler: the batch-size axis and the only serving HTTP seam.

One :class:`httpx.AsyncClient` (pool sized to the concurrency) sends every request of a
run; an :class:`asyncio.Semaphore` bounds requests in flight, which *is* the serving-state
``batch_size`` axis. Results come back as they complete, so the caller stores each one
before the next arrives (``runner.py``: every response is stored before it is judged).

Per request: bounded retries with exponential backoff on connection errors, HTTP 5xx and
429; never on other 4xx; a per-attempt timeout that turns into an error result. A server
that dies mid-run surfaces as :class:`~pytest_servecert.serving.engine.ServerDiedError`
(through ``health_check``), never as a hang.

Usage::

    sampler = Sampler(server.base_url, server.served_model_name, concurrency=8)
    for result in sampler.iter_sample(requests, health_check=server.check_alive):
        store.put(result)                      # sync callers (the runner)

    async with Sampler(url, model) as sampler:  # async callers
        async for result in sampler.stream(requests):
            ...
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import queue
import re
import sys
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from ..http_connect import ssl_context
from ..http_retry import RetryPolicy, retryable_status

__all__ = ["ChatRequest", "HealthCheck", "SampleResult", "Sampler", "sample_sync"]

HealthCheck = Callable[[], None | Awaitable[None]]
"""Raises (e.g. ``ServerDiedError``) when the server is gone; called after transport errors."""

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to sample.

    Give ``messages`` (OpenAI chat format) or ``prompt`` (sent as one user message).
    ``seed=None`` leaves the server's seeding alone.
    """

    key: str
    messages: tuple[Mapping[str, str], ...] = ()
    prompt: str | None = None
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int = 256
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if bool(self.messages) == (self.prompt is not None):
            raise ValueError(f"ChatRequest {self.key!r}: give exactly one of messages= or prompt=")
        object.__setattr__(self, "messages", tuple(self.messages))

    def body(self, model: str) -> dict[str, Any]:
        """The JSON body of ``POST /v1/chat/completions``."""
        messages = [dict(m) for m in self.messages] or [{"role": "user", "content": self.prompt}]
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        return body


@dataclass(frozen=True)
class SampleResult:
    """One answer, or why there is none (``error`` set, ``text`` ``None``).

    ``latency_s`` is the duration of the last attempt (request sent to answer parsed).
    """

    key: str
    text: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Sampler:
    """Sends chat completions to one OpenAI-compatible server.

    Parameters
    ----------
    base_url : str
        ``http://127.0.0.1:8000`` (a trailing ``/v1`` is accepted).
    model : str
        The served model name.
    concurrency : int
        Requests in flight at once (the batch-size axis); overridable per call.
    timeout : float
        Seconds per attempt, start to finish.
    max_retries : int
        Retries after the first attempt (connection errors, 5xx, 429).
    backoff_s : float
        First retry delay; doubles per retry, capped at ``backoff_max_s``.
    api_key_env : str, optional
        Name of the environment variable holding a bearer token. The token is read here
        and never appears in results, errors or logs.
    transport : httpx.AsyncBaseTransport, optional
        For tests (``httpx.MockTransport``).
    progress : bool, optional
        tqdm bar on stderr; default on only when stderr is a TTY and ``CI`` is unset.
    health_interval_s : float
        How often a ``health_check`` given to :meth:`stream` runs as a watchdog.
    """

    base_url: str
    model: str
    _: KW_ONLY
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    api_key_env: str | None = None
    transport: httpx.AsyncBaseTransport | None = None
    progress: bool | None = None
    health_interval_s: float = 1.0
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _headers: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(
                f"Sampler.concurrency: expected an integer >= 1, got {self.concurrency!r}"
            )
        if self.max_retries < 0:
            raise ValueError(
                f"Sampler.max_retries: expected an integer >= 0, got {self.max_retries!r}"
            )
        if self.timeout <= 0:
            raise ValueError(f"Sampler.timeout: expected seconds > 0, got {self.timeout!r}")
        url = self.base_url.rstrip("/")
        self.base_url = url.removesuffix("/v1")
        if self.api_key_env is not None:
            token = os.environ.get(self.api_key_env)
            if not token:
                raise ValueError(
                    f"Sampler.api_key_env: environment variable {self.api_key_env!r} is not set"
                )
            self._headers["Authorization"] = f"Bearer {token}"

    @property
    def retry_policy(self) -> RetryPolicy:
        """This sampler's retries as the project's one policy (``http_retry.py``)."""
        return RetryPolicy(self.max_retries, self.backoff_s, self.backoff_max_s)

    # -- client lifetime -----------------------------------------------------------------------

    def _new_client(self, concurrency: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        host = urlsplit(self.base_url).hostname or ""
        # Loopback servers never go through a proxy from the environment; a given
        # transport (a replica pool, serving/replicas.py) decides per replica itself.
        trust_env = self.transport is None and host not in _LOOPBACK_HOSTS
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            limits=limits,
            timeout=httpx.Timeout(self.timeout),
            transport=self.transport,
            trust_env=trust_env,
            verify=ssl_context(trust_env=trust_env),  # one per process, not one per cell
        )

    async def __aenter__(self) -> Self:
        self._client = self._new_client(self.concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- public API ----------------------------------------------------------------------------

    async def stream(
        self,
        requests: Iterable[ChatRequest],
        *,
        concurrency: int | None = None,
        health_check: HealthCheck | None = None,
    ) -> AsyncIterator[SampleResult]:
        """Yield results as they complete (not in request order).

        With ``health_check``, it is called after every failed attempt and, as a
        watchdog, every ``health_interval_s`` while requests are in flight (a dead server
        whose port still accepts connections would otherwise only show as timeouts).
        Whatever it raises (``ServerDiedError``) is raised here after the results that
        completed before it; requests still in flight are cancelled. Stopping the
        iteration early cancels them too.
        """
        reqs = list(requests)
        width = concurrency or self.concurrency
        if width < 1:
            raise ValueError(f"concurrency: expected an integer >= 1, got {width!r}")
        own_client = self._client is None
        client = self._new_client(width) if own_client else self._client
        assert client is not None
        semaphore = asyncio.Semaphore(width)
        done: asyncio.Queue[SampleResult | _Raised] = asyncio.Queue()
        aborted: list[BaseException] = []  # after the first failure, send nothing more

        def abort(exc: BaseException) -> None:
            if not aborted:
                aborted.append(exc)
                done.put_nowait(_Raised(exc))

        async def bounded(req: ChatRequest) -> None:
            async with semaphore:
                if aborted:
                    return
                try:
                    done.put_nowait(await self._sample_one(client, req, health_check))
                except Exception as exc:  # noqa: BLE001 - re-raised by the consumer below
                    abort(exc)

        async def watchdog(check: HealthCheck) -> None:
            while not aborted:
                await asyncio.sleep(self.health_interval_s)
                try:
                    await _call(check)
                except Exception as exc:  # noqa: BLE001 - re-raised by the consumer below
                    abort(exc)

        bar = _progress_bar(len(reqs), self.progress)
        tasks = [asyncio.ensure_future(bounded(r)) for r in reqs]
        if health_check is not None and reqs:
            tasks.append(asyncio.ensure_future(watchdog(health_check)))
        try:
            for _ in range(len(reqs)):
                item = await done.get()
                if isinstance(item, _Raised):
                    raise item.exc
                if bar is not None:
                    bar.update(1)
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if bar is not None:
                bar.close()
            if own_client:
                await client.aclose()

    async def sample(
        self,
        requests: Iterable[ChatRequest],
        *,
        concurrency: int | None = None,
        health_check: HealthCheck | None = None,
        on_result: Callable[[SampleResult], object] | None = None,
    ) -> list[SampleResult]:
        """All results, in request order; ``on_result`` sees each one as it completes."""
        reqs = _unique(requests)
        by_key: dict[str, SampleResult] = {}
        async for result in self.stream(reqs, concurrency=concurrency, health_check=health_check):
            if on_result is not None:
                on_result(result)
            by_key[result.key] = result
        return [by_key[r.key] for r in reqs]

    def iter_sample(
        self,
        requests: Iterable[ChatRequest],
        *,
        concurrency: int | None = None,
        health_check: HealthCheck | None = None,
    ) -> Iterator[SampleResult]:
        """Synchronous :meth:`stream`: results as they complete, for non-async callers.

        The event loop runs in a helper thread so sampling continues while the caller
        stores a result. Closing the iterator early (``break``, an exception, Ctrl-C)
        cancels the requests in flight before it returns.
        """
        if self._client is not None:
            raise RuntimeError(
                "iter_sample() runs its own event loop: call it outside `async with sampler`"
            )
        out: queue.Queue[Any] = queue.Queue()
        done = object()
        loop = asyncio.new_event_loop()
        pump_task: asyncio.Task[None] | None = None
        ready = threading.Event()

        async def pump() -> None:
            try:
                async for result in self.stream(
                    requests, concurrency=concurrency, health_check=health_check
                ):
                    out.put(result)
            except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
                out.put(_Raised(exc))
            else:
                out.put(done)

        def run() -> None:
            nonlocal pump_task
            asyncio.set_event_loop(loop)
            pump_task = loop.create_task(pump())
            ready.set()
            try:
                loop.run_until_complete(pump_task)
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        thread = threading.Thread(target=run, name="servecert-sampler", daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item is done:
                    return
                if isinstance(item, _Raised):
                    raise item.exc
                yield item
        finally:
            ready.wait()
            if thread.is_alive() and pump_task is not None:
                try:
                    loop.call_soon_threadsafe(pump_task.cancel)
                except RuntimeError:
                    pass  # the loop finished and closed in between
            thread.join()

    def sample_sync(
        self,
        requests: Iterable[ChatRequest],
        *,
        concurrency: int | None = None,
        health_check: HealthCheck | None = None,
    ) -> list[SampleResult]:
        """All results in request order, from synchronous code."""
        reqs = _unique(requests)
        by_key = {
            r.key: r
            for r in self.iter_sample(reqs, concurrency=concurrency, health_check=health_check)
        }
        return [by_key[r.key] for r in reqs]

    # -- one request ---------------------------------------------------------------------------

    async def _sample_one(
        self, client: httpx.AsyncClient, req: ChatRequest, health_check: HealthCheck | None
    ) -> SampleResult:
        body = req.body(self.model)
        attempts = 0
        while True:
            attempts += 1
            started = time.perf_counter()
            retry = True
            try:
                async with asyncio.timeout(self.timeout):
                    response = await client.post("/v1/chat/completions", json=body)
                    payload = response.content  # read inside the deadline
            except TimeoutError:
                problem, retry = f"timed out after {self.timeout:g} s", False
            except httpx.TimeoutException as exc:
                # A slow generation is not re-sent; only a connection that never opened is.
                problem, retry = (
                    f"timed out ({type(exc).__name__})",
                    isinstance(exc, httpx.ConnectTimeout),
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if status == 200:
                    return _parse(req, payload, started, attempts)
                snippet = redact(payload[:300].decode("utf-8", errors="replace"))
                if not retryable_status(status):
                    return _failed(req, started, attempts, f"HTTP {status}: {snippet}")
                problem = f"HTTP {status}: {snippet}"
            # A dead server must end the run now, not after every retry of every request.
            if health_check is not None:
                await _call(health_check)
            if not retry:
                return _failed(req, started, attempts, problem)
            if attempts >= self.retry_policy.attempts:
                return _failed(
                    req, started, attempts, f"{problem} (gave up after {attempts} attempts)"
                )
            await asyncio.sleep(self.retry_policy.delay(attempts))


async def _call(check: HealthCheck) -> None:
    outcome = check()
    if inspect.isawaitable(outcome):
        await outcome


def _unique(requests: Iterable[ChatRequest]) -> list[ChatRequest]:
    reqs = list(requests)
    seen: set[str] = set()
    for req in reqs:
        if req.key in seen:
            raise ValueError(
                f"duplicate request key {req.key!r}: results are matched to requests by key"
            )
        seen.add(req.key)
    return reqs


@dataclass(frozen=True)
class _Raised:
    exc: BaseException


def _failed(req: ChatRequest, started: float, attempts: int, error: str) -> SampleResult:
    return SampleResult(
        key=req.key,
        text=None,
        finish_reason=None,
        prompt_tokens=None,
        completion_tokens=None,
        latency_s=time.perf_counter() - started,
        error=error,
        attempts=attempts,
    )


def _parse(req: ChatRequest, payload: bytes, started: float, attempts: int) -> SampleResult:
    try:
        data = json.loads(payload)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        snippet = payload[:200].decode("utf-8", errors="replace")
        return _failed(
            req, started, attempts, f"malformed completion ({type(exc).__name__}): {snippet}"
        )
    return SampleResult(
        key=req.key,
        text=text,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_s=time.perf_counter() - started,
        error=None,
        attempts=attempts,
    )


def _progress_bar(total: int, enabled: bool | None) -> Any:
    if enabled is None:
        enabled = total >= 20 and sys.stderr.isatty() and not os.environ.get("CI")
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="req", desc="sampling", mininterval=0.5, file=sys.stderr)


def sample_sync(
    base_url: str,
    model: str,
    requests: Sequence[ChatRequest],
    **options: Any,
) -> list[SampleResult]:
    """One-shot convenience: ``Sampler(base_url, model, **options).sample_sync(requests)``."""
    health_check = options.pop("health_check", None)
    return Sampler(base_url, model, **options).sample_sync(requests, health_check=health_check)


_SECRET = re.compile(r"(?i)(bearer\s+|api[_-]?key[\"']?\s*[:=]\s*[\"']?|\bsk-)[A-Za-z0-9._~+/=-]{4,}")


def redact(text: str) -> str:
    """An error body excerpt with bearer tokens and API keys masked (it is stored and shown)."""
    return _SECRET.sub(lambda m: m.group(1) + "[redacted]", text)
