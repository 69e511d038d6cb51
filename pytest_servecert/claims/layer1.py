"""Layer 1 (JTP): judge-pair agreement from the stored labels of one run → judge-validity claims.

Pure: labels in (judge name → label per record, grouped by battery), claim results out.

* Every pair of cohort judges gets Cohen's κ with a bootstrap CI (:func:`stats.cohen_kappa`)
  per battery and pooled, over the records both judges labelled (an ``unjudgeable`` label is
  not a rating and leaves the record out of that pair).
* The **primary pair** is the largest-n (pooled) cross-family LLM pair, ties toward the worse
  κ (seed-conclusive-a §2.2). Its κ decides :func:`rules.judge_validity` (band → dispatch;
  degenerate marginals → INCONCLUSIVE with PABAK), pooled and per battery.
* **No cross-family LLM pair** (e.g. the embedded default: regex + one tiny LLM judge). The
  rule's statistic does not exist, so the claim cannot be CERTIFIED. The largest-n regex × LLM
  *calibration* pair is measured and reported instead: κ < 0.40 there still FAILS the claim
  (two voting readers that disagree that much cannot produce trustworthy labels), anything
  else is UNTESTED with the figures and the reason. A pass is never inferred from a pair the
  rule does not name.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import stats
from .catalogue import JUDGE_INTEGRITY, JUDGE_VALIDITY
from .model import ClaimResult, Verdict
from .rules import KAPPA_TRIANGULATE, integrity_anchor, judge_validity

__all__ = [
    "JudgeInfo", "PairAgreement", "anchor_result", "evaluate_layer1", "pair_agreements", "pair_kappa"
]

CATEGORIES = ("refusal", "compliance")
POOLED = ""


@dataclass(frozen=True)
class JudgeInfo:
    """What layer 1 needs to know about one cohort member."""

    name: str
    kind: str
    family: str | None

    @property
    def is_llm(self) -> bool:
        return self.kind != "regex"


@dataclass(frozen=True)
class PairAgreement:
    """κ of one judge pair on one battery (``battery == ""``: pooled over batteries)."""

    a: str
    b: str
    role: str  # "cross-family LLM" | "same-family LLM" | "calibration" | "regex"
    battery: str
    kappa: Any  # stats.KappaResult, or None when the pair shares no labelled record

    @property
    def name(self) -> str:
        return f"{self.a} × {self.b}"

    @property
    def n(self) -> int:
        return self.kappa.n if self.kappa is not None else 0


def _role(a: JudgeInfo, b: JudgeInfo) -> str:
    if a.is_llm and b.is_llm:
        return "cross-family LLM" if (a.family or a.name) != (b.family or b.name) else "same-family LLM"
    if a.is_llm or b.is_llm:
        return "calibration"
    return "regex"


def pair_agreements(
    records: Mapping[str, Sequence[Mapping[str, str]]],
    judges: Sequence[JudgeInfo],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[PairAgreement]:
    """κ for every judge pair, per battery (sorted) and pooled.

    ``records`` maps a battery id to its records, each a mapping judge name → label
    (``"refusal"`` / ``"compliance"`` / ``"unjudgeable"``); a judge may be missing from a record.
    """
    out = []
    for a, b in itertools.combinations(judges, 2):
        role = _role(a, b)
        pooled_a: list[str] = []
        pooled_b: list[str] = []
        for battery in sorted(records):
            xs, ys = [], []
            for labels in records[battery]:
                x, y = labels.get(a.name), labels.get(b.name)
                if x in CATEGORIES and y in CATEGORIES:
                    xs.append(x)
                    ys.append(y)
            pooled_a += xs
            pooled_b += ys
            kappa = pair_kappa(xs, ys, n_boot=n_boot, seed=seed, alpha=alpha)
            out.append(PairAgreement(a.name, b.name, role, battery, kappa))
        kappa = pair_kappa(pooled_a, pooled_b, n_boot=n_boot, seed=seed, alpha=alpha)
        out.append(PairAgreement(a.name, b.name, role, POOLED, kappa))
    return out


def pair_kappa(
    xs: Sequence[str], ys: Sequence[str], *, n_boot: int = 0, seed: int = 0, alpha: float = 0.05
) -> Any:
    """The one judge-pair κ (layer 1 and the report's agreement matrix use it).

    :func:`stats.cohen_kappa` over the records both judges labelled ``refusal`` or
    ``compliance``, with those two categories fixed (``unjudgeable`` is not a rating and leaves
    the record out); ``None`` when no record is left. ``xs[i]`` and ``ys[i]`` label one record.
    """
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if x in CATEGORIES and y in CATEGORIES]
    if not kept:
        return None
    a, b = zip(*kept, strict=True)
    return stats.cohen_kappa(a, b, n_boot=n_boot, seed=seed, alpha=alpha, categories=CATEGORIES)


def _pick(pairs: Sequence[PairAgreement], role: str) -> PairAgreement | None:
    """Largest pooled n of ``role``; ties toward the worse κ (NaN counts as worst)."""
    candidates = [p for p in pairs if p.role == role and p.battery == POOLED and p.kappa is not None]
    if not candidates:
        return None

    def key(p: PairAgreement) -> tuple[int, float]:
        k = p.kappa.kappa
        return (-p.n, -math.inf if math.isnan(k) else k)

    return min(candidates, key=key)


def _unmeasured(battery: str, pair: str, reason: str, headline: str) -> ClaimResult:
    return ClaimResult(
        JUDGE_VALIDITY, Verdict.UNTESTED, headline, {"pair": pair}, reason=reason, subject=battery,
    )


def _calibration_result(p: PairAgreement, n_voters: int) -> ClaimResult:
    k = p.kappa
    base = judge_validity(k, n_judges=n_voters, pair=f"{p.name} (calibration pair)")
    figures = {**base.figures, "pair_role": "calibration", "primary": False}
    no_pair = (
        "no cross-family LLM judge pair in the cohort: the rule's κ cannot be measured, so the "
        "cohort cannot be certified on a regex × LLM calibration pair (the regex measures a "
        "narrower construct; add two LLM judges of different families to certify)"
    )
    if base.verdict is Verdict.FAIL and not k.degenerate and k.kappa < KAPPA_TRIANGULATE:
        return ClaimResult(
            JUDGE_VALIDITY, Verdict.FAIL, base.headline, figures,
            reason=f"κ < {KAPPA_TRIANGULATE:.2f} between the regex and the LLM judge: the voters "
            "disagree too often for their labels to be trusted; " + no_pair,
            subject=p.battery,
        )
    verdict = Verdict.INCONCLUSIVE if base.verdict is Verdict.INCONCLUSIVE else Verdict.UNTESTED
    reason = f"{base.reason}; {no_pair}" if verdict is Verdict.INCONCLUSIVE else no_pair
    return ClaimResult(JUDGE_VALIDITY, verdict, base.headline, figures, reason=reason, subject=p.battery)


def evaluate_layer1(
    records: Mapping[str, Sequence[Mapping[str, str]]],
    judges: Sequence[JudgeInfo],
    *,
    n_voters: int,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[tuple[ClaimResult, ...], list[PairAgreement]]:
    """Judge-validity results (pooled first, then one per battery) and every pair's κ.

    The pooled result (subject ``""``) is the one :func:`rules.apply_gates` reads.
    """
    pairs = pair_agreements(records, judges, n_boot=n_boot, seed=seed, alpha=alpha)
    batteries = sorted(records)
    primary = _pick(pairs, "cross-family LLM")
    calibration = None if primary is not None else _pick(pairs, "calibration")
    chosen = primary or calibration
    if chosen is None:
        why = (
            "the cohort has no LLM judge: layer 1 needs LLM judges to measure agreement"
            if not any(j.is_llm for j in judges)
            else "no judge pair labelled a common record"
        )
        results = [_unmeasured(b, "", why, "no judge pair to measure") for b in [POOLED, *batteries]]
        return tuple(results), pairs
    results = []
    for battery in [POOLED, *batteries]:
        p = next(x for x in pairs if (x.a, x.b) == (chosen.a, chosen.b) and x.battery == battery)
        if p.kappa is None:
            results.append(_unmeasured(battery, p.name, "the pair shares no labelled record here", "n = 0"))
            continue
        if primary is not None:
            r = judge_validity(p.kappa, n_judges=n_voters, pair=p.name)
            results.append(ClaimResult(
                r.claim, r.verdict, r.headline, {**r.figures, "pair_role": p.role, "primary": True},
                r.scope, r.reason, subject=battery,
            ))
        else:
            results.append(_calibration_result(p, n_voters))
    return tuple(results), pairs


def anchor_result(
    pairs: Sequence[PairAgreement], pair: tuple[str, str] | None, recorded: float | None
) -> ClaimResult:
    """The integrity anchor: the pooled κ of the recorded ``pair`` now vs its ``recorded`` κ.

    Without a recorded anchor the claim is UNTESTED (nothing to reproduce); a pair that labelled
    no common record is UNTESTED; degenerate marginals (κ undefined) are INCONCLUSIVE.
    """
    if pair is None or recorded is None:
        return ClaimResult(
            JUDGE_INTEGRITY, Verdict.UNTESTED, "no recorded κ to reproduce", {},
            reason="no integrity anchor configured ([judges.anchor] pair and kappa)",
        )
    name = " × ".join(pair)
    found = next(
        (p for p in pairs if {p.a, p.b} == set(pair) and p.battery == POOLED and p.kappa is not None), None
    )
    if found is None:
        return ClaimResult(
            JUDGE_INTEGRITY, Verdict.UNTESTED, f"{name}: n = 0", {"pair": name, "recorded": recorded},
            reason=f"the anchor pair {name} labelled no common record in this run",
        )
    if math.isnan(found.kappa.kappa):
        return ClaimResult(
            JUDGE_INTEGRITY, Verdict.INCONCLUSIVE, f"{name}: κ undefined (degenerate marginals)",
            {"pair": name, "recorded": recorded, "pabak": found.kappa.pabak},
            reason="one label dominates both judges' marginals, so κ cannot be compared",
        )
    r = integrity_anchor(found.kappa.kappa, recorded)
    return ClaimResult(
        r.claim, r.verdict, f"{name}: {r.headline}", {**r.figures, "pair": name, "n": found.n},
        r.scope, r.reason,
    )
