"""One server process per distinct :class:`ServerSpec`, started on first use and reused.

A certification run asks for the same configuration in many contexts (batteries,
temperatures, batch sizes are client-side). The pool boots each distinct spec fingerprint
once ("boots = distinct argv"), remembers a failed start so the same spec is not booted
again (its :class:`ServerStartError` is raised again: the NOT RUN reason stays the same),
and tears everything down on :meth:`ServerPool.close` (also on Ctrl-C and at exit).

``max_live`` bounds the servers running at once; starting another stops the least
recently used. Each vLLM CPU server holds ~1.3-2.2 GB and competes for the same cores, so
on small machines use ``max_live=1`` or ``2`` and order the work by spec. A server that
was stopped this way is booted again on its next :meth:`~ServerPool.get` (``boots`` then
exceeds the number of distinct specs), and a handle obtained earlier is no longer usable.

:meth:`~ServerPool.prefetch` boots a spec in the background (boot overlap). It always boots on
the pool's one long-lived boot thread: servers get ``PR_SET_PDEATHSIG``, which fires when the
*thread* that spawned them exits, so a server booted on a short-lived thread would be stopped
the moment that thread returned.

Usage::

    with ServerPool(max_live=2) as pool:
        server = pool.get(spec)            # boots, or returns the running one
        sampler = Sampler(server.base_url, server.served_model_name)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

from .engine import Server, ServerDiedError, ServerSpec, ServerStartError, create_server

__all__ = ["ServerPool"]

ServerFactory = Callable[..., Server]


class ServerPool:
    """Lazily started, reused, bounded set of servers keyed by spec fingerprint.

    Parameters
    ----------
    start_timeout_s : float
        Readiness deadline passed to each server.
    max_live : int, optional
        At most this many servers running at once (least recently used is stopped first).
        ``None``: no bound.
    factory : callable, optional
        ``factory(spec, start_timeout_s=...) -> Server`` (unstarted); default
        :func:`~pytest_servecert.serving.engine.create_server`. Tests pass fakes.
    **server_options :
        Further keyword arguments for every server (e.g. ``stop_grace_s``).
    """

    def __init__(
        self,
        *,
        start_timeout_s: float = 420.0,
        max_live: int | None = None,
        factory: ServerFactory | None = None,
        **server_options: Any,
    ) -> None:
        if max_live is not None and max_live < 1:
            raise ValueError(
                f"ServerPool.max_live: expected an integer >= 1 or None, got {max_live!r}"
            )
        self.start_timeout_s = start_timeout_s
        self.max_live = max_live
        self._factory = factory or create_server
        self._options = server_options
        self._live: OrderedDict[str, Server] = OrderedDict()  # least recently used first
        self._failed: dict[str, ServerStartError] = {}
        self._lock = threading.RLock()
        self._closed = False
        #: Processes launched (successful or not).
        self.boots = 0
        #: Launches that ended in :class:`ServerStartError`.
        self.failed_boots = 0
        #: Servers stopped to respect ``max_live``.
        self.evictions = 0
        # Lives until close(): the servers it spawned die with it (see the module docstring).
        self._boot_thread: ThreadPoolExecutor | None = None

    def get(self, spec: ServerSpec) -> Server:
        """The running server for ``spec``, booting it first if needed.

        Raises
        ------
        ServerStartError
            The spec failed to start, now or earlier in this pool (not retried).
        ServerDiedError
            Its server had been running and is gone. The dead server is cleared, so a
            later ``get`` boots a fresh one.
        """
        fp = spec.fingerprint
        with self._lock:
            if self._closed:
                raise RuntimeError("ServerPool is closed")
            if fp in self._failed:
                raise self._failed[fp]
            server = self._live.get(fp)
            if server is not None:
                if server.alive():
                    self._live.move_to_end(fp)
                    return server
                del self._live[fp]
                try:
                    server.check_alive()
                    raise ServerDiedError("server is not running", label=spec.label)
                finally:
                    server.stop()  # reap the process group (workers may outlive the leader)
            self._make_room()
            server = self._factory(spec, start_timeout_s=self.start_timeout_s, **self._options)
            self.boots += 1
            try:
                server.start()
            except ServerStartError as exc:
                self.failed_boots += 1
                self._failed[fp] = exc
                raise
            self._live[fp] = server
            return server

    def prefetch(self, specs: list[ServerSpec]) -> Future[None]:
        """Boot ``specs`` in the background, one after another, on the pool's boot thread.

        A failed start is remembered as by :meth:`get` (and raised by the ``get`` that needs
        it); the future itself never fails, so nobody has to wait for it.
        """

        def boot() -> None:
            for spec in specs:
                try:
                    self.get(spec)
                except (ServerStartError, ServerDiedError, RuntimeError):  # remembered / pool closed
                    return

        with self._lock:
            if self._closed:
                raise RuntimeError("ServerPool is closed")
            if self._boot_thread is None:
                self._boot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="servecert-boot")
            return self._boot_thread.submit(boot)

    def failure(self, spec: ServerSpec) -> ServerStartError | None:
        """The remembered start failure of ``spec``, if any."""
        return self._failed.get(spec.fingerprint)

    def live(self) -> list[Server]:
        """Running servers, least recently used first."""
        with self._lock:
            return list(self._live.values())

    def stop(self, spec: ServerSpec) -> None:
        """Stop the server for ``spec`` if it runs (a later ``get`` boots it again)."""
        with self._lock:
            server = self._live.pop(spec.fingerprint, None)
        if server is not None:
            server.stop()

    def close(self) -> None:
        """Stop every server. Idempotent."""
        with self._lock:
            self._closed = True
            servers = list(self._live.values())
            self._live.clear()
            boot_thread, self._boot_thread = self._boot_thread, None
        errors: list[BaseException] = []
        for server in servers:
            try:
                server.stop()
            except BaseException as exc:  # noqa: BLE001 - stop the others first
                errors.append(exc)
        if boot_thread is not None:
            boot_thread.shutdown(wait=False)  # its servers are stopped; a boot in progress sees the pool closed
        if errors:
            raise errors[0]

    def _make_room(self) -> None:
        if self.max_live is None:
            return
        while len(self._live) >= self.max_live:
            _, oldest = self._live.popitem(last=False)
            oldest.stop()
            self.evictions += 1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
