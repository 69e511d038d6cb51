"""An exact, valid-size TOST for a paired difference of proportions (the TAIS screen's test).

The percentile-bootstrap and paired-t TOSTs in :mod:`.paired` call zero discordance
equivalent at any ``n`` (interval ``[0, 0]``), so with few pairs they certify a true 3 pp shift
far more often than alpha. This test cannot: its interval is built from two exact
Clopper–Pearson bounds joined by a union (Bonferroni) bound, so for *every* pair of discordance
rates its size is at most alpha. It is conservative (roughly a level-alpha/2 test), which is the
price of a guarantee that needs no asymptotics and no nuisance-parameter search.

Orientation as everywhere (DESIGN §6): ``b`` = baseline safe & candidate unsafe, ``c`` = the
reverse, ``delta = (c - b) / n``, candidate minus baseline safe rate.
"""

from __future__ import annotations

import math
import numbers

from scipy import stats

from . import _validation as check
from .results import TostResult

__all__ = ["EXACT_TOST_METHOD", "pairs_needed_exact", "tost_paired_exact"]

EXACT_TOST_METHOD = "exact_cp_bonferroni"
_MAX_PAIRS = 10_000_000


def _margin(margin_pp: object) -> float:
    # as in paired.py: math.inf is a valid margin (everything equivalent); NaN and <= 0 are not
    is_number = isinstance(margin_pp, numbers.Real) and not isinstance(margin_pp, bool)
    margin = float(margin_pp) if is_number else math.nan  # type: ignore[arg-type]
    if not margin > 0:
        raise ValueError(f"margin_pp must be a positive number, got {margin_pp!r}")
    return margin


def _upper(k: int, n: int, gamma: float) -> float:
    """One-sided exact (Clopper–Pearson) upper bound: P(p > bound) <= gamma."""
    return 1.0 if k >= n else float(stats.beta.ppf(1.0 - gamma, k + 1, n - k))


def _lower(k: int, n: int, gamma: float) -> float:
    """One-sided exact (Clopper–Pearson) lower bound: P(p < bound) <= gamma."""
    return 0.0 if k <= 0 else float(stats.beta.ppf(gamma, k, n - k + 1))


def _bounds(b: int, c: int, n: int, a: float, k: int = 1) -> tuple[float, float]:
    """(low, high) of delta in percentage points, each side missing with probability <= a."""
    half = a / 2.0
    high = _upper(c, n, half) - _lower(b, n, half) / k
    low = _lower(c, n, half) / k - _upper(b, n, half)
    return 100.0 * low, 100.0 * high


def _side_pvalue(b: int, c: int, n: int, margin: float, side: int, k: int) -> float:
    """Smallest level at which one side of the interval is strictly inside the margin."""

    def inside(a: float) -> bool:
        low, high = _bounds(b, c, n, a, k)
        return high < margin if side > 0 else low > -margin

    if not inside(0.999999):
        return 1.0
    lo, hi = 0.0, 0.999999  # inside(hi) is True; bounds shrink as the level grows
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if inside(mid):
            hi = mid
        else:
            lo = mid
    return hi


