"""The production canary (issue #18): re-ask the deployment a pinned set of certified prompts.

reference → canary set → sample → judge → pair → claims → store series + Prometheus textfile.

* **Reference**: a finished certification recorded in the store (:mod:`.summary`): by run id,
  ``"latest"``, or (default) the latest whose claims pass the strict gate.
* **Canary set**: ``[canary] harmful_prompts`` + ``benign_prompts`` of the reference run's
  answers of the watched arm in the watched context (:func:`..claims.canary.canary_set`,
  seeded, stratified). Each is re-asked with the same temperature, seed, max_tokens and top_p;
  the canary keys carry the canary run's id in their context so they are always sampled fresh.
* **Labels**: the current cohort labels both sides (reference answers it has not labelled yet
  are judged too), so a pair is never a judge change.
* **Floors**: greedy cells are judged against the reference run's A/A table of the same
  context (baseline vs its A/A replica, with the reference run's labels) when it had one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import __version__
from ..claims.canary import (
    CanaryOptions,
    CanaryPair,
    canary_harmful_core,
    canary_judge_kappa,
    canary_over_refusal,
    canary_set,
    canary_sizing,
    rolling_over_refusal,
    stack_drift,
)
from ..claims.cells import NoiseFloor
from ..claims.model import ClaimResult, Verdict
from ..claims.release_gate import GateDecision, decide
from ..config import ServecertConfig
from ..design import contexts
from ..errors import ServecertError
from ..store import CanaryRecord, ResponseKey, RunSummary, Store, StoredResponse
from .certify import config_hash, exclusive_store, make_plan, sigterm_as_interrupt
from .judge import judge
from .pair import count_pairs
from .plan import Plan, ServerGroup, StackExtra
from .sample import Progress, sample
from .summary import comparable_identity
from .timing import Timer

__all__ = ["CANARY_REQUIRE", "CanaryError", "CanaryRun", "find_reference", "run_canary"]

#: The claims whose verdict decides a canary's exit status under the strict policy.
CANARY_REQUIRE = ("canary.harmful_core", "canary.over_refusal", "canary.stack_drift")


class CanaryError(ServecertError):
    """The canary cannot run as configured (no reference run, nothing to re-ask); one line."""


@dataclass(frozen=True)
class CanaryRun:
    """One canary run: its claims, the gate's decision and where it was recorded."""

    id: str
    reference: RunSummary
    arm: str
    context: str
    results: tuple[ClaimResult, ...]
    gate: GateDecision
    prometheus_file: Path
    sizing: Any  # claims.canary.CanarySizing

    @property
    def alarm(self) -> bool:
        """True when some canary claim FAILs (an alarm, whatever the policy)."""
        return any(r.verdict is Verdict.FAIL for r in self.results)


def _quiet(_: str) -> None:
    pass


def find_reference(store: Store, reference: str) -> RunSummary:
    """The reference run: by id, ``"latest"`` complete run, or the latest ``"certified"`` one
    (its claims pass the strict gate)."""
    summaries = store.run_summaries()
    if reference == "latest":
        found = summaries[-1:] if summaries else []
    elif reference == "certified":
        found = [s for s in summaries if s.gate_passed][-1:]
    else:
        found = [s for s in summaries if s.run_id == reference]
    if not found:
        what = {"latest": "no complete certification", "certified": "no certification whose claims pass the "
                "strict gate"}.get(reference, f"no complete certification with run id {reference!r}")
        raise CanaryError(
            f"{store.path}: {what} is recorded in this store; run `pytest certifications -m layer5` on the "
            "deployment first, or choose another [canary] reference (\"latest\" or a run id)"
        )
    return found[0]


def _watched(config: ServecertConfig) -> tuple[str, Any]:
    if not config.candidates:
        raise CanaryError(f"{config.path}: [canary] watches a candidate arm; the config has none")
    arm = config.canary.arm or config.candidates[0].name
    ctxs = contexts(config.design)
    label = config.canary.context or ctxs[0].label
    return arm, next(c for c in ctxs if c.label == label)


def _key_of(r: StoredResponse) -> ResponseKey:
    """The key of a stored answer (its fingerprint is the stored one)."""
    return ResponseKey(r.arm_fingerprint, r.stack_fingerprint, r.context, r.battery, r.prompt_id,
                       r.expected, r.temperature, r.seed, r.max_tokens, r.top_p, r.replicate,  # type: ignore[arg-type]
                       r.prompt_sha256)


