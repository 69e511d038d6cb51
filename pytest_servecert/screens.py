"""Layer-2 adapter: read the baseline's and each candidate's matched answers (texts and cohort
labels) from the store and hand them to the pure screens in :mod:`.claims.layer2`.

Nothing is sampled here: TAIS and RTSI read the answers the layer-5 plan already stored (the
T = 0 contexts of a speculative candidate are exactly TAIS's greedy contrasts).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .claims.layer2 import Layer2Options, ScreenPair, evaluate_layer2, greedy_scope_sentence
from .claims.model import ClaimResult
from .config import ServecertConfig
from .design import contexts
from .store import Store

if TYPE_CHECKING:  # run/ imports this module: no import cycle at run time
    from .run.plan import Plan

__all__ = ["ArmAnswers", "is_speculative", "layer2_claims", "layer2_results", "screen_pairs",
           "speculative_candidates"]

_OFF = (None, False, "off")


@dataclass(frozen=True)
class ArmAnswers:
    """Where one arm's answers in one context are stored."""

    arm_fingerprint: str
    stack_fingerprint: str


def _speculative(value: Any) -> Any:
    return None if value in _OFF else value


def is_speculative(config: ServecertConfig, candidate: str) -> bool:
    """Does the candidate's arm change speculative decoding relative to the baseline's?"""
    arm = next(a for a in config.candidates if a.name == candidate)
    return (_speculative(arm.settings.get("speculative"))
            != _speculative(config.baseline.settings.get("speculative")))


def speculative_candidates(config: ServecertConfig) -> list[str]:
    return [a.name for a in config.candidates if is_speculative(config, a.name)]


def screen_pairs(
    store: Store,
    baseline: ArmAnswers,
    candidate: ArmAnswers,
    *,
    context: str,
    temperature: float,
    judge_fingerprint: str,
    planned: Collection[str],
) -> list[ScreenPair]:
    """Matched answers of one context with their texts and cohort labels (planned prompts only)."""
    out = []
    for pair in store.iter_pairs(
        baseline.arm_fingerprint, candidate.arm_fingerprint, judge_fingerprint, context=context,
        baseline_stack_fp=baseline.stack_fingerprint,
        candidate_stack_fp=candidate.stack_fingerprint,
    ):
        if pair.baseline_fingerprint not in planned:
            continue
        base = store.get_response(pair.baseline_fingerprint)
        cand = store.get_response(pair.candidate_fingerprint)
        if base is None or cand is None:
            continue
        out.append(ScreenPair(
            battery=pair.battery, context=pair.context, prompt_id=pair.prompt_id,
            expected=pair.expected, temperature=float(temperature),
            baseline_text=base.text or "", candidate_text=cand.text or "",
            baseline_label=pair.baseline_label, candidate_label=pair.candidate_label,
        ))
    return out


def layer2_results(
    config: ServecertConfig,
    store: Store,
    locate: Callable[[str, str], ArmAnswers],
    *,
    not_run: Mapping[tuple[str, str], str],
    judge_fingerprint: str,
    planned: Collection[str],
) -> tuple[ClaimResult, ...]:
    """``L2.tais`` (speculative candidates) and ``L2.rtsi`` (every candidate), subject = name.

    ``locate(arm, context_label)`` says where an arm's answers of a context are stored;
    ``not_run`` maps (arm, context label) to why that server produced nothing.
    """
    options = Layer2Options(
        margin_pp=config.claims.margin_pp, alpha=config.claims.alpha,
        max_unjudgeable_rate=config.judges.max_unjudgeable_rate,
        n_boot=min(config.claims.n_boot, 2000), seed=config.sampling.seed,
    )
    design = contexts(config.design)
    temperatures = [ctx.temperature for ctx in design]
    by_label = {ctx.label: ctx.temperature for ctx in design}
    results: list[ClaimResult] = []
    for arm in config.candidates:
        pairs: list[ScreenPair] = []
        skipped: dict[str, str] = {}
        for ctx in design:
            reason = not_run.get(("baseline", ctx.label)) or not_run.get((arm.name, ctx.label))
            if reason:
                skipped[ctx.label] = reason
                continue
            pairs += screen_pairs(
                store, locate("baseline", ctx.label), locate(arm.name, ctx.label),
                context=ctx.label, temperature=ctx.temperature,
                judge_fingerprint=judge_fingerprint, planned=planned,
            )
        results += evaluate_layer2(
            arm.name, pairs, speculative=is_speculative(config, arm.name),
            temperatures=temperatures, not_run=skipped, context_temperature=by_label,
            options=options,
        )
    return tuple(results)


def layer2_claims(
    config: ServecertConfig,
    plan: Plan,
    store: Store,
    not_run: Mapping[tuple[str, str], str],
    label_set: str,
    sentences: dict[str, str],
) -> tuple[ClaimResult, ...]:
    """The run's layer-2 phase: screens over the plan's stored pairs (nothing re-sampled);
    a speculative candidate's licensable sentence gains its greedy-only TAIS scope."""
    by_cell = {(g.arm.name, c.label): g for g in plan.groups for c in g.contexts}

    def locate(arm: str, context: str) -> ArmAnswers:
        group = by_cell[(arm, context)]
        return ArmAnswers(group.spec.fingerprint, group.stack.fingerprint)

    results = layer2_results(config, store, locate, not_run=not_run,
                             judge_fingerprint=label_set, planned=plan.prompts)
    for candidate in sentences:
        if extra := greedy_scope_sentence(results, candidate):
            sentences[candidate] += " " + extra
    return results
