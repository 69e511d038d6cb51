"""The orchestrator: plan → sample → judge → pair → claims, each phase returning plain data.

Layer 2 (:mod:`..screens`) reads the stored pairs again with their texts: TAIS and RTSI.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import __version__
from ..claims.rules import apply_gates
from ..config import ServecertConfig
from ..design import contexts, naive_server_count
from ..judge_calibration import configured_corpus
from ..judges.health import inconclusive_for_failed_judges
from ..screens import layer2_claims
from ..store import Store, StoreError
from .judge import judge
from .pair import pair_cells
from .plan import (
    Plan,
    StackExtra,
    build_groups,
    load_batteries,
    parameter_count,
    resolve_served_model,
)
from .results import CertificationRun, RunCounts
from .sample import Progress, sample
from .summary import record_summary
from .timing import Timer
from .verdicts import layer1_claims, layer5_claims, scope_claims


def _quiet(_: str) -> None:
    pass


@contextmanager
def _exclusive(path: Path, timeout_s: float = 3600.0, progress: Progress = _quiet) -> Iterator[None]:
    """One run per store at a time (pytest-xdist workers queue here, then reuse answers).

    The wait is bounded (``[servecert] lock_timeout_s``): a second job on the same store ends
    with one line naming the process that holds it instead of waiting for ever.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_suffix(path.suffix + ".lock")
    with open(lock, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{path}: in use by {holder} for more than [servecert] lock_timeout_s = "
                        f"{timeout_s:g} s; wait for it to finish or use another store path"
                    ) from None
                if not told:
                    progress(f"servecert: waiting for the store (in use by {holder}; "
                             f"up to {timeout_s:g} s)")
                    told = True
                time.sleep(0.5)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (CI cancel, ``kill``) unwinds like Ctrl-C: answers already received are in the
    store, the run row is marked interrupted, servers are stopped by their context managers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _config_hash(config: ServecertConfig) -> str:
    return hashlib.sha256(json.dumps(config.raw, sort_keys=True, default=str).encode()).hexdigest()


#: The canary (:mod:`.canary`) runs under the same store lock and signal handling, with the same
#: config hash in its run row.
exclusive_store = _exclusive
sigterm_as_interrupt = _sigterm_as_interrupt
config_hash = _config_hash


def make_plan(
    config: ServecertConfig, stack_extra: StackExtra | None, timer: Timer, progress: Progress = _quiet
) -> Plan:
    with timer.phase("batteries"):  # before any build: a bad battery or corpus costs nothing
        batteries = load_batteries(config)
        corpus = configured_corpus(config.judges.calibration)
    with timer.phase("model build"):
        if config.model.path is None:  # every arm is a deployment: the servers state the model
            model_path, parameters = None, None
        else:
            model_path = resolve_served_model(config.model.path, config.engine.name)
            parameters = parameter_count(Path(model_path))
    with timer.phase("model build"):  # the draft model is built (deployments probed) while planning
        groups = build_groups(config, model_path, batteries, stack_extra, progress)
    return Plan(model_path=model_path, parameters=parameters, batteries=batteries, groups=groups,
                corpus=corpus)


def certify(
    config: ServecertConfig,
    *,
    progress: Progress = _quiet,
    stack_extra: StackExtra | None = None,
    server_factory: Callable[..., Any] | None = None,
) -> CertificationRun:
    """Run the whole layer-5 certification of ``config``; safe to re-run (resumes).

    ``server_factory(spec, start_timeout_s=...)`` makes each (unstarted) server; default: the
    engine registry's ``create_server``. Tests pass one that serves a stand-in.
    """
    with _sigterm_as_interrupt(), _exclusive(config.store_path, config.lock_timeout_s, progress):
        return _run(config, progress, stack_extra, server_factory)


def _run(
    config: ServecertConfig, progress: Progress, stack_extra: StackExtra | None,
    server_factory: Callable[..., Any] | None,
) -> CertificationRun:
    timer = Timer()
    plan = make_plan(config, stack_extra, timer, progress)
    # WAL + synchronous=NORMAL: every committed answer survives a killed process
    with Store(config.store_path, synchronous="NORMAL") as store:
        run_id = store.start_run(
            config_hash=_config_hash(config), argv=[str(config.path)],
            versions={"pytest-servecert": __version__},
        )
        try:
            return _measure(config, progress, server_factory, timer, plan, store, run_id)
        except BaseException as exc:
            # Ctrl-C, SIGTERM, a judge that stopped the run: never left "running"
            store.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
            raise


def _measure(
    config: ServecertConfig, progress: Progress, server_factory: Callable[..., Any] | None,
    timer: Timer, plan: Plan, store: Store, run_id: str,
) -> CertificationRun:
    sampled = sample(
        plan, store, run_id, start_timeout_s=config.engine.start_timeout_s,
        max_live=config.engine.max_live_servers, server_factory=server_factory,
        progress=progress, timer=timer, overlap_boots=config.engine.overlap_boots,
        devices=config.engine.devices,
    )
    with timer.phase("judging"):
        judged = judge(config.judges, plan, store, progress)
    with timer.phase("statistics"):
        paired = pair_cells(config, plan, store, sampled.not_run, judged.cohort_fingerprint)
        layer5, sentences = layer5_claims(config, paired.cells)
        layer2 = layer2_claims(config, plan, store, sampled.not_run,
                               judged.cohort_fingerprint, sentences)
        layer1, judge_pairs = layer1_claims(
            config, judged.specs, judged.label_records, judged.n_voters,
            corpus=judged.corpus, voters=judged.voters,
            calibration_seconds=judged.calibration_seconds,
        )
        # Only the judge gate here: an untrustable cohort (L1 FAIL) makes the
        # label-dependent claims INCONCLUSIVE (the scale band is reported, not applied).
        results = apply_gates(layer1 + layer5 + layer2)
        # on_judge_failure = "inconclusive": a failing judge's labels decide nothing
        results = inconclusive_for_failed_judges(results, judged.judge_failures)
        results = scope_claims(config, config.model.parameters or plan.parameters) + results
    record_summary(config, plan, store, run_id, results, judged.cohort_fingerprint)  # #18: the canary's reference
    store.finish_run(run_id, "complete")
    return CertificationRun(
        config=config,
        model={"name": config.model.name, "path": plan.model_path, "family": config.model.family,
               "parameters": plan.parameters},
        batteries=tuple(
            {"id": bid, "sha256": b.sha256, "path": str(b.path), "prompts": len(b.prompts),
             "sampled": len(p), "harmful": b.harmful, "license": b.spec.license}
            for bid, (b, p) in plan.batteries.items()
        ),
        contexts=tuple(c.label for c in contexts(config.design)),
        servers=sampled.servers,
        cells=paired.cells,
        results=results,
        sentences=sentences,
        judges=tuple(s.to_dict() for s in judged.specs),
        judge_pairs=judge_pairs,
        counts=RunCounts(
            requests_planned=plan.n_requests, requests_sent=sampled.sent,
            responses_reused=sampled.reused, request_errors=sampled.errors,
            requests_rejected=sampled.rejected, boots=sampled.boots,
            failed_boots=sampled.failed_boots, naive_boots=naive_server_count(config),
            labels_written=judged.labels_written,
            judge_errors=judged.judge_errors, votes_short_of_quorum=judged.short_of_quorum,
        ),
        timings=dict(timer.seconds),
        run_id=run_id,
        discordant=paired.discordant,
        judge_labels=judged.member_labels,
    )
