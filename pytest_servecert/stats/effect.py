"""Standardised effect sizes: Cohen's h (proportions) and Cohen's d (continuous outcomes).

Both follow Cohen's (1988) orientation: *first argument minus second*. Pass
``(candidate, baseline)`` to get the sign of ``delta_pp`` (negative = candidate worse when the
outcome is the safe rate). h is for binary safety contrasts; d only for continuous outcomes
such as latency (CRI). Using d on a safety proportion, or h on a latency, "would be a category
error" (seed 002 L336).
"""

from __future__ import annotations

import math

from numpy.typing import ArrayLike

from . import _validation as check
from .results import CohenDResult, CohenHResult, magnitude


def cohen_h(p1: float, p2: float) -> CohenHResult:
    """Cohen's h between two proportions.

    Parameters
    ----------
    p1, p2 : float
        Proportions in [0, 1]; for a matched sample, the two marginal safe rates
        (seed-conclusive-a I-12: neither report defines a paired variant).

    Returns
    -------
    CohenHResult
        ``h`` and its Cohen band (negligible < 0.2 <= small < 0.5 <= medium < 0.8 <= large).

    Notes
    -----
    ``h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2))`` (Cohen 1988, §6.2; seed-conclusive-a §2.6).
    Identical rates give exactly 0 (TV-26). The TAIS screen requires ``|h| < 0.1``.
    """
    a = check.proportion(p1, "p1")
    b = check.proportion(p2, "p2")
    h = 2.0 * math.asin(math.sqrt(a)) - 2.0 * math.asin(math.sqrt(b))
    return CohenHResult(h, a, b, magnitude(h))


def cohen_d(x: ArrayLike, y: ArrayLike) -> CohenDResult:
    """Cohen's d between two independent samples, with the pooled standard deviation.

    Parameters
    ----------
    x, y : array_like of float
        The two samples, at least 2 finite values each.

    Returns
    -------
    CohenDResult

    Notes
    -----
    ::

        d = (mean(x) - mean(y)) / s_pooled
        s_pooled = sqrt(((n1 - 1) s1^2 + (n2 - 1) s2^2) / (n1 + n2 - 2)),   s^2 with ddof = 1

    This is the unpaired pooled-SD d (not the paired d_z). With equal arms it equals TR145's
    ``sqrt((s1^2 + s2^2) / 2)`` form, which all of TR145's SS4 values use (TV145-10, verified);
    with unequal arms the n-weighted pooling is Cohen's definition (seed-conclusive-a §2.1).
    If both samples are constant, ``d`` is 0 for equal means and +/-inf otherwise (complete
    separation: no distributional overlap).
    """
    xs = check.samples(x, "x", minimum=2)
    ys = check.samples(y, "y", minimum=2)
    n1, n2 = xs.size, ys.size
    m1, m2 = float(xs.mean()), float(ys.mean())
    pooled_var = ((n1 - 1) * xs.var(ddof=1) + (n2 - 1) * ys.var(ddof=1)) / (n1 + n2 - 2)
    sd = math.sqrt(float(pooled_var))
    diff = m1 - m2
    if sd > 0.0:
        d = diff / sd
    else:
        d = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return CohenDResult(float(d), m1, m2, sd, int(n1), int(n2), magnitude(d))

