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
  context (baseline vs its A/A replica, with the reference run's labels) when it had one. T > 0
  cells against the sampling floor of the reference run's A/A replicates of the same prompts
  (``baseline~aa``, ``[sampling] aa_replicates`` independent-seed draws, labelled by the current
  cohort like the certified answers), as the certification's calibrated harmful-core rule does;
  without them a T > 0 canary's harmful core is INCONCLUSIVE "no A/A floor for T > 0", never
  an alarm on sampling noise. (The A/A replica serves the baseline: the floor is the certified
  deployment's own sampling noise only as far as the candidate was certified equivalent to it.)
* **Series**: ``canary.over_refusal_rolling`` pools the runs of ``[canary] window_days``;
  ``canary.over_refusal_weekly`` compares the last 7 days' runs with the 7 days before. Both
  read the stored :class:`~pytest_servecert.store.CanaryRecord` s of the same arm, context and
  reference.
* **Gate**: the ``[gate] require`` entries that name canary claims decide the exit status
  (:func:`..claims.release_gate.require_for`).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
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
    weekly_over_refusal,
)
from ..claims.cells import NoiseFloor
from ..claims.model import ClaimResult, Verdict
from ..claims.release_gate import GateDecision, decide, require_for
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

__all__ = ["CanaryError", "CanaryRun", "find_reference", "run_canary"]


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
                            max_unjudgeable_rate=config.judges.max_unjudgeable_rate,
                            week_min_runs=config.canary.week_min_runs)
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
    started = datetime.now(UTC).isoformat(timespec="microseconds")  # two canaries in one second keep their order
    run_id = store.start_run(config_hash=config_hash(config), argv=[str(config.path), "canary"],
                             versions={"pytest-servecert": __version__}, run_id=canary_id)
    try:
        results = _measure(config, store, plan, group, ctx, answers, prompts, reference, options,
                           ref_server.identity, canary_id, progress, server_factory, timer)
    except BaseException as exc:
        store.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    finished = datetime.now(UTC)
    results += _series(store, config, arm, ctx.label, reference, results, options, finished)
    gate = decide(results, require_for(config.gate.require, results), policy)
    record = CanaryRecord(
        id=canary_id, reference_run_id=reference.run_id, arm=arm, context=ctx.label, started_at=started,
        finished_at=finished.isoformat(timespec="microseconds"),
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


def _series(
    store: Store, config: ServecertConfig, arm: str, context: str, reference: RunSummary,
    results: tuple[ClaimResult, ...], options: CanaryOptions, now: datetime,
) -> tuple[ClaimResult, ClaimResult]:
    """The alarms on the stored series, this run included: ``canary.over_refusal_rolling`` (the
    runs of ``[canary] window_days`` pooled) and ``canary.over_refusal_weekly`` (the last 7 days
    vs the 7 before), over the earlier canary runs against the same reference, arm and context."""
    days = config.canary.window_days
    earlier = [(datetime.fromisoformat(r.finished_at), r.figures.get("canary.over_refusal", {}))
               for r in store.canary_runs()
               if r.arm == arm and r.context == context and r.reference_run_id == reference.run_id]
    current = next((dict(r.figures) for r in results if r.claim.id == "canary.over_refusal"), {})
    since = now - timedelta(days=days)
    rolling = rolling_over_refusal([f for t, f in earlier if t >= since] + [current], options, f"{days} days")
    weekly = weekly_over_refusal([*earlier, (now, current)], now, options)
    return rolling, weekly


def _aa_answers(
    store: Store, reference: RunSummary, context: str, answers: list[StoredResponse]
) -> dict[tuple[str, str], list[StoredResponse]]:
    """(battery, prompt_id) -> the reference run's A/A replicates (``baseline~aa``) of the T > 0
    canary prompts: same prompt text, temperature, max_tokens and top_p, independent seeds."""
    wanted = {(r.battery, r.prompt_id): r for r in answers if r.temperature > 0}
    aa = store.run_server(reference.run_id, "baseline~aa", context) if wanted else None
    if aa is None:
        return {}
    out: dict[tuple[str, str], list[StoredResponse]] = defaultdict(list)
    for r in store.responses_of(aa.arm_fingerprint, aa.stack_fingerprint, context):
        ref = wanted.get((r.battery, r.prompt_id))
        if ref is not None and (r.prompt_sha256, r.temperature, r.max_tokens, r.top_p) == \
                (ref.prompt_sha256, ref.temperature, ref.max_tokens, ref.top_p):
            out[(r.battery, r.prompt_id)].append(r)
    return dict(out)


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
    groups = [watched, certified]
    aa_answers = _aa_answers(store, reference, ctx.label, answers)
    aa_keys = tuple((_key_of(r), prompts[(r.battery, r.prompt_id)]) for rs in aa_answers.values() for r in rs)
    if aa_keys:  # the T > 0 floor: the cohort labels the reference run's A/A replicates too
        aa_fp = next(iter(aa_answers.values()))[0].arm_fingerprint
        groups.append(replace(group, spec=SimpleNamespace(fingerprint=aa_fp), contexts=(ctx,),
                              keys={ctx.label: aa_keys}))
        progress(f"servecert canary: T > 0 floor from {len(aa_keys)} A/A replicates of {len(aa_answers)} "
                 f"prompts of run {reference.run_id[:12]}")
    judge_plan = Plan(model_path=plan.model_path, parameters=plan.parameters, batteries=plan.batteries,
                      groups=tuple(groups))
    judged = judge(config.judges, judge_plan, store, progress)
    labels = store.labels_for(judged.cohort_fingerprint,
                              [k.fingerprint for k, _ in canary_keys + ref_keys + aa_keys])
    pairs = [
        CanaryPair(r.battery, r.prompt_id, plan.batteries[r.battery][0].harmful, r.expected, r.temperature,
                   labels.get(r.fingerprint), labels.get(ck.fingerprint),
                   tuple(labels.get(x.fingerprint) for x in aa_answers.get((r.battery, r.prompt_id), ())))
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
    from ..claims.catalogue import claim

    return claim(claim_id)


# -- what the CLI and the pytest alias print -------------------------------------------------------


def canary_lines(run: CanaryRun, gate_option: str = "--servecert-gate") -> list[str]:
    """One line per canary claim (verdict, headline, reason), then the gate's block
    (``gate_option``: the flag that sets its policy, ``--gate`` under ``servecert canary``)."""
    out = [f"servecert canary {run.id[:12]} of {run.arm} ({run.context}) vs certified run "
           f"{run.reference.run_id[:12]} ({run.reference.status}):"]
    for r in run.results:
        out.append(f"  {r.id}: {r.verdict.value}: {r.headline}" + (f" — {r.reason}" if r.reason else ""))
    out.append(f"  alarm: {'YES' if run.alarm else 'no'}; Prometheus textfile {run.prometheus_file}")
    return out + run.gate.lines(gate_option)


def _cell(figures: Mapping[str, Any], claim: str, key: str, fmt: str) -> str:
    value = figures.get(claim, {}).get(key)
    return format(value, fmt) if isinstance(value, (int, float)) else "-"


def history_lines(records: list[CanaryRecord]) -> list[str]:
    """The canary series as a Markdown table, oldest first."""
    out = ["| finished (UTC) | arm | reference | alarm | harmful b/n | harmful core | refusal drift pp | "
           "over-refusal | rolling | week over week pp | weekly | stack drift | κ |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        f, v = r.figures, r.verdicts
        changed = f.get("canary.stack_drift", {}).get("changed") or []
        rolling = next((verdict for key, verdict in v.items() if key.startswith("canary.over_refusal_rolling")), "-")
        out.append(
            f"| {r.finished_at} | {r.arm} | {r.reference_run_id[:12]} | {'YES' if r.alarm else 'no'} | "
            f"{_cell(f, 'canary.harmful_core', 'sum_b', 'd')}/{_cell(f, 'canary.harmful_core', 'n_pairs', 'd')} | "
            f"{v.get('canary.harmful_core', '-')} | {_cell(f, 'canary.over_refusal', 'drift_pp', '+.1f')} | "
            f"{v.get('canary.over_refusal', '-')} | {rolling} | "
            f"{_cell(f, 'canary.over_refusal_weekly', 'drift_pp', '+.1f')} | "
            f"{v.get('canary.over_refusal_weekly', '-')} | {v.get('canary.stack_drift', '-')}"
            f"{' (' + ', '.join(changed) + ')' if changed else ''} | "
            f"{_cell(f, 'canary.judge_kappa', 'kappa', '.3f')} |"
        )
    if not records:
        out.append("| (no canary run recorded yet) | | | | | | | | | | | | |")
    return out


def exit_status(run: CanaryRun) -> int:
    """1 on an alarm, or under the strict policy when a required canary claim is not
    CERTIFIED/MONITOR; else 0."""
    return int(run.alarm or run.gate.blocks_exit)
