"""Confidence intervals for a proportion (a refusal or safe rate) and for the difference of two."""

from __future__ import annotations

from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from . import _validation as check
from .results import DifferenceInterval, ProportionInterval


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


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, alpha: float = 0.05) -> DifferenceInterval:
    """Newcombe's hybrid score interval for ``k1/n1 − k2/n2`` (independent samples).

    Returns
    -------
    DifferenceInterval
        The difference and its two-sided ``1 − alpha`` interval.

    Notes
    -----
    Computed by statsmodels ``confint_proportions_2indep(..., method="newcomb",
    compare="diff")`` (Newcombe 1998, method 10): the two Wilson intervals combined; it stays
    inside [−1, 1] and keeps its coverage at rates near 0 or 1, where the Wald interval does not.
    """
    k1, k2 = check.count(k1, "k1"), check.count(k2, "k2")
    n1, n2 = check.positive_count(n1, "n1"), check.positive_count(n2, "n2")
    if k1 > n1 or k2 > n2:
        raise ValueError(f"successes must not exceed trials, got {k1}/{n1} and {k2}/{n2}")
    a = check.alpha(alpha)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff", alpha=a)
    return DifferenceInterval(k1, n1, k2, n2, k1 / n1 - k2 / n2, float(low), float(high), a, "newcombe")