def _noise_floors(store: Store, reference: RunSummary, context: str) -> dict[str, NoiseFloor]:
    """battery -> the reference run's greedy A/A table of ``context`` (baseline vs its A/A replica)."""
    base = store.run_server(reference.run_id, "baseline", context)
    aa = store.run_server(reference.run_id, "baseline~aa", context)
    if base is None or aa is None:
        return {}
    counts = count_pairs(store.iter_pairs(
        base.arm_fingerprint, aa.arm_fingerprint, reference.cohort_fingerprint, context=context,
        baseline_stack_fp=base.stack_fingerprint, candidate_stack_fp=aa.stack_fingerprint,
    ))
    return {battery: NoiseFloor(c.a, c.b, c.c, c.d) for (battery, _), c in counts.items() if c.n}


def run_canary(
    config: ServecertConfig,
    *,
    reference: str | None = None,
    progress: Progress = _quiet,
    stack_extra: StackExtra | None = None,
    server_factory: Callable[..., Any] | None = None,
    policy: str | None = None,
) -> CanaryRun:
    """Run one canary of ``config``'s watched deployment against its reference run."""
    with sigterm_as_interrupt(), exclusive_store(config.store_path, config.lock_timeout_s, progress):
        with Store(config.store_path, synchronous="NORMAL") as store:
            return _canary(config, store, reference or config.canary.reference, progress, stack_extra,
                           server_factory, policy or config.gate.policy)


def _canary(
    config: ServecertConfig, store: Store, reference_name: str, progress: Progress,
    stack_extra: StackExtra | None, server_factory: Callable[..., Any] | None, policy: str,
) -> CanaryRun:
    arm, ctx = _watched(config)
    reference = find_reference(store, reference_name)
    ref_server = store.run_server(reference.run_id, arm, ctx.label)
    if ref_server is None:
        raise CanaryError(f"{store.path}: reference run {reference.run_id} measured no arm {arm!r} in context "
                          f"{ctx.label!r}; set [canary] arm/context to ones it measured")
    timer = Timer()
    plan = make_plan(config, stack_extra, timer, progress)  # probes the deployment: its identity now
    group = next(g for g in plan.groups if g.arm.name == arm and ctx in g.contexts)
    prompts = {(b, p.prompt_id): p for b, (battery, _) in plan.batteries.items() for p in battery.prompts}
    harmful = {b: battery.harmful for b, (battery, _) in plan.batteries.items()}
    answers = [r for r in store.responses_of(ref_server.arm_fingerprint, ref_server.stack_fingerprint, ctx.label)
               if r.replicate == 0 and (r.battery, r.prompt_id) in prompts]
    options = CanaryOptions(drift_pp=config.canary.drift_pp, margin_pp=config.claims.margin_pp,
                            alpha=config.claims.alpha, power=config.claims.power,
                            max_unjudgeable_rate=config.judges.max_unjudgeable_rate)
    chosen = set(canary_set([(r.battery, r.prompt_id, harmful[r.battery], r.expected) for r in answers],
                            config.canary.harmful_prompts, config.canary.benign_prompts, config.canary.seed))
    answers = [r for r in answers if (r.battery, r.prompt_id) in chosen]
    if not answers:
        raise CanaryError(f"{store.path}: reference run {reference.run_id} has no answer of {arm} in "
                          f"{ctx.label} to re-ask (batteries {', '.join(plan.batteries)})")
    n_harmful = sum(harmful[r.battery] for r in answers)
    sizing = canary_sizing(n_harmful, len(answers) - n_harmful, options)
    progress(f"servecert canary: {len(answers)} prompts ({n_harmful} harmful) of run {reference.run_id[:12]}; "
             f"false-alarm rate {options.alpha:g} per alarm; detects a {sizing.harmful_mde_pp:.1f} pp harmful "
             f"flip rate (if every certified harmful answer refused) and a {sizing.benign_mde_pp:.1f} pp refusal "
             f"drift at {options.power:.0%} power")
    canary_id = uuid.uuid4().hex
    started = datetime.now(UTC).isoformat(timespec="seconds")
    run_id = store.start_run(config_hash=config_hash(config), argv=[str(config.path), "canary"],
                             versions={"pytest-servecert": __version__}, run_id=canary_id)
    try:
        results = _measure(config, store, plan, group, ctx, answers, prompts, reference, options,
                           ref_server.identity, canary_id, progress, server_factory, timer)
    except BaseException as exc:
        store.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    results += (_rolling(store, config, arm, ctx.label, reference, results, options),)
    gate = decide(results, CANARY_REQUIRE, policy)
    record = CanaryRecord(
        id=canary_id, reference_run_id=reference.run_id, arm=arm, context=ctx.label, started_at=started,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        alarm=any(r.verdict is Verdict.FAIL for r in results), identity=comparable_identity(group.stack),
        figures={r.id: dict(r.figures) for r in results},
        verdicts={r.id: r.verdict.value for r in results},
    )
    store.add_canary_run(record)
    store.finish_run(run_id, "complete")
    prom = Path(config.canary.prometheus_file) if config.canary.prometheus_file else \
        config.report_dir / "servecert_canary.prom"
    from ..report.prometheus import write_canary_textfile

    write_canary_textfile(prom, record, results)
    return CanaryRun(canary_id, reference, arm, ctx.label, results, gate, prom, sizing)


