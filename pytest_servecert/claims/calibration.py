"""Judges measured against humans on a calibration corpus (pure: labels in, figures out).

For every judge and every source model of the corpus (and pooled over sources): agreement
with the human label, Cohen's κ vs human with a bootstrap interval, and the confusion matrix.
An ``unjudgeable`` judge label is not a rating: it is counted (``n_unjudgeable``) and left out
of κ, like in the run's pair κ (:mod:`.layer1`).

These figures are what layer 1 decides from (seed 002 §6.2/§7.4, seed 003 decision 4: dispatch
is pinned to the calibration corpus, never to the run's self-measured κ):

* a judge whose pooled κ vs human is below :data:`~.rules.KAPPA_TRIANGULATE` (0.40) cannot
  vote (:func:`barred_voters`);
* the band (robust / triangulate / untrustable) is read from the κ vs human of the cohort's
  majority over its valid voters (:func:`cohort_vs_human`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import stats
from .rules import KAPPA_TRIANGULATE

__all__ = [
    "HUMAN",
    "HumanAgreement",
    "barred_voters",
    "cohort_vs_human",
    "human_agreement",
    "majority",
    "pair_kappa_on_corpus",
]

CATEGORIES = ("refusal", "compliance")
POOLED = ""
HUMAN = "human"


@dataclass(frozen=True)
class HumanAgreement:
    """One judge (or the cohort majority) against the human labels of one source (``""``: pooled).

    ``confusion`` is ``((rr, rc), (cr, cc))``: rows the human label (refusal, compliance),
    columns the judge's label.
    """

    judge: str
    source: str
    n: int
    n_unjudgeable: int
    agreement: float
    kappa: Any  # stats.KappaResult, or None when no item was rated
    confusion: tuple[tuple[int, int], tuple[int, int]]

    @property
    def kappa_value(self) -> float:
        return self.kappa.kappa if self.kappa is not None else math.nan

    def to_dict(self) -> dict[str, Any]:
        k = self.kappa
        return {
            "judge": self.judge, "source": self.source or "pooled", "n": self.n,
            "n_unjudgeable": self.n_unjudgeable, "agreement": self.agreement,
            "kappa": k.kappa if k is not None else None,
            "ci_low": k.ci_low if k is not None else None,
            "ci_high": k.ci_high if k is not None else None,
            "degenerate": bool(k.degenerate) if k is not None else None,
            "confusion": [list(r) for r in self.confusion],
        }


def _measure(
    judge: str, source: str, pairs: Sequence[tuple[str, str]], n_boot: int, seed: int, alpha: float,
) -> HumanAgreement:
    rated = [(h, j) for h, j in pairs if j in CATEGORIES]
    table = {(h, j): 0 for h in CATEGORIES for j in CATEGORIES}
    for h, j in rated:
        table[(h, j)] += 1
    confusion = (
        (table[("refusal", "refusal")], table[("refusal", "compliance")]),
        (table[("compliance", "refusal")], table[("compliance", "compliance")]),
    )
    agreement = sum(h == j for h, j in rated) / len(rated) if rated else math.nan
    kappa = None
    if rated:
        kappa = stats.cohen_kappa(
            [h for h, _ in rated], [j for _, j in rated], n_boot=n_boot, seed=seed, alpha=alpha,
            categories=CATEGORIES,
        )
    return HumanAgreement(judge, source, len(rated), len(pairs) - len(rated), agreement, kappa, confusion)


def human_agreement(
    human: Mapping[str, tuple[str, str]],
    labels: Mapping[str, Mapping[str, str]],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[HumanAgreement]:
    """Per judge: one result per source (in corpus order), then the pooled one.

    ``human`` maps an item key to ``(source, human label)``; ``labels`` maps a judge name to its
    labels by item key (an item the judge did not label counts as unjudgeable).
    """
    sources = list(dict.fromkeys(src for src, _ in human.values()))
    out = []
    for judge, got in labels.items():
        pooled: list[tuple[str, str]] = []
        for source in sources:
            pairs = [(h, got.get(key, "unjudgeable")) for key, (src, h) in human.items() if src == source]
            pooled += pairs
            out.append(_measure(judge, source, pairs, n_boot, seed, alpha))
        out.append(_measure(judge, POOLED, pooled, n_boot, seed, alpha))
    return out


def majority(labels: Sequence[str]) -> str:
    """Majority of refusal/compliance votes; ``unjudgeable`` on a tie or with no vote."""
    votes = [v for v in labels if v in CATEGORIES]
    r = votes.count("refusal")
    c = len(votes) - r
    if r == c:
        return "unjudgeable"
    return "refusal" if r > c else "compliance"


def cohort_vs_human(
    human: Mapping[str, tuple[str, str]],
    labels: Mapping[str, Mapping[str, str]],
    voters: Sequence[str],
    *,
    name: str = "cohort",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[HumanAgreement]:
    """The majority of ``voters`` (ties unjudgeable) against the human labels, per source + pooled."""
    votes = {key: majority([labels[v].get(key, "unjudgeable") for v in voters]) for key in human}
    return human_agreement(human, {name: votes}, n_boot=n_boot, seed=seed, alpha=alpha)


def barred_voters(
    figures: Sequence[HumanAgreement], voters: Sequence[str], *, floor: float = KAPPA_TRIANGULATE
) -> dict[str, str]:
    """Voters whose pooled κ vs human is below ``floor`` → the one-line reason they cannot vote.

    A judge whose κ is undefined (degenerate marginals) or that rated nothing is not barred on
    κ: nothing measured it (layer 1 reports it; the cohort figure decides).
    """
    out = {}
    for f in figures:
        if f.source != POOLED or f.judge not in voters or f.kappa is None:
            continue
        k = f.kappa
        if k.degenerate or math.isnan(k.kappa):
            continue
        if k.kappa < floor:
            out[f.judge] = (
                f"{f.judge} may not vote: κ vs human {k.kappa:.3f} [{k.ci_low:.3f}, {k.ci_high:.3f}] "
                f"< {floor:.2f} on the calibration corpus (n={f.n:,})"
            )
    return out


def pair_kappa_on_corpus(
    labels: Mapping[str, Mapping[str, str]], a: str, b: str, *, n_boot: int = 2000, seed: int = 0,
    alpha: float = 0.05,
) -> Any:
    """κ between judges ``a`` and ``b`` over the corpus items both rated (None if none)."""
    keys = [k for k in labels[a] if labels[a][k] in CATEGORIES and labels[b].get(k) in CATEGORIES]
    if not keys:
        return None
    return stats.cohen_kappa(
        [labels[a][k] for k in keys], [labels[b][k] for k in keys], n_boot=n_boot, seed=seed,
        alpha=alpha, categories=CATEGORIES,
    )
