"""The orchestrator: plan → sample → judge → pair → claims, each phase returning plain data."""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import __version__
from ..claims.rules import apply_gates
from ..config import ServecertConfig
from ..design import contexts, naive_server_count
from ..store import Store
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
from .timing import Timer
from .verdicts import layer1_claims, layer5_claims, scope_claims


def _quiet(_: str) -> None:
    pass


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One run per store at a time (pytest-xdist workers queue here, then reuse answers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _config_hash(config: ServecertConfig) -> str:
    return hashlib.sha256(json.dumps(config.raw, sort_keys=True, default=str).encode()).hexdigest()


def make_plan(config: ServecertConfig, stack_extra: StackExtra | None, timer: Timer) -> Plan:
    with timer.phase("model build"):
        model_path = resolve_served_model(config.model.path, config.engine.name)
        parameters = parameter_count(Path(model_path))
    with timer.phase("batteries"):
        batteries = load_batteries(config)
    with timer.phase("model build"):  # the draft model is built while planning
        groups = build_groups(config, model_path, batteries, stack_extra)
    return Plan(model_path=model_path, parameters=parameters, batteries=batteries, groups=groups)


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
    with _exclusive(config.store_path):
        return _run(config, progress, stack_extra, server_factory)


def _run(
    config: ServecertConfig, progress: Progress, stack_extra: StackExtra | None,
    server_factory: Callable[..., Any] | None,
) -> CertificationRun:
    timer = Timer()
    plan = make_plan(config, stack_extra, timer)
    with Store(config.store_path) as store:
        run_id = store.start_run(
            config_hash=_config_hash(config), argv=[str(config.path)],
            versions={"pytest-servecert": __version__},
        )
        sampled = sample(
            plan, store, run_id, start_timeout_s=config.engine.start_timeout_s,
            max_live=config.engine.max_live_servers, server_factory=server_factory,
            progress=progress, timer=timer,
        )
        with timer.phase("judging"):
            judged = judge(config.judges, plan, store, progress)
        with timer.phase("statistics"):
            paired = pair_cells(config, plan, store, sampled.not_run, judged.cohort_fingerprint)
            layer5, sentences = layer5_claims(config, paired.cells)
            layer1, judge_pairs = layer1_claims(
                config, judged.specs, judged.label_records, judged.n_voters,
                corpus=judged.corpus, voters=judged.voters,
                calibration_seconds=judged.calibration_seconds,
            )
            # Only the judge gate here: an untrustable cohort (L1 FAIL) makes the
            # label-dependent claims INCONCLUSIVE (the scale band is reported, not applied).
            results = apply_gates(layer1 + layer5)
            results = scope_claims(config, config.model.parameters or plan.parameters) + results
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
        ),
        timings=dict(timer.seconds),
        run_id=run_id,
        discordant=paired.discordant,
        judge_labels=judged.member_labels,
    )
