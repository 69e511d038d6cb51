"""Statistics across cells: pooled odds ratios and the interaction spread.

Two *different* estimators are both called "MH pooled OR" in the seed reports; they get
distinct names here (seed-tr152-tr145 §2.6, seed-conclusive-a §2.8):

* :func:`matched_pairs_or` / :func:`pool_discordant`: TR152's matched-pairs ratio of pooled
  discordant counts, for paired cells (the plugin's layer-5 design).
* :func:`mantel_haenszel_rbg`: TR145's unpaired Mantel–Haenszel OR with the
  Robins–Breslow–Greenland variance, for genuinely unpaired marginal tables. Feeding paired
  cells' (a, b, c, d) into it is the TR149 v1 bug (OR 3411.5 on an all-null corpus).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from statsmodels.stats.contingency_tables import StratifiedTable

from . import _validation as check
from .results import OddsRatioResult, SpreadResult


def matched_pairs_or(b: int, c: int, alpha: float = 0.05) -> OddsRatioResult:
    """Haldane-corrected matched-pairs odds ratio with a Wald interval on the log scale.

    Parameters
    ----------
    b : int
        Total degraded discordant pairs (baseline safe, candidate unsafe).
    c : int
        Total improved discordant pairs.
    alpha : float, default 0.05
        Two-sided level; the interval has coverage ``1 - alpha``.

    Returns
    -------
    OddsRatioResult
        ``method="matched_pairs_haldane_wald"``, ``n_strata=1``.

    Notes
    -----
    TR152 [152 L146-149] (also TR145's per-model "McNemar OR (Haldane-Anscombe)")::

        OR     = (b + 0.5) / (c + 0.5)
        SE     = sqrt(1 / (b + 0.5) + 1 / (c + 0.5))
        CI     = exp(log(OR) -/+ z * SE)

    OR > 1 means the candidate degrades. The corrected counts go into the SE too: every
    published interval (TV-01 … TV-07, TV152-4) reproduces only that way, although the TR149
    text writes ``1/Σb + 1/Σc`` (seed-conclusive-a I-1). ``z = 1.96`` at ``alpha = 0.05``;
    it and ``Phi^-1(0.975)`` both reproduce every matched-pairs vector to its printed digits.
    ``b = c = 0`` gives OR = 1 (TR145's convention falls out of the correction).
    """
    b = check.count(b, "b")
    c = check.count(c, "c")
    return _haldane_wald(b, c, check.alpha(alpha), n_strata=1)


def pool_discordant(strata: Sequence[Sequence[int]], alpha: float = 0.05) -> OddsRatioResult:
    """Pooled matched-pairs odds ratio over strata given as per-stratum ``(b, c)``.

    Parameters
    ----------
    strata : sequence of (b, c)
        Discordant counts per stratum (cell); a ``(k, 2)`` integer array also works.
    alpha : float, default 0.05

    Returns
    -------
    OddsRatioResult
        As :func:`matched_pairs_or` on ``(sum(b), sum(c))``, with ``n_strata = k``.

    Notes
    -----
    Concordant pairs drop out of the matched-pairs MH estimator, so pooling is summing the
    discordant counts. The Haldane +0.5 is applied once, to the sums: TR152's 2.69 is
    17.5 / 6.5, whereas +0.5 per stratum over its 72 cells would give 53 / 42 = 1.26.
    """
    counts = check.counts_array(strata, "strata", (2,), "(b, c) pairs")
    b, c = (int(x) for x in counts.sum(axis=0))
    return _haldane_wald(b, c, check.alpha(alpha), n_strata=len(counts))


def _haldane_wald(b: int, c: int, a: float, n_strata: int) -> OddsRatioResult:
    log_or = math.log((b + 0.5) / (c + 0.5))
    se = math.sqrt(1.0 / (b + 0.5) + 1.0 / (c + 0.5))
    z = check.wald_z(a)
    return OddsRatioResult(
        estimate=math.exp(log_or),
        ci_low=math.exp(log_or - z * se),
        ci_high=math.exp(log_or + z * se),
        log_estimate=log_or,
        se=se,
        alpha=a,
        z=z,
        method="matched_pairs_haldane_wald",
        n_strata=n_strata,
    )


def mantel_haenszel_rbg(tables: Sequence[object], alpha: float = 0.05) -> OddsRatioResult:
    """Unpaired stratified Mantel–Haenszel odds ratio with the RBG interval (TR145).

    Parameters
    ----------
    tables : sequence of 2x2 tables
        One per stratum, each ``[[a, b], [c, d]]`` or flat ``(a, b, c, d)``, with rows
        (candidate, baseline) and columns (unsafe, safe): ``a`` = candidate unsafe,
        ``b`` = candidate safe, ``c`` = baseline unsafe, ``d`` = baseline safe.
    alpha : float, default 0.05

    Returns
    -------
    OddsRatioResult
        ``method="mantel_haenszel_rbg"``; OR > 1 means the candidate has higher odds of an
        unsafe outcome.

    Notes
    -----
    TR145 [145 L890, L1253-1256], seed-tr152-tr145 §2.6(B); computed by statsmodels'
    ``StratifiedTable`` (``oddsratio_pooled``, ``logodds_pooled_se``)::

        OR_MH = sum(a d / n) / sum(b c / n)
        with P = (a + d)/n, Q = (b + c)/n, R = a d / n, S = b c / n:
        var(log OR_MH) = sum(P R) / (2 (sum R)^2) + sum(P S + Q R) / (2 sum R sum S)
                         + sum(Q S) / (2 (sum S)^2)                  (Robins et al. 1986)
        CI = exp(log OR_MH -/+ z sqrt(var))

    No zero-cell correction (TR145 applies none). If ``sum R`` or ``sum S`` is zero the
    estimate is 0 or inf (NaN if both) and the interval is undefined (NaN). ``z = 1.96`` at
    ``alpha = 0.05``: only that reproduces TR145's 2.0582 [0.6064, 6.9853] (TV145-6).
    """
    arr = check.counts_array(tables, "tables", (2, 2), "2x2 tables").astype(float)
    a = check.alpha(alpha)
    totals = arr.sum(axis=(1, 2))
    for i, total in enumerate(totals):
        if total == 0:
            raise ValueError(f"tables[{i}] has no observations")
    sum_r = float(np.sum(arr[:, 0, 0] * arr[:, 1, 1] / totals))
    sum_s = float(np.sum(arr[:, 0, 1] * arr[:, 1, 0] / totals))
    z = check.wald_z(a)
    if sum_r == 0.0 or sum_s == 0.0:
        estimate = math.nan if sum_r == sum_s else (0.0 if sum_r == 0.0 else math.inf)
        log_est = math.nan if math.isnan(estimate) else (-math.inf if estimate == 0 else math.inf)
        return OddsRatioResult(estimate, math.nan, math.nan, log_est, math.nan, a, z,
                               "mantel_haenszel_rbg", len(arr))
    table = StratifiedTable(np.moveaxis(arr, 0, -1))  # statsmodels wants shape (2, 2, k)
    log_or = float(table.logodds_pooled)
    se = float(table.logodds_pooled_se)
    return OddsRatioResult(
        estimate=float(table.oddsratio_pooled),
        ci_low=math.exp(log_or - z * se),
        ci_high=math.exp(log_or + z * se),
        log_estimate=log_or,
        se=se,
        alpha=a,
        z=z,
        method="mantel_haenszel_rbg",
        n_strata=len(arr),
    )


def interaction_spread(deltas_pp: Mapping[Hashable, float] | Sequence[float]) -> SpreadResult:
    """Range of the per-cell deltas across the serving-state design.

    Parameters
    ----------
    deltas_pp : mapping of cell -> delta, or sequence of deltas
        Per-cell ``delta_pp`` (candidate minus baseline, pp), zero cells included.

    Returns
    -------
    SpreadResult
        ``spread = max - min``; ``argmax``/``argmin`` are the keys (or positions).

    Notes
    -----
    TR152's "FP8 interaction spread" [152 L134]: max over all cells of delta minus min over all
    cells (4.4203 pp from +1.1236 and -3.2967, TV152-7). The layer-5 claim compares it with
    3 pp (the margin, not its 6 pp width; seed-conclusive-a I-7). Use unrounded deltas; the
    report aggregated 2-dp-rounded ones (4.42 either way). Ties resolve to the first cell.
    """
    if isinstance(deltas_pp, Mapping):
        keys: list[Hashable] = list(deltas_pp.keys())
        values = list(deltas_pp.values())
    else:
        values = list(deltas_pp)
        keys = list(range(len(values)))
    arr = check.samples(values, "deltas_pp")
    i_max, i_min = int(np.argmax(arr)), int(np.argmin(arr))
    return SpreadResult(
        spread=float(arr[i_max] - arr[i_min]),
        max_delta=float(arr[i_max]),
        min_delta=float(arr[i_min]),
        argmax=keys[i_max],
        argmin=keys[i_min],
        n_cells=int(arr.size),
    )
