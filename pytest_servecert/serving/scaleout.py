"""Which server(s) serve one group of the plan, and booting the next while one samples.

A *group* is one distinct server of the plan (``run`` phase data: ``arm``, ``spec``, ``stack``,
``keys``). It is served by

* one booted server (``pool.get(spec)``), as before;
* ``replicas = N`` booted servers of the same spec, each with its own port and (given
  ``[engine] devices``) its own ``CUDA_VISIBLE_DEVICES``, behind a
  :class:`~.replicas.ReplicaPool`; or
* the replicas of a running deployment (an endpoint arm), probed and verified while planning
  (:mod:`.endpoint`), behind a :class:`~.replicas.ReplicaPool`.

Requests in flight are the ``batch_size`` axis; over replicas, ``batch_size`` per replica.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from .endpoint import DeploymentMismatchError, EndpointSpec, plan_deployment
from .engine import ServerStartError
from .replicas import ReplicaPool

__all__ = [
    "boot_next",
    "endpoint_spec_and_identity",
    "in_flight",
    "open_server",
    "replica_specs",
    "sampler_options",
]

Progress = Callable[[str], None]


def endpoint_spec_and_identity(
    config: Any, arm: Any, ctx: Any, label: str, stack_extra: Callable[[str, dict[str, Any]], None] | None,
    progress: Progress,
) -> tuple[EndpointSpec, Any]:
    """The spec and verified identity of the deployment serving ``ctx`` for endpoint ``arm``.

    Raises :class:`~.endpoint.DeploymentMismatchError` (naming the config file) when the
    deployment contradicts its declaration: certifying the wrong deployment stops the run.
    """
    from ..config import SERVER_AXES, server_levels_label

    center = {axis: levels[0] for axis, levels in config.design.axes.items()}
    levels = server_levels_label(dict(ctx.levels), center)
    deployment = arm.config.deployments[levels] if levels else arm.config
    declared = {k: v for k, v in {**arm.config.settings, **ctx.server_levels}.items() if k in SERVER_AXES}
    spec = EndpointSpec(
        arm=deployment.name, model=deployment.model or "", endpoints=deployment.endpoints,
        settings=tuple(sorted(declared.items())), instance="aa" if arm.role == "aa" else "",
        label=label, api_key_env=deployment.api_key_env, headers_env=deployment.headers_env,
        timeout_s=deployment.timeout_s,
    )
    extra: dict[str, Any] = {}
    if stack_extra is not None:
        stack_extra(arm.name, extra)
    progress(f"servecert: asking {len(spec.endpoints)} replica(s) of {label} what they run")
    try:
        return spec, plan_deployment(spec, identity=dict(deployment.identity), extra=extra)
    except DeploymentMismatchError as exc:
        raise DeploymentMismatchError(f"{config.path}: {exc}") from None


def replica_specs(group: Any, devices: Sequence[str] = ()) -> list[Any]:
    """The server specs a booted group needs: its own, or ``replicas = N`` copies (own port,
    own ``devices`` entry; neither is part of the stack identity, so all N key the same answers)."""
    n = group.arm.config.replicas
    if group.spec.engine == "endpoint":
        return []
    if n == 1:
        return [group.spec]
    return [
        replace(group.spec, label=f"{group.spec.label}#{i}", env=(
            *group.spec.env, ("SERVECERT_REPLICA", str(i)),
            *((("CUDA_VISIBLE_DEVICES", devices[i]),) if devices else ()),
        ))
        for i in range(n)
    ]


def open_server(pool: Any, group: Any, devices: Sequence[str] = ()) -> Any:
    """The group's server: booted (``pool.get``), a pool over N booted replicas, or the
    deployment's replica pool. Raises ``ServerStartError`` when it cannot serve at all."""
    if group.spec.engine == "endpoint":
        if not group.stack.reachable:
            raise ServerStartError(f"no replica answered: {group.stack.unreachable_reason}", label=group.spec.label)
        return ReplicaPool.for_deployment(group.spec, group.stack)
    specs = replica_specs(group, devices)
    if len(specs) == 1:
        return pool.get(group.spec)
    servers = [pool.get(spec) for spec in specs]
    replicas = ReplicaPool(group.spec.label, [s.base_url for s in servers], model=servers[0].served_model_name)
    replicas.start_seconds = sum(s.start_seconds or 0.0 for s in servers)
    return replicas


def sampler_options(server: Any, group: Any) -> dict[str, Any]:
    """Extra :class:`~.client.Sampler` arguments: a replica pool's transport and timeout."""
    if not isinstance(server, ReplicaPool):
        return {}
    return {"transport": server.transport, "timeout": getattr(group.spec, "timeout_s", 120.0)}


def in_flight(group: Any, ctx: Any, server: Any) -> int:
    """Requests in flight: the batch_size axis; over replicas, that many per replica."""
    if not isinstance(server, ReplicaPool):
        return ctx.batch_size
    return server.concurrency_for(ctx.get("batch_size") or group.arm.config.concurrency_per_replica or 1)


def replica_counts(server: Any) -> tuple[dict[str, Any], ...]:
    return tuple(server.counts()) if isinstance(server, ReplicaPool) else ()


def boot_next(
    pool: Any, current: Any, rest: Sequence[Any], has_work: Callable[[Any], bool], *, max_live: int,
    devices: Sequence[str] = (), progress: Progress,
) -> list[Future[None]]:
    """Boot overlap: while ``current`` samples, boot the next booted group that has work.

    Only when both fit in ``max_live`` (the pool evicts the least recently used server, never
    the one sampling now). The boot runs on the pool's long-lived boot thread
    (:meth:`~.pool.ServerPool.prefetch`). A failed boot is remembered by the pool and reported
    when its group's turn comes, exactly as without overlap.
    """
    nxt = next((g for g in rest if g.spec.engine != "endpoint" and has_work(g)), None)
    if nxt is None:
        return []
    specs = replica_specs(nxt, devices)
    if len(replica_specs(current, devices)) + len(specs) > max_live:
        return []
    live = {s.spec.fingerprint for s in pool.live()}
    if all(s.fingerprint in live for s in specs):
        return []
    progress(f"servecert: booting {nxt.spec.label} while {current.spec.label} samples")
    return [pool.prefetch(specs)]