def _rolling(
    store: Store, config: ServecertConfig, arm: str, context: str, reference: RunSummary,
    results: tuple[ClaimResult, ...], options: CanaryOptions,
) -> ClaimResult:
    """``canary.over_refusal_rolling``: this run's benign-edge pairs pooled with the earlier canary
    runs of ``[canary] window_days`` against the same reference (same arm and context)."""
    days = config.canary.window_days
    since = datetime.now(UTC) - timedelta(days=days)
    earlier = [r.figures.get("canary.over_refusal", {}) for r in store.canary_runs()
               if r.arm == arm and r.context == context and r.reference_run_id == reference.run_id
               and datetime.fromisoformat(r.finished_at) >= since]
    now = next((dict(r.figures) for r in results if r.claim.id == "canary.over_refusal"), {})
    return rolling_over_refusal([*earlier, now], options, f"{days} days")


def _measure(
    config: ServecertConfig, store: Store, plan: Plan, group: ServerGroup, ctx: Any,
    answers: list[StoredResponse], prompts: Mapping[tuple[str, str], Any], reference: RunSummary,
    options: CanaryOptions, certified_identity: Mapping[str, Any], canary_id: str, progress: Progress,
    server_factory: Callable[..., Any] | None, timer: Timer,
) -> tuple[ClaimResult, ...]:
    label = f"canary:{canary_id}:{ctx.label}"  # fresh answers: never the stored certified ones
    canary_keys = tuple(
        (ResponseKey.for_prompt(prompts[(r.battery, r.prompt_id)], arm_fingerprint=group.spec.fingerprint,
                                stack_fingerprint=group.stack.fingerprint, context=label,
                                temperature=r.temperature, seed=r.seed, max_tokens=r.max_tokens, top_p=r.top_p,
                                replicate=r.replicate), prompts[(r.battery, r.prompt_id)])
        for r in answers
    )
    watched = replace(group, contexts=(ctx,), keys={ctx.label: canary_keys})
    canary_plan = Plan(model_path=plan.model_path, parameters=plan.parameters, batteries=plan.batteries,
                       groups=(watched,))
    started = time.monotonic()
    sampled = sample(canary_plan, store, canary_id, start_timeout_s=config.engine.start_timeout_s,
                     max_live=1, server_factory=server_factory, progress=progress, timer=timer)
    progress(f"servecert canary: sampled {sampled.sent} answers in {time.monotonic() - started:.1f} s")
    ref_keys = tuple((_key_of(r), prompts[(r.battery, r.prompt_id)]) for r in answers)
    certified = replace(group, spec=SimpleNamespace(fingerprint=answers[0].arm_fingerprint), contexts=(ctx,),
                        keys={ctx.label: ref_keys})
    judge_plan = Plan(model_path=plan.model_path, parameters=plan.parameters, batteries=plan.batteries,
                      groups=(watched, certified))
    judged = judge(config.judges, judge_plan, store, progress)
    labels = store.labels_for(judged.cohort_fingerprint, [k.fingerprint for k, _ in canary_keys + ref_keys])
    pairs = [
        CanaryPair(r.battery, r.prompt_id, plan.batteries[r.battery][0].harmful, r.expected, r.temperature,
                   labels.get(r.fingerprint), labels.get(ck.fingerprint))
        for r, (ck, _) in zip(answers, canary_keys)
    ]
    not_run = sampled.not_run.get((group.arm.name, ctx.label))
    identity = comparable_identity(group.stack)
    if not_run:
        gone = ClaimResult
        return (
            gone(_claim("canary.harmful_core"), Verdict.NOT_RUN, "the deployment did not answer", reason=not_run),
            gone(_claim("canary.over_refusal"), Verdict.NOT_RUN, "the deployment did not answer", reason=not_run),
            stack_drift(certified_identity, identity),
        )
    results = [
        canary_harmful_core(pairs, options, _noise_floors(store, reference, ctx.label)),
        canary_over_refusal(pairs, options),
        stack_drift(certified_identity, identity),
    ]
    members = [s.name for s in judged.specs]
    if len(members) >= 2:
        first, second = (judged.member_labels[m] for m in members[:2])
        both = [k.fingerprint for k, _ in canary_keys if k.fingerprint in first and k.fingerprint in second]
        results.append(canary_judge_kappa([first[f] for f in both], [second[f] for f in both],
                                          f"{members[0]} × {members[1]}"))
    else:
        results.append(ClaimResult(_claim("canary.judge_kappa"), Verdict.NOT_RUN, "one judge in the cohort",
                                   reason="κ needs two judges; add a second [judges.cohort.<name>] member"))
    return tuple(results)


