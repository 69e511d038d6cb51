"""The sampling noise floor: is a candidate's harmful compliance beyond what resampling gives?

At T > 0 two draws of the *same* engine disagree on every prompt that is not saturated, so a
candidate's discordance must be judged against the baseline engine's own resampling, not 0.
The A/A arm answers each prompt ``R`` times with seeds independent of the baseline's. For one
prompt the baseline refused (a potential ``b`` pair) there are then ``R + 1`` draws of "did the
second server comply": the candidate's and the ``R`` A/A replicates'. If the candidate behaves
as the baseline engine does, these ``R + 1`` draws are exchangeable, so conditional on the
number ``k`` of them that complied the candidate's is a complying one with probability
``k / (R + 1)``, independently across prompts. The candidate's ``b`` then follows a
Poisson-binomial law that needs no model of the per-prompt probabilities: an exact
permutation test, clustered by prompt by construction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from scipy import stats

from . import _validation as check
from .results import FloorTestResult


def _histogram(
    counts: Mapping[tuple[int, int], int] | Iterable[tuple[int, int, int]], replicates: int
) -> dict[tuple[int, int], int]:
    items = counts.items() if isinstance(counts, Mapping) else ((k[:2], k[2]) for k in counts)
    hist: dict[tuple[int, int], int] = {}
    for key, number in items:
        x, j = key
        check.count(number, "prompt count")
        if x not in (0, 1):
            raise ValueError(f"candidate outcome must be 0 or 1, got {x!r}")
        if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j <= replicates:
            raise ValueError(f"A/A complying replicates must be in 0..{replicates}, got {j!r}")
        hist[(x, j)] = hist.get((x, j), 0) + int(number)
    return hist


def _null_pmf(totals: Mapping[int, int], replicates: int) -> np.ndarray:
    """pmf of the candidate's b under exchangeability: a sum of Binomial(N_k, k/(R+1))."""
    pmf = np.array([1.0])
    for k, n_k in sorted(totals.items()):
        if n_k == 0 or k == 0:
            continue
        part = stats.binom.pmf(np.arange(n_k + 1), n_k, k / (replicates + 1))
        pmf = np.convolve(pmf, part)
    return pmf


def sampling_floor_test(
    counts: Mapping[tuple[int, int], int] | Iterable[tuple[int, int, int]],
    replicates: int,
    alpha: float = 0.05,
    power: float = 0.80,
) -> FloorTestResult:
    """Exact one-sided test of a candidate's harmful compliance against the sampling floor.

    Parameters
    ----------
    counts : mapping ``(x, j) -> prompts`` or iterable of ``(x, j, prompts)``
        Over the prompts the *baseline* answered safely: ``x`` = 1 when the candidate complied
        (a ``b`` pair), ``j`` = how many of the ``replicates`` A/A draws complied. Several
        cells with the same ``replicates`` pool by adding their histograms.
    replicates : int
        A/A replicates per prompt (``R`` >= 1).
    alpha : float
        The level the minimum detectable effect is computed at (one-sided; pass the
        multiplicity-adjusted level).
    power : float
        Power of the minimum detectable effect.

    Returns
    -------
    FloorTestResult
        ``b`` (observed), ``expected_b`` (its null mean, the floor), the exact one-sided
        p-value ``P(B >= b)``, and ``mde_pairs``: how many extra complying pairs the test would
        detect with ``power`` at ``alpha``.

    Notes
    -----
    With ``N_k`` prompts on which ``k`` of the ``R + 1`` draws complied, under H0
    (candidate exchangeable with the A/A replicates) ``B = sum_k Binomial(N_k, k/(R+1))``
    and ``p = P(B >= b_obs)``. A prompt where the candidate complied and no A/A replicate
    did has ``k = 1``: a lone flip costs probability ``1/(R+1)``, so on a saturated battery
    ``b`` flips reach ``(R+1)**-b``. The MDE is the larger of that exact floor (the smallest
    ``b`` reaching ``alpha`` when every flip is lone) and the normal approximation
    ``(z_{1-alpha} + z_power) * sd(B)``.
    """
    r = check.positive_count(replicates, "replicates")
    a = check.alpha(alpha)
    pw = check.alpha(power, name="power")
    hist = _histogram(counts, r)
    b = sum(n for (x, _), n in hist.items() if x == 1)
    n = sum(hist.values())
    totals: dict[int, int] = {}
    for (x, j), number in hist.items():
        totals[x + j] = totals.get(x + j, 0) + number
    pmf = _null_pmf(totals, r)
    pvalue = float(min(1.0, pmf[b:].sum())) if b < pmf.size else 0.0
    expected = sum(n_k * k / (r + 1) for k, n_k in totals.items())
    variance = sum(n_k * (k / (r + 1)) * (1 - k / (r + 1)) for k, n_k in totals.items())
    lone = math.ceil(math.log(a) / math.log(1.0 / (r + 1)) - 1e-12)
    z = float(stats.norm.ppf(1 - a) + stats.norm.ppf(pw))
    mde = max(float(lone), z * math.sqrt(variance))
    return FloorTestResult(b, n, r, expected, pvalue, mde, a, pw)
