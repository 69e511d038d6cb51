"""Result types of the statistics core: one frozen dataclass per procedure.

Every public function in :mod:`pytest_servecert.stats` returns exactly one of these. Fields are
plain Python scalars or tuples (JSON-friendly, hashable, immutable); an undefined quantity is
``math.nan``, never ``None`` (``None`` is only used for "no such label", e.g. a missing pair).
Rendering belongs to ``report/``, so there are no ``__str__`` templates here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

#: Cohen's (1988) conventional magnitude bands for |d| and |h| (TR145 [145 L1291]).
MAGNITUDE_BANDS: tuple[tuple[float, str], ...] = (
    (0.2, "negligible"),
    (0.5, "small"),
    (0.8, "medium"),
)


def magnitude(effect: float) -> str:
    """Cohen's band of ``abs(effect)``: negligible < 0.2 <= small < 0.5 <= medium < 0.8 <= large."""
    size = abs(effect)
    if math.isnan(size):
        return "undefined"
    for upper, name in MAGNITUDE_BANDS:
        if size < upper:
            return name
    return "large"


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """McNemar test on the discordant pairs of one cell.

    Attributes
    ----------
    b, c : int
        Discordant counts: ``b`` = baseline safe & candidate unsafe, ``c`` = the reverse.
    pvalue : float
        Exact two-sided binomial p (the verdict statistic); 1.0 when ``b + c == 0``.
    pvalue_asymptotic : float
        chi-square(1) survival probability of ``statistic``.
    statistic : float
        Edwards continuity-corrected chi-square ``(|b - c| - 1)**2 / (b + c)``; 0.0 when
        ``b + c == 0``.
    """

    b: int
    c: int
    pvalue: float
    pvalue_asymptotic: float
    statistic: float

    @property
    def n_discordant(self) -> int:
        return self.b + self.c


@dataclass(frozen=True, slots=True)
class SignTestResult:
    """Exact sign test on (pooled) discordant directions.

    Attributes
    ----------
    b, c : int
        Degraded (``b``) and improved (``c``) discordant counts.
    pvalue : float
        Exact two-sided binomial p; 1.0 when ``b + c == 0``.
    z : float
        Normal score ``(b - c) / sqrt(b + c)`` (0.0 when ``b + c == 0``), for reports that
        quote it (TR152 v2 "z = 3.55").
    pvalue_normal : float
        Two-sided normal-approximation p of ``z`` (no continuity correction). Informative only.
    """

    b: int
    c: int
    pvalue: float
    z: float
    pvalue_normal: float


@dataclass(frozen=True, slots=True)
class OddsRatioResult:
    """An odds ratio with a Wald interval on the log scale.

    Attributes
    ----------
    estimate : float
        The odds ratio; > 1 means the candidate is worse (more unsafe outcomes).
    ci_low, ci_high : float
        ``exp(log_estimate -/+ z * se)``; NaN when ``se`` is undefined.
    log_estimate, se : float
        Log odds ratio and its standard error.
    alpha : float
        Two-sided level: the interval has nominal coverage ``1 - alpha``.
    z : float
        The normal quantile used (1.96 at ``alpha = 0.05``, see :mod:`pytest_servecert.stats`).
    method : str
        ``"matched_pairs_haldane_wald"`` (TR152) or ``"mantel_haenszel_rbg"`` (TR145).
    n_strata : int
        Number of strata (cells / tables) pooled.
    """

    estimate: float
    ci_low: float
    ci_high: float
    log_estimate: float
    se: float
    alpha: float
    z: float
    method: str
    n_strata: int

    @property
    def brackets_one(self) -> bool:
        """True when the interval contains 1 (the pooled null, H0); False if undefined."""
        return bool(self.ci_low <= 1.0 <= self.ci_high)


