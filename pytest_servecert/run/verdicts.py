"""Claims phase: cells and labels become layer-5, layer-1 and scope results (``claims/``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..claims.cells import CellTable
from ..claims.layer1 import (
    CorpusLabels,
    JudgeInfo,
    anchor_result,
    evaluate_layer1,
    evaluate_layer1_calibrated,
)
from ..claims.layer5 import Layer5Options, evaluate_layer5, licensable_sentence
from ..claims.model import ClaimResult
from ..claims.rules import mechanistic_gate_lint, scale_band
from ..config import ServecertConfig
from ..judges.base import JudgeSpec


def layer5_claims(
    config: ServecertConfig, cells: Mapping[str, tuple[CellTable, ...]]
) -> tuple[tuple[ClaimResult, ...], dict[str, str]]:
    """Each candidate's layer-5 results (subject prefixed by the candidate) and its sentence."""
    cfg = config.claims
    options = Layer5Options(
        margin_pp=cfg.margin_pp, alpha=cfg.alpha, tost_method=cfg.tost_method, n_boot=cfg.n_boot,
        seed=config.sampling.seed, max_unjudgeable_rate=config.judges.max_unjudgeable_rate,
        spread_limit_pp=cfg.spread_limit_pp, rules=cfg.rules, power=cfg.power,
    )
    results: list[ClaimResult] = []
    sentences: dict[str, str] = {}
    for candidate, candidate_cells in cells.items():
        layer5 = evaluate_layer5(candidate_cells, options)
        sentences[candidate] = licensable_sentence(
            layer5, candidate_cells, treatment=treatment(config, candidate)
        )
        for r in layer5.all():
            # Several candidates share claim ids: the subject names the candidate.
            subject = f"{candidate}:{r.subject}" if r.subject else candidate
            results.append(replace(r, subject=subject))
    return tuple(results), sentences


def layer1_claims(
    config: ServecertConfig, specs: Sequence[JudgeSpec],
    label_records: Mapping[str, Sequence[Mapping[str, str]]], n_voters: int,
    corpus: CorpusLabels | None = None, voters: Sequence[str] = (),
    calibration_seconds: Mapping[str, float] | None = None,
) -> tuple[tuple[ClaimResult, ...], tuple[dict[str, Any], ...]]:
    """JTP (pooled first, then per battery), the anchor-pair result, and every judge pair's κ
    row for the certificate. With a calibration ``corpus`` (#20) layer 1 is decided against the
    human labels (:func:`evaluate_layer1_calibrated`); the pooled result's figures carry every
    judge's κ vs human per source (``human``) and the out-of-distribution warnings."""
    judges = [JudgeInfo(s.name, s.kind, s.family) for s in specs]
    if corpus is not None:
        outcome = evaluate_layer1_calibrated(
            label_records, judges, corpus, voters=voters,
            n_boot=config.claims.n_boot, seed=config.sampling.seed,
        )
        pairs = outcome.pairs
        human = [h.to_dict() for h in outcome.human]
        results: tuple[ClaimResult, ...] = tuple(
            replace(r, figures={**r.figures, "human": human, "warnings": list(outcome.warnings),
                                "calibration_seconds": dict(calibration_seconds or {})})
            if not r.subject else r
            for r in outcome.results
        )
    else:
        results, pairs = evaluate_layer1(
            label_records, judges, n_voters=n_voters,
            n_boot=config.claims.n_boot, seed=config.sampling.seed,
        )
    judge_pairs = tuple(
        {"pair": p.name, "role": p.role, "battery": p.battery or "pooled", "n": p.n,
         **({"kappa": p.kappa.kappa, "ci_low": p.kappa.ci_low, "ci_high": p.kappa.ci_high,
             "pabak": p.kappa.pabak, "degenerate": p.kappa.degenerate}
            if p.kappa is not None else {})}
        for p in pairs
    )
    cfg = config.judges
    return (*results, anchor_result(pairs, cfg.anchor_pair, cfg.anchor_kappa)), judge_pairs


def scope_claims(config: ServecertConfig, parameters: int | None) -> tuple[ClaimResult, ...]:
    out = [mechanistic_gate_lint(config.raw, source=str(config.path))]
    if parameters:
        out.append(
            scale_band(parameters, model=config.model.name, envelope=config.claims.scale_band)
        )
    return tuple(out)


def treatment(config: ServecertConfig, candidate: str) -> str:
    """A readable name for what the candidate changes, from its fixed axis settings."""
    arm = next(a for a in config.candidates if a.name == candidate)
    parts = []
    for axis, value in arm.settings.items():
        if axis == "kv_cache_dtype":
            parts.append(f"a {value} KV cache")
        elif axis == "speculative" and isinstance(value, dict):
            parts.append(f"speculative decoding ({value.get('method', 'on')})")
        else:
            parts.append(f"{axis}={value}")
    if arm.args:
        parts.append("server flags " + " ".join(arm.args))
    return " and ".join(parts) or f"the {candidate} arm"
