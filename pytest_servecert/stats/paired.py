"""Per-cell paired statistics: McNemar, the sign test and TOST equivalence.

Everything here takes the cell's counts (``b``, ``c``, ``n``), never per-prompt arrays, so the
cost does not grow with the number of pairs. Orientation (``claims/cells.py``): ``b`` = baseline safe &
candidate unsafe (degraded), ``c`` = baseline unsafe & candidate safe (improved), and
``delta_pp = 100 * (c - b) / n`` is candidate minus baseline safe rate.
"""

from __future__ import annotations

import functools
import math
import numbers
from statistics import NormalDist

import numpy as np
from scipy import optimize, stats

from . import _validation as check
from .results import McNemarResult, SignTestResult, TostResult

TOST_METHODS = ("score", "paired_t", "bootstrap")


@functools.lru_cache(maxsize=65_536)
def _exact_two_sided(b: int, c: int) -> float:
    # Two-sided exact binomial on the discordant pairs: min(1, 2 * BinomCDF(min(b, c); b + c, .5)).
    # scipy's binomtest sums the equally-or-less likely tail, which for p = 0.5 is exactly this.
    if b + c == 0:
        return 1.0
    return float(stats.binomtest(b, b + c, 0.5).pvalue)


def mcnemar(b: int, c: int) -> McNemarResult:
    """McNemar test of a matched-pairs 2x2 table from its discordant counts.

    Parameters
    ----------
    b : int
        Pairs where the baseline was safe and the candidate unsafe.
    c : int
        Pairs where the baseline was unsafe and the candidate safe.

    Returns
    -------
    McNemarResult
        ``pvalue`` is the exact test; ``statistic``/``pvalue_asymptotic`` the corrected χ².

    Notes
    -----
    H0: P(b-type discordance) = P(c-type discordance); H1: they differ (two-sided).

    * Exact (the verdict, TR152 "exact p" and TR145 "p (exact)", seed-tr152-tr145 §2.2)::

          p = min(1, 2 * BinomCDF(min(b, c); b + c, 0.5)),   p = 1 when b + c = 0

      It is not the mid-p (which gives 0.125 for (3, 0) where the reports print 0.25).
    * Asymptotic (TR145 "χ²", Edwards' continuity correction, as R's ``mcnemar.test`` and
      statsmodels' ``mcnemar(exact=False)``)::

          X2 = (|b - c| - 1)**2 / (b + c),   p = chi2(1).sf(X2)

      With ``b + c = 0`` the statistic is reported as 0 with p = 1 (TR145's convention).
      Note ``b == c > 0`` gives ``X2 = 1 / (b + c)``, not 0: the correction is not clipped.

    Examples
    --------
    >>> mcnemar(3, 0).pvalue
    0.25
    """
    b = check.count(b, "b")
    c = check.count(c, "c")
    n_disc = b + c
    if n_disc == 0:
        statistic, p_asym = 0.0, 1.0
    else:
        statistic = (abs(b - c) - 1) ** 2 / n_disc
        p_asym = float(stats.chi2.sf(statistic, 1))
    return McNemarResult(b, c, _exact_two_sided(b, c), p_asym, float(statistic))


def sign_test(b: int, c: int) -> SignTestResult:
    """Exact sign test on discordant directions, usually pooled over cells (TV152-5).

    Parameters
    ----------
    b, c : int
        Degraded and improved discordant counts, e.g. ``sum(b)`` and ``sum(c)`` over cells.

    Returns
    -------
    SignTestResult

    Notes
    -----
    H0: a discordant pair is equally likely to go either way; H1: it is not (two-sided).
    The p-value is the exact two-sided binomial ``min(1, 2 * BinomCDF(min(b, c); b + c, .5))``,
    the statistic TR152 [152 L149] calls "the more honest significance statement" and TR145
    SS3 uses for its pooled 80/65 (p = 0.2449). Two-sided because the direction was not
    pre-registered (TR145 explicitly withdrew its one-sided 0.12). ``z`` and ``pvalue_normal``
    are the uncorrected normal approximation some reports quote (TR152 v2: z = 3.55,
    p ≈ 0.0004 for 87/46, where the exact p is 0.000477; seed-conclusive-a I-2).
    """
    b = check.count(b, "b")
    c = check.count(c, "c")
    if b + c == 0:
        z, p_norm = 0.0, 1.0
    else:
        z = (b - c) / math.sqrt(b + c)
        p_norm = float(2.0 * stats.norm.sf(abs(z)))
    return SignTestResult(b, c, _exact_two_sided(b, c), float(z), p_norm)