def tost_paired_exact(
    b: int, c: int, n: int, margin_pp: float = 3.0, alpha: float = 0.05, cluster_size: int = 1
) -> TostResult:
    """TOST of a matched-pairs difference with an exact, never-anticonservative interval.

    Parameters
    ----------
    b, c : int
        Degraded / improved discordant counts; with ``cluster_size > 1``, the numbers of
        *units* (e.g. prompts answered in several contexts) with at least one degraded /
        improved pair (a unit may count in both).
    n : int
        Pairs (concordant included), ``n >= b + c``; with clusters, the number of units.
    margin_pp : float, default 3.0
        Equivalence margin in percentage points.
    alpha : float, default 0.05
        Level of each one-sided test; the interval has coverage ``>= 1 - 2 alpha``.
    cluster_size : int, default 1
        Pairs per unit at most. Pairs of one prompt in several contexts are not independent
        (at greedy decoding they are nearly copies), so the unit of the test is the prompt.

    Returns
    -------
    TostResult
        ``method="exact_cp_bonferroni"``; ``se_pp``/``df`` NaN, ``n_boot`` 0. ``pvalue`` is the
        smallest level at which both sides clear the margin (to ~1e-12, found by bisection).

    Notes
    -----
    With ``p_b = P(b-type pair)`` and ``p_c = P(c-type pair)``, ``delta = p_c - p_b``. The upper
    bound is ``U_c - L_b`` and the lower bound ``L_c - U_b``, where ``U``/``L`` are one-sided
    Clopper–Pearson bounds at level ``alpha / 2`` each. Then

        P(delta > U_c - L_b) <= P(p_c > U_c) + P(p_b < L_b) <= alpha / 2 + alpha / 2 = alpha,

    for every ``(p_b, p_c)``, and likewise below: each one-sided test has size <= alpha, so
    TOST certifies a true ``|delta| = margin`` at most alpha of the time (tested exactly in
    ``tests/unit/stats/test_stats_paired_exact.py``). Equivalence needs the interval strictly
    inside ``(-margin, margin)``. Zero discordance is *not* automatically equivalent: at
    ±3 pp and alpha = 0.05 it needs ``n >= 122`` pairs (``1 - 0.025 ** (1 / n) < 0.03``).

    Clusters of up to ``k`` pairs: with ``q_c`` the share of a unit's pairs that are improved,
    ``delta = E[q_c] - E[q_b]``, and ``1{unit has a c pair} / k <= q_c <= 1{unit has a c
    pair}``, so ``delta <= P(C) - P(B) / k <= U_C - L_B / k`` and ``delta >= L_C / k - U_B``,
    with the same Clopper–Pearson bounds on the unit counts: still size <= alpha, units
    independent, pairs within a unit arbitrarily dependent.
    """
    b = check.count(b, "b")
    c = check.count(c, "c")
    n = check.positive_count(n, "n")
    k = check.positive_count(cluster_size, "cluster_size")
    if k == 1 and b + c > n:
        raise ValueError(f"b + c must not exceed n, got b + c = {b + c} > n = {n}")
    if b > n or c > n:
        raise ValueError(f"b and c must not exceed n, got b = {b}, c = {c}, n = {n}")
    margin = _margin(margin_pp)
    a = check.alpha(alpha, upper=0.5)
    low, high = _bounds(b, c, n, a, k)
    equivalent = -margin < low and high < margin
    if math.isinf(margin):
        pvalue = 0.0
    else:
        pvalue = max(_side_pvalue(b, c, n, margin, +1, k), _side_pvalue(b, c, n, margin, -1, k))
    # the point estimate of a clustered test is the caller's (pairs, not units)
    delta = 100.0 * (c - b) / n if k == 1 else math.nan
    return TostResult(delta, low, high, pvalue, equivalent, EXACT_TOST_METHOD,
                      margin, a, math.nan, math.nan, 0)


def pairs_needed_exact(
    b: int, c: int, n: int, margin_pp: float = 3.0, alpha: float = 0.05, cluster_size: int = 1
) -> int | None:
    """Pairs the exact TOST would need to show equivalence at the observed discordance rates.

    Scales ``b`` and ``c`` with ``n`` (rounded) and returns the smallest ``N`` (searched by
    doubling, then bisection) at which :func:`tost_paired_exact` is equivalent; ``None`` when no
    ``N`` up to 10 million would do (the observed difference sits at or beyond the margin).
    With ``cluster_size`` the counts are units (see :func:`tost_paired_exact`) and so is ``N``.

    Notes
    -----
    A planning figure, not a guarantee: a new sample's discordance will differ from the
    observed one. With zero discordance it does not depend on ``n``: 122 at ±3 pp, alpha 0.05.
    """
    b = check.count(b, "b")
    c = check.count(c, "c")
    n = check.positive_count(n, "n")
    k = check.positive_count(cluster_size, "cluster_size")
    margin = _margin(margin_pp)
    a = check.alpha(alpha, upper=0.5)
    rb, rc = b / n, c / n

    def ok(size: int) -> bool:
        bb, cc = round(rb * size), round(rc * size)
        low, high = _bounds(bb, cc, size, a, k)
        return -margin < low and high < margin

    hi = 1
    while not ok(hi):
        hi *= 2
        if hi > _MAX_PAIRS:
            return None
    lo = hi // 2  # ok(lo) is False (or lo == 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi
