"""Power and sensitivity: minimum detectable effects and what an exact McNemar can reach.

Printed before a run (and next to every null), these say how large an effect a cell could have
detected, so a null reads "powered to detect X and did not" rather than "no effect"
(seed 002 L311). Quantiles are exact (``Phi^-1``): the reports' 2.80159 is
``z_0.975 + z_0.80``.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

import numpy as np
from scipy import optimize, stats

from . import _validation as check
from .results import ExactFloorResult, MdeResult, StrictMdeResult


def _z_sum(alpha: float, power: float) -> float:
    # statistics.NormalDist: the same quantiles as scipy's norm.ppf, ~100x cheaper per call.
    return NormalDist().inv_cdf(1.0 - alpha / 2.0) + NormalDist().inv_cdf(power)


def mde_two_sample(p: float, n: int, alpha: float = 0.05, power: float = 0.80) -> MdeResult:
    """Retrospective MDE of a difference between two independent proportions (TR145 SS19).

    Parameters
    ----------
    p : float
        The cell's baseline rate.
    n : int
        Observations per arm.
    alpha : float, default 0.05
        Two-sided level.
    power : float, default 0.80

    Returns
    -------
    MdeResult
        ``method="two_sample"``, ``rate = p``.

    Notes
    -----
    ::

        MDE_pp = 100 (z_{1 - alpha/2} + z_power) sqrt(2 p (1 - p) / n)
               = 100 * 2.80159 * sqrt(2 p (1 - p) / n)        at alpha = 0.05, power = 0.8

    Verified on all 12 TR145 SS19 rows (TV145-9). It ignores pairing, so it is conservative
    for matched pairs; see :func:`mde_paired` for the discordance-based paired version.
    """
    rate = check.proportion(p, "p")
    n = check.positive_count(n, "n")
    a = check.alpha(alpha)
    pw = check.alpha(power, name="power")
    mde = 100.0 * _z_sum(a, pw) * math.sqrt(2.0 * rate * (1.0 - rate) / n)
    return MdeResult(mde, n, rate, a, pw, "two_sample")


def mde_paired(
    n: int, discordance_rate: float = 1.0, alpha: float = 0.05, power: float = 0.80
) -> MdeResult:
    """MDE of a matched-pairs difference in rates from the discordance rate.

    Parameters
    ----------
    n : int
        Matched pairs in the cell.
    discordance_rate : float, default 1.0
        Expected ``(b + c) / n``. The default 1 is the worst case (largest variance).
    alpha : float, default 0.05
        Two-sided level.
    power : float, default 0.80

    Returns
    -------
    MdeResult
        ``method="paired"``, ``rate = discordance_rate``.

    Notes
    -----
    Per-pair differences ``d_i`` in {-1, 0, +1} have variance ``psi`` (the discordance rate)
    when the effect is small, so (normal approximation, Connor 1987)::

        MDE_pp = 100 (z_{1 - alpha/2} + z_power) sqrt(psi / n)

    With ``psi = 1`` this is the worst-case form that reproduces TR149's per-cell MDE
    "~28pp at n = 100, ~14pp at n = 400" (seed-conclusive-a §2.11, a reconstruction).
    """
    n = check.positive_count(n, "n")
    psi = check.proportion(discordance_rate, "discordance_rate")
    a = check.alpha(alpha)
    pw = check.alpha(power, name="power")
    mde = 100.0 * _z_sum(a, pw) * math.sqrt(psi / n)
    return MdeResult(mde, n, psi, a, pw, "paired")


def exact_mcnemar_floor(
    n_discordant: int, alpha: float = 0.05, family_size: int = 1
) -> ExactFloorResult:
    """Smallest exact McNemar p a cell can reach, and whether it can ever be significant.

    Parameters
    ----------
    n_discordant : int
        Discordant pairs in the cell (``b + c``).
    alpha : float, default 0.05
        Family-wise level.
    family_size : int, default 1
        Size of the Holm family the cell's p joins.

    Returns
    -------
    ExactFloorResult

    Notes
    -----
    The most extreme split (all discordance one way) gives the smallest two-sided exact p::

        p_min(k) = min(1, 2 * 0.5**k) = min(1, 2**(1 - k)),     p_min(0) = 1

    A cell needs ``p <= alpha / m`` to lead a Holm step-down, so with ``k`` discordant pairs
    it is only informative when ``2**(1 - k) <= alpha / m``, i.e.
    ``k >= 1 + log2(m / alpha)``. TR152: "with <= 3 discordant pairs the minimum exact p is
    0.25" (E152-5); at m = 72 a cell needs 12 one-directional discordant pairs.
    """
    k = check.count(n_discordant, "n_discordant")
    a = check.alpha(alpha)
    m = check.positive_count(family_size, "family_size")
    threshold = a / m
    min_p = 1.0 if k == 0 else min(1.0, 2.0 ** (1 - k))
    needed = max(1, math.ceil(1.0 + math.log2(1.0 / threshold) - 1e-12))
    return ExactFloorResult(k, min_p, threshold, min_p <= threshold, needed)


def strict_rule_mde(
    n_safe: int, allowed: float = 0.0, margin_pp: float = 3.0, power: float = 0.80
) -> StrictMdeResult:
    """What the strict "no flip beyond the floor" rule can detect on a greedy cell.

    Parameters
    ----------
    n_safe : int
        Prompts the baseline answered safely (the ones that can flip into a ``b`` pair).
    allowed : float
        The A/A floor: the rule FAILs when ``b > allowed``.
    margin_pp : float
        The effect it should detect.
    power : float

    Returns
    -------
    StrictMdeResult
        ``mde_pp``: the per-prompt flip probability δ (pp) with ``P(b > allowed) = power``
        for ``b ~ Binomial(n_safe, δ)`` (100 when no prompt can flip);
        ``n_needed``: the smallest ``n_safe`` at which δ = ``margin_pp`` is detected with
        ``power``.

    Notes
    -----
    On a deterministic engine a greedy answer changes only when the serving change moves the
    decision; a change that makes each baseline-safe prompt comply with probability δ yields
    ``b ~ Binomial(n_safe, δ)``. With ``allowed = 0``: ``δ = 1 - (1 - power)**(1/n_safe)``,
    and ``n_needed = ceil(log(1 - power) / log(1 - margin))`` = 53 at 3 pp, 80% power.
    """
    return _strict_rule_mde(check.count(n_safe, "n_safe"), float(allowed), float(margin_pp),
                            float(power))


@functools.lru_cache(maxsize=4096)
def _strict_rule_mde(
    n_safe: int, allowed: float, margin_pp: float, power: float
) -> StrictMdeResult:
    """Cached body of :func:`strict_rule_mde`."""
    n = check.count(n_safe, "n_safe")
    floor = math.floor(check.real(allowed, "allowed") + 1e-9)
    if floor < 0:
        raise ValueError(f"allowed must be >= 0, got {allowed!r}")
    margin = check.real(margin_pp, "margin_pp") / 100.0
    if not 0 < margin < 1:
        raise ValueError(f"margin_pp must be in (0, 100), got {margin_pp!r}")
    pw = check.alpha(power, name="power")
    if n <= floor:
        mde = 100.0
    else:

        def f(d: float) -> float:
            return float(stats.binom.sf(floor, n, d)) - pw

        mde = 100.0 * float(optimize.brentq(f, 1e-12, 1.0 - 1e-12, xtol=1e-12))
    sizes = np.arange(floor + 1, floor + 1 + 20_000)
    reached = np.nonzero(stats.binom.sf(floor, sizes, margin) >= pw)[0]
    needed = int(sizes[reached[0]]) if reached.size else 0
    return StrictMdeResult(mde, n, float(floor), needed, pw)