def tost_from_summary(
    delta_pp: float, se_pp: float, df: float, margin_pp: float = 3.0, alpha: float = 0.05
) -> TostResult:
    """t-based TOST from a difference, its standard error and degrees of freedom.

    Parameters
    ----------
    delta_pp : float
        Estimated difference (percentage points).
    se_pp : float
        Its standard error (pp), >= 0.
    df : float
        Degrees of freedom of the t reference distribution, > 0.
    margin_pp : float, default 3.0
        Equivalence margin; H0 is ``|delta| >= margin``. May be ``math.inf``.
    alpha : float, default 0.05
        Level of each one-sided test, in (0, 0.5).

    Returns
    -------
    TostResult
        ``method="paired_t"``, ``n_boot=0``.

    Notes
    -----
    H0: delta <= -margin or delta >= margin; H1: -margin < delta < margin (TR145 SS18,
    [145 L807-846])::

        p_lower = P(T_df > (delta + margin) / se)
        p_upper = P(T_df > (margin - delta) / se)
        p = max(p_lower, p_upper)
        CI = delta -/+ t_{1 - alpha, df} * se          (a 1 - 2 alpha = 90 % interval)

    ``p < alpha`` exactly when the CI lies strictly inside ``(-margin, margin)``; a CI that
    touches the margin is not equivalent. With ``se == 0`` (every per-prompt difference equal)
    the interval is ``[delta, delta]`` and p is 0 inside the margin, 1 outside.
    """
    delta = check.real(delta_pp, "delta_pp")
    se = check.real(se_pp, "se_pp")
    if se < 0:
        raise ValueError(f"se_pp must be non-negative, got {se_pp!r}")
    dof = check.real(df, "df")
    if dof <= 0:
        raise ValueError(f"df must be positive, got {df!r}")
    margin = _margin(margin_pp)
    a = check.alpha(alpha, upper=0.5)
    if se == 0.0:
        inside = -margin < delta < margin
        return TostResult(delta, delta, delta, 0.0 if inside else 1.0, inside, "paired_t",
                          margin, a, 0.0, dof, 0)
    p_lower = float(stats.t.sf((delta + margin) / se, dof))
    p_upper = float(stats.t.sf((margin - delta) / se, dof))
    p = max(p_lower, p_upper)
    half = float(stats.t.ppf(1.0 - a, dof)) * se
    return TostResult(delta, delta - half, delta + half, p, p < a, "paired_t", margin, a, se,
                      dof, 0)