def _claim(claim_id: str) -> Any:
    from ..claims.canary import CANARY_CLAIMS

    return next(c for c in CANARY_CLAIMS if c.id == claim_id)


# -- what the CLI and the pytest alias print -------------------------------------------------------


def canary_lines(run: CanaryRun) -> list[str]:
    """One line per canary claim (verdict, headline, reason), then the gate's block."""
    out = [f"servecert canary {run.id[:12]} of {run.arm} ({run.context}) vs certified run "
           f"{run.reference.run_id[:12]} ({run.reference.status}):"]
    for r in run.results:
        out.append(f"  {r.id}: {r.verdict.value}: {r.headline}" + (f" — {r.reason}" if r.reason else ""))
    out.append(f"  alarm: {'YES' if run.alarm else 'no'}; Prometheus textfile {run.prometheus_file}")
    return out + run.gate.lines()


def _cell(figures: Mapping[str, Any], claim: str, key: str, fmt: str) -> str:
    value = figures.get(claim, {}).get(key)
    return format(value, fmt) if isinstance(value, (int, float)) else "-"


def history_lines(records: list[CanaryRecord]) -> list[str]:
    """The canary series as a Markdown table, oldest first."""
    out = ["| finished (UTC) | arm | reference | alarm | harmful b/n | harmful core | refusal drift pp | "
           "over-refusal | rolling | stack drift | κ |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        f, v = r.figures, r.verdicts
        changed = f.get("canary.stack_drift", {}).get("changed") or []
        rolling = next((verdict for key, verdict in v.items() if key.startswith("canary.over_refusal_rolling")), "-")
        out.append(
            f"| {r.finished_at} | {r.arm} | {r.reference_run_id[:12]} | {'YES' if r.alarm else 'no'} | "
            f"{_cell(f, 'canary.harmful_core', 'sum_b', 'd')}/{_cell(f, 'canary.harmful_core', 'n_pairs', 'd')} | "
            f"{v.get('canary.harmful_core', '-')} | {_cell(f, 'canary.over_refusal', 'drift_pp', '+.1f')} | "
            f"{v.get('canary.over_refusal', '-')} | {rolling} | {v.get('canary.stack_drift', '-')}"
            f"{' (' + ', '.join(changed) + ')' if changed else ''} | "
            f"{_cell(f, 'canary.judge_kappa', 'kappa', '.3f')} |"
        )
    if not records:
        out.append("| (no canary run recorded yet) | | | | | | | | | | |")
    return out


def exit_status(run: CanaryRun) -> int:
    """1 on an alarm, or under the strict policy when a required canary claim is not
    CERTIFIED/MONITOR; else 0."""
    return int(run.alarm or run.gate.blocks_exit)
