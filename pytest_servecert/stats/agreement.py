"""Inter-rater agreement between two judges: Cohen's κ with a bootstrap interval, and PABAK."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from . import _validation as check
from .results import KappaResult


def cohen_kappa(
    a: Iterable[Hashable],
    b: Iterable[Hashable],
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    categories: Sequence[Hashable] | None = None,
    min_minority: int = 5,
) -> KappaResult:
    """Cohen's κ between two raters' labels of the same items.

    Parameters
    ----------
    a, b : iterable of hashable
        Labels from the two raters, item by item (e.g. ``"refusal"`` / ``"compliance"``).
    n_boot : int, default 2000
        Bootstrap resamples for the interval; 0 skips it (NaN interval).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    alpha : float, default 0.05
        Two-sided level of the percentile interval (coverage ``1 - alpha``).
    categories : sequence of hashable, optional
        The label space. Give it when a category may be unobserved (PABAK depends on the
        number of categories); labels outside it raise ``ValueError``. By default the
        observed labels, with at least two categories assumed for PABAK.
    min_minority : int, default 5
        ``degenerate`` is set when either rater gives fewer than this many labels outside
        its own most common label (design decision; the reports give no threshold).

    Returns
    -------
    KappaResult

    Notes
    -----
    With the ``q x q`` agreement table ``T`` over ``n`` items (seed-tr152-tr145 §2.11)::

        p_o   = trace(T) / n
        p_e   = sum_k rowsum_k * colsum_k / n^2
        kappa = (p_o - p_e) / (1 - p_e)                  (Cohen 1960)
        PABAK = (q p_o - 1) / (q - 1)  (= 2 p_o - 1 for binary labels; Byrt et al. 1993)

    κ is NaN, not an exception, when ``p_e == 1`` (both raters used one identical label).
    Near-constant marginals make κ meaningless even when defined: TR149's StrongREJECT had
    κ = -0.0005 with 99.9 % agreement, PABAK 0.9979 (TV-13), so ``degenerate`` flags it and
    the caller should report PABAK (seed-conclusive-a §2.2). The interval resamples items:
    only the table counts matter, so one resample is a multinomial draw over the ``q^2``
    cells (cost O(n_boot q^2), independent of n). Resamples where κ is undefined are dropped.
    """
    labels_a, labels_b = list(a), list(b)
    if not labels_a:
        raise ValueError("a must not be empty")
    if len(labels_a) != len(labels_b):
        raise ValueError(f"a and b must have the same length, got {len(labels_a)} and "
                         f"{len(labels_b)}")
    n_boot = check.count(n_boot, "n_boot")
    seed = check.count(seed, "seed")
    level = check.alpha(alpha)
    min_minority = check.count(min_minority, "min_minority")
    cats = _categories(labels_a, labels_b, categories)

    q = len(cats)
    index = {cat: i for i, cat in enumerate(cats)}
    codes = np.fromiter((index[x] * q + index[y] for x, y in zip(labels_a, labels_b, strict=True)),
                        dtype=np.int64, count=len(labels_a))
    table = np.bincount(codes, minlength=q * q).reshape(q, q)
    n = len(labels_a)

    p_o, p_e, kappa = _kappa(table[None, :, :].astype(float))
    kappa_hat = float(kappa[0])
    q_pabak = max(q, 2)
    pabak = (q_pabak * float(p_o[0]) - 1.0) / (q_pabak - 1)
    minority = min(n - int(table.sum(axis=1).max()), n - int(table.sum(axis=0).max()))
    degenerate = math.isnan(kappa_hat) or minority < min_minority

    ci_low = ci_high = math.nan
    if n_boot and not math.isnan(kappa_hat):
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(n, table.ravel() / n, size=n_boot).reshape(n_boot, q, q)
        boot = _kappa(draws.astype(float))[2]
        boot = boot[np.isfinite(boot)]
        if boot.size:
            ci_low, ci_high = (float(x) for x in np.quantile(boot, [level / 2, 1 - level / 2]))

    return KappaResult(
        kappa=kappa_hat,
        ci_low=ci_low,
        ci_high=ci_high,
        n=n,
        p_observed=float(p_o[0]),
        pabak=pabak,
        degenerate=degenerate,
        p_expected=float(p_e[0]),
        categories=tuple(cats),
        alpha=level,
        n_boot=n_boot,
    )


def _kappa(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_o, p_e, kappa) for a stack of square tables shaped ``(k, q, q)``; NaN if p_e == 1."""
    n = tables.sum(axis=(1, 2))
    p_o = np.trace(tables, axis1=1, axis2=2) / n
    p_e = np.einsum("kq,kq->k", tables.sum(axis=2), tables.sum(axis=1)) / (n * n)
    denom = 1.0 - p_e
    kappa = np.full_like(p_o, math.nan)
    # p_e can exceed 1 - 1e-15 only through rounding when both raters are constant.
    ok = denom > 1e-12
    kappa[ok] = (p_o[ok] - p_e[ok]) / denom[ok]
    return p_o, p_e, kappa


def _categories(
    labels_a: list[Hashable], labels_b: list[Hashable], declared: Sequence[Hashable] | None
) -> list[Hashable]:
    try:
        observed = set(labels_a) | set(labels_b)
    except TypeError:
        raise ValueError("labels must be hashable") from None
    if declared is None:
        try:
            return sorted(observed)  # type: ignore[type-var]
        except TypeError:  # mixed, unorderable label types
            return sorted(observed, key=repr)
    cats = list(declared)
    if len(set(cats)) != len(cats):
        raise ValueError(f"categories must not repeat, got {cats!r}")
    unknown = observed - set(cats)
    if unknown:
        raise ValueError(f"labels {sorted(unknown, key=repr)!r} are not in categories {cats!r}")
    return cats
