"""Spread one arm's requests over the replicas of its deployment; survive a replica's death.

:class:`ReplicaTransport` is an ``httpx`` transport, so the :class:`~.client.Sampler` stays the
only sampling seam and needs no change: it sends to a placeholder base URL and this transport
picks the replica.

* **Least outstanding requests**: each request goes to the healthy replica with the fewest
  requests in flight (ties: the one that has served fewest), and no replica carries more than
  ``per_replica`` at once (the ``batch_size`` axis as the server sees it, as for a booted arm).
* **Failover**: a connection that cannot be opened or breaks (refused, reset, closed
  mid-answer) takes the replica out for the rest of the run with that reason, and the request
  is sent again to another replica. HTTP 5xx moves the request to another replica too; three
  in a row take the replica out. A slow answer (read timeout) is not a death and is not moved.
  The store keeps one answer per key, so a request answered twice is still stored once.
* When no replica is left, :class:`NoReplicaError` (an ``httpx.TransportError``) carries each
  replica's reason, and :meth:`ReplicaPool.check_alive` raises ``ServerDiedError`` with it:
  the cells become NOT RUN with that reason.

Usage::

    pool = ReplicaPool("baseline", urls, model="llama-3.1-8b", headers=auth_headers(...))
    sampler = Sampler(pool.base_url, pool.served_model_name, transport=pool.transport)
    for result in sampler.iter_sample(requests, concurrency=pool.concurrency_for(8),
                                      health_check=pool.check_alive):
        ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import ServecertError
from ..http_connect import env_proxy, ssl_context
from .endpoint import is_loopback_url, replica_root
from .engine import ServerDiedError

__all__ = ["NoReplicaError", "ReplicaPool", "ReplicaTransport"]

#: Where the Sampler "sends": never resolved, the transport rewrites every request.
PLACEHOLDER_URL = "http://replicas.servecert.invalid"
# Connection-level failures that mean the replica is gone (not that the answer is slow).
_DEAD = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class NoReplicaError(ServecertError, httpx.TransportError):
    """No replica of the deployment can take the request (the message has each one's reason).

    An ``httpx.TransportError`` too, so the Sampler treats it as a failed attempt and asks the
    pool's health check, which ends the context with the same reasons."""


@dataclass
class _Replica:
    url: str
    outstanding: int = 0
    sent: int = 0  # attempts sent here
    answered: int = 0  # responses returned from here (any status below 500)
    failed: int = 0  # attempts that failed here (connection or 5xx)
    consecutive_5xx: int = 0
    down: str | None = None  # why it was taken out


class ReplicaTransport(httpx.AsyncBaseTransport):
    """Route each request to the least-loaded healthy replica (see the module docstring).

    Parameters
    ----------
    urls : sequence of str
        The replicas (``http://host:port/v1`` or the server root).
    per_replica : int
        Requests in flight per replica at most; :meth:`ReplicaPool.concurrency_for` sets it.
    headers : mapping, optional
        Added to every request (authorisation); never recorded.
    timeout_s : float
        Per attempt on a replica.
    transport_for : callable, optional
        ``url -> httpx.AsyncBaseTransport`` for tests (``httpx.MockTransport``).
    max_5xx : int
        Consecutive HTTP 5xx answers that take a replica out.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        per_replica: int = 1,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 120.0,
        transport_for: Callable[[str], httpx.AsyncBaseTransport | None] | None = None,
        max_5xx: int = 3,
    ) -> None:
        if not urls:
            raise ValueError("ReplicaTransport: expected at least one replica URL")
        self.replicas = [_Replica(u) for u in urls]
        self.per_replica = per_replica
        self.max_5xx = max_5xx
        self._headers = dict(headers or {})
        self._timeout_s = timeout_s
        self._transport_for = transport_for or (lambda url: None)
        self._timeout = httpx.Timeout(timeout_s).as_dict()
        self._roots = {u: httpx.URL(replica_root(u)) for u in urls}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: dict[str, httpx.AsyncBaseTransport] = {}
        self._changed: asyncio.Event | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def healthy(self) -> list[str]:
        return [r.url for r in self.replicas if r.down is None]

    def reasons(self) -> str:
        return "; ".join(f"{r.url}: {r.down}" for r in self.replicas if r.down is not None)

    def take_out(self, url: str, reason: str) -> None:
        """Mark a replica unusable for the rest of the run (e.g. it failed its identity probe)."""
        for r in self.replicas:
            if r.url == url and r.down is None:
                r.down = reason
        self._notify()

    def counts(self) -> list[dict[str, Any]]:
        return [
            {"url": r.url, "sent": r.sent, "answered": r.answered, "failed": r.failed,
             **({"taken_out": r.down} if r.down else {})}
            for r in self.replicas
        ]

    # -- the transport -------------------------------------------------------------------------

    def _bind(self) -> None:
        # The Sampler runs one event loop per iter_sample call: connections and events are per loop.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._transports, self._changed = loop, {}, asyncio.Event()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _transport(self, replica: _Replica) -> httpx.AsyncBaseTransport:
        # A transport, not a client: the Sampler's client is the one client layer (a second
        # one per replica cost ~20 % of the client's CPU per answer, benchmarks/replica_throughput.py).
        transport = self._transports.get(replica.url)
        if transport is None:
            loopback = is_loopback_url(replica.url)
            transport = self._transports[replica.url] = self._transport_for(replica.url) or httpx.AsyncHTTPTransport(
                verify=ssl_context(trust_env=not loopback),
                proxy=env_proxy(replica.url, loopback=loopback),  # loopback never via a proxy
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            )
        return transport

    async def _send(self, replica: _Replica, request: httpx.Request, body: bytes) -> httpx.Response:
        """``request`` sent to ``replica``, its body read here (a connection that breaks
        mid-answer is this replica's failure, not the caller's)."""
        root = self._roots[replica.url]
        forwarded = httpx.Request(
            request.method,
            root.copy_with(raw_path=root.raw_path.rstrip(b"/") + request.url.raw_path),
            headers=[*self._headers.items(),
                     *((k, v) for k, v in request.headers.items() if k.lower() in ("content-type", "accept"))],
            content=body,
            extensions={"timeout": self._timeout},
        )
        response = await self._transport(replica).handle_async_request(forwarded)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _acquire(self, tried: set[str]) -> _Replica | None:
        """The least-loaded healthy untried replica with room; ``None`` if none is left."""
        while True:
            candidates = [r for r in self.replicas if r.down is None and r.url not in tried]
            if not candidates:
                return None
            free = [r for r in candidates if r.outstanding < self.per_replica]
            if free:
                replica = min(free, key=lambda r: (r.outstanding, r.sent))
                replica.outstanding += 1
                replica.sent += 1
                return replica
            assert self._changed is not None
            await self._changed.wait()

    def _release(self, replica: _Replica) -> None:
        replica.outstanding -= 1
        self._notify()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._bind()
        body = await request.aread()
        tried: set[str] = set()
        last: httpx.Response | None = None
        while True:
            replica = await self._acquire(tried)
            if replica is None:
                if last is not None:
                    return last  # every healthy replica answered 5xx: the Sampler's retry decides
                raise NoReplicaError(f"no replica can serve: {self.reasons() or 'none left'}", request=request)
            tried.add(replica.url)
            try:
                response = await self._send(replica, request, body)
            except _DEAD as exc:
                replica.failed += 1
                replica.down = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue  # its in-flight requests go to the others
            finally:
                self._release(replica)
            if response.status_code >= 500:
                replica.failed += 1
                replica.consecutive_5xx += 1
                if replica.consecutive_5xx >= self.max_5xx:
                    replica.down = f"HTTP {response.status_code} {self.max_5xx} times in a row: {response.text[:120]}"
                    self._notify()
                last = response
                continue
            replica.consecutive_5xx = 0
            replica.answered += 1
            return response

    async def aclose(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()


class ReplicaPool:
    """A deployment's replicas as the runner uses a server: URL, model name, health check.

    Parameters
    ----------
    label : str
        Names the deployment in errors (the arm).
    urls : sequence of str
        Every replica; ``down`` maps those already known unusable to their reason.
    model : str
        The served model name.
    """

    base_url = PLACEHOLDER_URL
    start_seconds: float | None = None

    def __init__(
        self,
        label: str,
        urls: Sequence[str],
        *,
        model: str,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 120.0,
        down: Mapping[str, str] | None = None,
        transport_for: Callable[[str], httpx.AsyncBaseTransport | None] | None = None,
    ) -> None:
        self.label = label
        self.served_model_name = model
        self.transport = ReplicaTransport(urls, headers=headers, timeout_s=timeout_s, transport_for=transport_for)
        for url, reason in (down or {}).items():
            self.transport.take_out(url, reason)

    @classmethod
    def for_deployment(cls, spec: Any, identity: Any) -> ReplicaPool:
        """The pool for an :class:`~.endpoint.EndpointSpec` whose replicas were probed
        (:class:`~.endpoint.DeploymentIdentity`): the unreachable ones start out taken out."""
        return cls(
            spec.label, spec.endpoints, model=spec.model, headers=spec.headers(), timeout_s=spec.timeout_s,
            down={r.url: f"unreachable before sampling: {r.unreachable}" for r in identity.replicas if not r.reachable},
        )

    def concurrency_for(self, per_replica: int) -> int:
        """Set the in-flight limit per replica; the Sampler's total is that × healthy replicas."""
        self.transport.per_replica = per_replica
        return per_replica * max(1, len(self.transport.healthy))

    def alive(self) -> bool:
        return bool(self.transport.healthy)

    def check_alive(self) -> None:
        if not self.alive():
            raise ServerDiedError(f"no replica can serve: {self.transport.reasons()}", label=self.label)

    def counts(self) -> list[dict[str, Any]]:
        return self.transport.counts()