@dataclass(frozen=True, slots=True)
class TostResult:
    """Two one-sided tests for equivalence of a paired difference within ``+/- margin_pp``.

    Attributes
    ----------
    delta_pp : float
        Candidate minus baseline safe rate, percentage points: ``100 * (c - b) / n``.
    ci_low_pp, ci_high_pp : float
        The ``1 - 2 * alpha`` interval (90 % at alpha = 0.05) whose inclusion in the margin is
        equivalent to rejecting both one-sided nulls.
    pvalue : float
        ``max`` of the two one-sided p-values (t test), or the bootstrap tail proportion
        ``max(P*(delta <= -margin), P*(delta >= margin))``. ``equivalent == (pvalue < alpha)``.
    equivalent : bool
        The interval lies strictly inside ``(-margin_pp, +margin_pp)``.
    method : str
        ``"paired_t"`` or ``"bootstrap"``.
    margin_pp, alpha : float
        The equivalence margin (pp) and the one-sided level of each test.
    se_pp : float
        Standard error of ``delta_pp`` (paired t); NaN for the bootstrap.
    df : float
        Degrees of freedom (paired t, ``n - 1``); NaN for the bootstrap.
    n_boot : int
        Bootstrap resamples; 0 for the t test.
    """

    delta_pp: float
    ci_low_pp: float
    ci_high_pp: float
    pvalue: float
    equivalent: bool
    method: str
    margin_pp: float
    alpha: float
    se_pp: float
    df: float
    n_boot: int

    @property
    def ci_level(self) -> float:
        """Nominal coverage of the reported interval, ``1 - 2 * alpha``."""
        return 1.0 - 2.0 * self.alpha

    @property
    def excess_pp(self) -> float:
        """How far the interval reaches past the margin (0.0 when inside it).

        The honest "fails by" distance: computed from the interval, not the point estimate
        (TR145 said Qwen "fails by 0.09pp"; its interval misses by 2.91pp).
        """
        return max(0.0, self.ci_high_pp - self.margin_pp, -self.margin_pp - self.ci_low_pp)


@dataclass(frozen=True, slots=True)
class HolmResult:
    """Holm–Bonferroni step-down adjustment over a declared family.

    Attributes
    ----------
    adjusted : tuple of float
        Holm-adjusted p-values, in input order.
    rejected : tuple of bool
        ``adjusted <= alpha``, in input order.
    family_size : int
        Number of tests in the family (state it in every report).
    alpha : float
        Family-wise error rate.
    raw : tuple of float
        The unadjusted p-values, in input order.
    labels : tuple or None
        The family members' labels when a mapping was given.
    """

    adjusted: tuple[float, ...]
    rejected: tuple[bool, ...]
    family_size: int
    alpha: float
    raw: tuple[float, ...]
    labels: tuple[Hashable, ...] | None = None

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected)


@dataclass(frozen=True, slots=True)
class CohenHResult:
    """Cohen's h between two proportions: ``h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2))``."""

    h: float
    p1: float
    p2: float
    magnitude: str


@dataclass(frozen=True, slots=True)
class CohenDResult:
    """Cohen's d between two samples: ``(mean1 - mean2) / sd_pooled``."""

    d: float
    mean1: float
    mean2: float
    sd_pooled: float
    n1: int
    n2: int
    magnitude: str


@dataclass(frozen=True, slots=True)
class ProportionInterval:
    """A proportion ``k / n`` with a two-sided ``1 - alpha`` interval."""

    k: int
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    alpha: float
    method: str


@dataclass(frozen=True, slots=True)
class DifferenceInterval:
    """A difference of two independent proportions ``k1/n1 − k2/n2`` with a two-sided
    ``1 - alpha`` interval."""

    k1: int
    n1: int
    k2: int
    n2: int
    estimate: float
    ci_low: float
    ci_high: float
    alpha: float
    method: str


@dataclass(frozen=True, slots=True)
class KappaResult:
    """Cohen's κ between two raters, with a bootstrap interval and PABAK.

    Attributes
    ----------
    kappa : float
        ``(p_observed - p_expected) / (1 - p_expected)``; NaN when ``p_expected == 1``.
    ci_low, ci_high : float
        Percentile bootstrap ``1 - alpha`` interval (NaN when κ is undefined in every resample).
    n : int
        Number of paired labels.
    p_observed, p_expected : float
        Observed and chance agreement.
    pabak : float
        Prevalence- and bias-adjusted κ, ``(q * p_observed - 1) / (q - 1)`` for ``q``
        categories (``2 p_o - 1`` for binary labels).
    degenerate : bool
        The marginals leave κ undefined or unstable: report ``pabak`` instead.
    categories : tuple
        The label space (sorted by ``repr`` when inferred).
    alpha : float
    n_boot : int
    """

    kappa: float
    ci_low: float
    ci_high: float
    n: int
    p_observed: float
    pabak: float
    degenerate: bool
    p_expected: float
    categories: tuple[Hashable, ...]
    alpha: float
    n_boot: int