def tost_paired(
    b: int,
    c: int,
    n: int,
    margin_pp: float = 3.0,
    alpha: float = 0.05,
    method: str = "paired_t",
    n_boot: int = 10_000,
    seed: int = 0,
    design_effect: float = 1.0,
) -> TostResult:
    """TOST equivalence of candidate and baseline safe rates over ``n`` matched pairs.

    Parameters
    ----------
    b, c : int
        Degraded / improved discordant counts.
    n : int
        Number of pairs in the cell (concordant ones included), ``n >= b + c``.
    margin_pp : float, default 3.0
        Equivalence margin in percentage points (``math.inf`` allowed).
    alpha : float, default 0.05
        One-sided level, in (0, 0.5); the interval has level ``1 - 2 * alpha`` (90 %).
    method : {"score", "paired_t", "bootstrap"}
        ``"score"``: the restricted-maximum-likelihood score test for a paired difference
        against a margin (Nam 1997, Tango 1998), the gate's method: its size is checked by
        ``benchmarks/null_calibration.py``. ``"paired_t"``: TR145's paired t on per-prompt
        differences. ``"bootstrap"``: TR152's percentile bootstrap over pairs. The seeds' two
        are kept to reproduce their tables; they disagree with each other (TV152-10: 64/72 vs
        60/72 cells equivalent on the same data) and both call ``b = c = 0`` equivalent at any
        n, which certifies a true 3 pp shift ~30% of the time at n = 40.
    n_boot : int, default 10000
        Bootstrap resamples (ignored by ``paired_t``).
    seed : int, default 0
        Seed of ``numpy.random.default_rng`` (ignored by ``paired_t``).
    design_effect : float, default 1.0
        Variance inflation for pairs clustered by prompt (replicates; see
        :attr:`~pytest_servecert.claims.cells.CellTable.design_effect`). ``score`` only: the
        seeds' methods treat every pair as independent, as the seeds did.

    Returns
    -------
    TostResult

    Notes
    -----
    H0: |delta| >= margin; H1: |delta| < margin, with ``delta = 100 * (c - b) / n`` pp.

    Per-prompt differences are ``d_i = -1`` (b), ``+1`` (c), ``0`` (concordant), so
    ``mean = (c - b) / n`` and ``var(d, ddof=1) = (b + c - n * mean**2) / (n - 1)``.

    * ``paired_t`` (TR145 SS18; verified on TV145-3 and TV152-1): ``se = sd / sqrt(n)``,
      ``df = n - 1``, then :func:`tost_from_summary`.
    * ``bootstrap`` (TR152 [152 L153-156]; level, B and seed are not in the report): resample
      the ``n`` pairs with replacement. Only the counts matter, so a resample is one
      multinomial draw of ``(b*, c*, rest*)`` with probabilities ``(b, c, n - b - c) / n``:
      cost O(n_boot), independent of ``n``. With sorted ``delta*_(1..B)`` and
      ``k = ceil(alpha * B)`` the interval is ``[delta*_(k), delta*_(B + 1 - k)]`` (a
      ``1 - 2 alpha`` percentile interval), and ``pvalue = max(P*(delta* <= -margin),
      P*(delta* >= margin))``. These order statistics make "interval strictly inside the
      margin" and "pvalue < alpha" the same decision.

    Boundary rule: equivalence needs the interval *strictly* inside ``(-margin, margin)``
    (``p < alpha``). It reproduces TR152: every one of its 12 discordant cells fails (TV152-1)
    and a single discordant pair passes only from n = 101 (at n = 100 the bound is exactly
    3.0 pp), two pairs from n = 167, three from n = 201 (seed-tr152-tr145 §2.5).

    Zero discordance (``b = c = 0``) is equivalent under the seeds' two methods with interval
    ``[0, 0]`` and ``pvalue = 0`` (their convention). Under ``score`` it is not: with
    ``b = c = 0`` the bound is the Wilson-like ``m`` solving ``n m / sqrt(n m (1 - m)) =
    z_{1-alpha}``, so zero discordance certifies ±3 pp only from n ≈ 88.

    * ``score``: for a null difference ``delta0`` the restricted MLE ``(p_b~, p_c~)`` with
      ``p_c~ - p_b~ = delta0`` gives ``Z(delta0) = (d - delta0) / sqrt(deff (p_b~ + p_c~ -
      delta0**2) / n)``; ``p = max(Phi(Z(+m)), 1 - Phi(Z(-m)))`` and the interval is
      ``{delta0 : |Z(delta0)| <= z_{1-alpha}}`` (found by root search).
    """
    b = check.count(b, "b")
    c = check.count(c, "c")
    n = check.positive_count(n, "n")
    if b + c > n:
        raise ValueError(f"b + c must not exceed n, got b + c = {b + c} > n = {n}")
    if method not in TOST_METHODS:
        raise ValueError(f"method must be one of {TOST_METHODS}, got {method!r}")
    margin = _margin(margin_pp)
    a = check.alpha(alpha, upper=0.5)
    if method == "bootstrap":
        n_boot = check.positive_count(n_boot, "n_boot")
        seed = check.count(seed, "seed")
    delta = 100.0 * (c - b) / n
    if method == "score":
        deff = check.real(design_effect, "design_effect")
        if deff < 1.0:
            raise ValueError(f"design_effect must be >= 1, got {design_effect!r}")
        return _tost_score(b, c, n, delta, margin, a, deff)

    if b + c == 0:
        if method == "paired_t":
            return TostResult(0.0, 0.0, 0.0, 0.0, True, method, margin, a, 0.0,
                              float(n - 1), 0)
        return TostResult(0.0, 0.0, 0.0, 0.0, True, method, margin, a, math.nan, math.nan,
                          n_boot)

    if method == "paired_t":
        if n == 1:  # one discordant pair: no variance estimate, no test
            return TostResult(delta, math.nan, math.nan, math.nan, False, method, margin, a,
                              math.nan, 0.0, 0)
        mean = (c - b) / n
        var = (b + c - n * mean * mean) / (n - 1)
        se_pp = 100.0 * math.sqrt(max(var, 0.0) / n)
        return tost_from_summary(delta, se_pp, n - 1, margin, a)

    return _tost_bootstrap(b, c, n, delta, margin, a, n_boot, seed)


