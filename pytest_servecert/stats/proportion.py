"""Confidence intervals for a single proportion (a refusal or safe rate)."""

from __future__ import annotations

from statsmodels.stats.proportion import proportion_confint

from . import _validation as check
from .results import ProportionInterval


def wilson_interval(k: int, n: int, alpha: float = 0.05) -> ProportionInterval:
    """Wilson score interval for ``k`` successes in ``n`` trials.

    Parameters
    ----------
    k : int
        Successes (e.g. safe responses), ``0 <= k <= n``.
    n : int
        Trials, ``n >= 1``.
    alpha : float, default 0.05
        Two-sided level; coverage ``1 - alpha``.

    Returns
    -------
    ProportionInterval
        ``method="wilson"``.

    Notes
    -----
    Computed by statsmodels ``proportion_confint(k, n, alpha, method="wilson")``::

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z sqrt(p (1 - p) / n + z^2 / (4 n^2)) / (1 + z^2 / n)

    with ``p = k/n`` and ``z = Phi^-1(1 - alpha/2)`` (Wilson 1927). Stays inside [0, 1], unlike
    the unclipped t interval TR145 SS17 printed (0.99 -> [0.970, 1.010], TV145-18); that mode
    is deliberately not offered.
    """
    k = check.count(k, "k")
    n = check.positive_count(n, "n")
    if k > n:
        raise ValueError(f"k must not exceed n, got k = {k} > n = {n}")
    a = check.alpha(alpha)
    low, high = proportion_confint(k, n, alpha=a, method="wilson")
    return ProportionInterval(k, n, k / n, float(low), float(high), a, "wilson")