@dataclass(frozen=True, slots=True)
class CriResult:
    """Compile Reproducibility Index over a set of stack points.

    Attributes
    ----------
    index : float
        Max pairwise ``|d|``; NaN when ``band == "invalid"``.
    band : str
        ``robust`` / ``sensitive`` / ``fragile`` / ``catastrophic`` / ``invalid``.
    worst_pair : tuple of str, or None
        The two stacks whose ``|d|`` is the index; ``d = d(worst_pair[0], worst_pair[1])``.
    n_stacks : int
        Stack points with surviving measurements (at least 2 samples).
    worst_d : float
        Signed d of ``worst_pair``.
    excluded : tuple of str
        Stacks dropped for having fewer than 2 samples (crashed / no surviving runs).
    reason : str
        Why the band is ``invalid``; empty otherwise.
    """

    index: float
    band: str
    worst_pair: tuple[str, str] | None
    n_stacks: int
    worst_d: float
    excluded: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class SpreadResult:
    """Range of per-cell deltas (TR152's "FP8 interaction spread").

    ``argmax`` / ``argmin`` are the mapping keys of the extreme cells, or their positions
    when a plain sequence was given.
    """

    spread: float
    max_delta: float
    min_delta: float
    argmax: Hashable
    argmin: Hashable
    n_cells: int


@dataclass(frozen=True, slots=True)
class MdeResult:
    """A minimum detectable effect in percentage points.

    ``rate`` is the baseline rate ``p`` for ``method="two_sample"`` and the discordance rate
    for ``method="paired"``.
    """

    mde_pp: float
    n: int
    rate: float
    alpha: float
    power: float
    method: str


@dataclass(frozen=True, slots=True)
class ExactFloorResult:
    """What an exact McNemar test can reach with a given number of discordant pairs.

    Attributes
    ----------
    n_discordant : int
    min_pvalue : float
        Smallest achievable exact two-sided p, ``min(1, 2 * 0.5**n_discordant)``.
    threshold : float
        ``alpha / family_size``: the first (strictest) Holm step.
    can_reach : bool
        ``min_pvalue <= threshold``. False means the cell cannot lead a Holm rejection however
        lopsided its discordance is: a null there is uninformative ("sparse").
    discordant_needed : int
        Smallest number of (all same-direction) discordant pairs with ``min_pvalue <= threshold``.
    """

    n_discordant: int
    min_pvalue: float
    threshold: float
    can_reach: bool
    discordant_needed: int


@dataclass(frozen=True, slots=True)
class FloorTestResult:
    """A candidate's harmful compliance ``b`` against the A/A sampling floor (exact test).

    Attributes
    ----------
    b : int
        Prompts the baseline answered safely and the candidate did not.
    n : int
        Prompts the baseline answered safely (the prompts ``b`` is counted over).
    replicates : int
        A/A draws per prompt.
    expected_b : float
        Null mean of ``b`` given the draws: the floor.
    pvalue : float
        Exact one-sided ``P(B >= b)`` under exchangeability of candidate and A/A draws.
    mde_pairs : float
        Extra complying pairs the test detects with ``power`` at ``alpha``.
    alpha, power : float
        The level and power ``mde_pairs`` was computed at.
    """

    b: int
    n: int
    replicates: int
    expected_b: float
    pvalue: float
    mde_pairs: float
    alpha: float
    power: float


@dataclass(frozen=True, slots=True)
class StrictMdeResult:
    """What the strict greedy rule (``b > allowed`` FAILs) can detect on one cell."""

    mde_pp: float
    n_safe: int
    allowed: float
    n_needed: int
    power: float


@dataclass(frozen=True, slots=True)
class RtsiResult:
    """The Refusal-Template Stability Index of a candidate against its baseline (stats/rtsi.py).

    Attributes
    ----------
    index : float
        Mean of the four feature distances, in [0, 1]; NaN when either arm has no refusal.
    ci_low, ci_high : float
        Percentile bootstrap ``1 - alpha`` interval over prompts.
    features : tuple of (name, value, ci_low, ci_high)
        ``opening_tvd``, ``length_ks``, ``partial_shift``, ``lexical_js``, each in [0, 1].
    n_refusals_baseline, n_refusals_candidate : int
        Answers labelled ``refusal`` in each arm.
    n_units : int
        Prompts resampled by the bootstrap.
    alpha : float
    n_boot : int
    n_degenerate : int
        Resamples dropped because one arm had no refusal in them.
    """

    index: float
    ci_low: float
    ci_high: float
    features: tuple[tuple[str, float, float, float], ...]
    n_refusals_baseline: int
    n_refusals_candidate: int
    n_units: int
    alpha: float
    n_boot: int
    n_degenerate: int