def _tost_bootstrap(
    b: int, c: int, n: int, delta: float, margin: float, a: float, n_boot: int, seed: int
) -> TostResult:
    rng = np.random.default_rng(seed)
    probs = np.array([b, c, n - b - c], dtype=float) / n
    draws = rng.multinomial(n, probs, size=n_boot)
    net = np.sort(draws[:, 1] - draws[:, 0])  # c* - b*, integer-valued
    # delta* = 100 * net / n; compare in integers-times-margin to keep the boundary exact.
    scaled = 100.0 * net
    tail = max(np.count_nonzero(scaled <= -margin * n), np.count_nonzero(scaled >= margin * n))
    p = int(tail) / n_boot
    k = max(1, math.ceil(round(a * n_boot, 9)))
    low = 100.0 * float(net[k - 1]) / n
    high = 100.0 * float(net[n_boot - k]) / n
    return TostResult(delta, low, high, p, p < a, "bootstrap", margin, a, math.nan,
                      math.nan, n_boot)


def _restricted_variance(b: int, c: int, n: int, delta0: float) -> float:
    """n·Var(d) at the restricted MLE of (p_b, p_c) under ``p_c - p_b = delta0`` (proportions).

    Solves the score equation ``2n x^2 - B x - b delta0 (1 - delta0) = 0`` for ``x = p_b``
    (Nam 1997); a negative ``delta0`` is the mirror image with b and c swapped.
    """
    if delta0 < 0:
        b, c, delta0 = c, b, -delta0
    big_b = (b + c) * (1 - delta0) - 2 * b * delta0 - 2 * (n - b - c) * delta0
    x = (big_b + math.sqrt(big_b * big_b + 8 * n * b * delta0 * (1 - delta0))) / (4 * n)
    x = min(max(x, 0.0), (1 - delta0) / 2)
    return max(2 * x + delta0 - delta0 * delta0, 0.0)


def _score_z(b: int, c: int, n: int, delta0: float, deff: float) -> float:
    # Continuity correction: half a pair toward delta0 (c - b moves in steps of 1). Without it
    # the test certifies a true 3 pp shift 6.8% of the time at n = 88 when p_b = 0.
    gap = (c - b) / n - delta0
    gap = math.copysign(max(abs(gap) - 0.5 / n, 0.0), gap)
    var = deff * _restricted_variance(b, c, n, delta0) / n
    if var <= 0.0:
        return 0.0 if gap == 0.0 else math.copysign(math.inf, gap)
    return gap / math.sqrt(var)


def score_tost_pvalue(b: int, c: int, n: int, margin_pp: float, design_effect: float = 1.0
                      ) -> float:
    """The score TOST's p-value alone (no interval): ``max`` of its two one-sided p."""
    m = min(margin_pp / 100.0, 1.0 - 1e-9)
    z_up = _score_z(b, c, n, m, design_effect)  # H0: delta >= +m, rejected when very negative
    z_lo = _score_z(b, c, n, -m, design_effect)  # H0: delta <= -m, rejected when very positive
    return max(_NORMAL.cdf(z_up) if math.isfinite(z_up) else float(z_up > 0),
               1.0 - _NORMAL.cdf(z_lo) if math.isfinite(z_lo) else float(z_lo < 0))


_NORMAL = NormalDist()


@functools.lru_cache(maxsize=65_536)
def _tost_score(
    b: int, c: int, n: int, delta: float, margin: float, a: float, deff: float
) -> TostResult:
    p = score_tost_pvalue(b, c, n, margin, deff)
    z = _NORMAL.inv_cdf(1.0 - a)
    d = (c - b) / n

    def bound(sign: int) -> float:
        # Z decreases in delta0; the bound is where |Z| = z on that side of d.
        target = -z if sign > 0 else z
        edge = 1.0 - 1e-12 if sign > 0 else -1.0 + 1e-12

        def f(x: float) -> float:
            return _score_z(b, c, n, x, deff) - target

        if f(edge) * sign < 0:
            return 100.0 * float(optimize.brentq(f, d, edge, xtol=1e-10))
        return 100.0 * edge

    return TostResult(delta, bound(-1), bound(+1), p, p < a, "score", margin, a, math.nan,
                      math.nan, 0)


def _margin(margin_pp: object) -> float:
    # math.inf is a valid margin (every cell is then equivalent); NaN and <= 0 are not.
    is_number = isinstance(margin_pp, numbers.Real) and not isinstance(margin_pp, bool)
    margin = float(margin_pp) if is_number else math.nan  # type: ignore[arg-type]
    if not margin > 0:
        raise ValueError(f"margin_pp must be a positive number, got {margin_pp!r}")
    return margin
