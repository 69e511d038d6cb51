"""Compile Reproducibility Index (CRI, TR147; layer 3): is a latency comparison stack-robust?"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from . import _validation as check
from .effect import cohen_d
from .results import CriResult

#: Upper edges of the CRI bands on max pairwise |d| (seed 002 L466-470); >= 10 is catastrophic.
CRI_BANDS: tuple[tuple[float, str], ...] = ((0.5, "robust"), (2.0, "sensitive"), (10.0, "fragile"))


def classify_cri(index: float) -> str:
    """Band of a CRI value: [0, 0.5) robust, [0.5, 2) sensitive, [2, 10) fragile, >= 10
    catastrophic; NaN is ``invalid``."""
    if isinstance(index, bool) or not isinstance(index, numbers.Real):
        raise ValueError(f"index must be a real number, got {index!r}")  # noqa: TRY004
    if math.isnan(index):
        return "invalid"
    if index < 0:
        raise ValueError(f"index must be non-negative, got {index!r}")
    for upper, band in CRI_BANDS:
        if index < upper:
            return band
    return "catastrophic"


def cri(samples: Mapping[str, ArrayLike]) -> CriResult:
    """Maximum pairwise ``|Cohen's d|`` of latency across stack points, and its band.

    Parameters
    ----------
    samples : mapping of stack label -> latency samples
        One entry per stack point (e.g. Triton 3.3.1 / 3.4.0 / 3.6.0 with everything else
        fixed). A stack with fewer than 2 samples has no surviving measurements (e.g. every
        compiled run crashed) and is excluded, and listed in ``excluded``.

    Returns
    -------
    CriResult

    Notes
    -----
    ``CRI = max_{i < j} |d(x_i, x_j)|`` with the pooled-SD d of :func:`cohen_d`
    (seed-conclusive-a §2.1; the source gives no d formula, I-4). Bands:
    robust < 0.5 <= sensitive < 2 <= fragile < 10 <= catastrophic. Fragile or worse means the
    latency comparison is stack-contingent and not reportable as a single number.

    Fewer than 2 surviving stacks gives ``band="invalid"`` with NaN index (TV-21: "need >= 2
    stack points, got 0"), never ``robust``.
    """
    if not isinstance(samples, Mapping):
        raise ValueError(  # noqa: TRY004 -- one error type for all bad input (stats/__init__)
            f"samples must map stack labels to latency samples, got {type(samples).__name__}")
    surviving: dict[str, np.ndarray] = {}
    excluded: list[str] = []
    for label, values in samples.items():
        arr = check.samples(values, f"samples[{label!r}]", minimum=0)
        if arr.size < 2:
            excluded.append(label)
        else:
            surviving[label] = arr
    if len(surviving) < 2:
        reason = f"need >= 2 stack points, got {len(surviving)}"
        return CriResult(math.nan, "invalid", None, len(surviving), math.nan, tuple(excluded),
                         reason)
    worst_pair: tuple[str, str] | None = None
    worst_d = 0.0
    for first, second in itertools.combinations(surviving, 2):
        d = cohen_d(surviving[first], surviving[second]).d
        if worst_pair is None or abs(d) > abs(worst_d):
            worst_pair, worst_d = (first, second), d
    index = abs(worst_d)
    return CriResult(index, classify_cri(index), worst_pair, len(surviving), worst_d,
                     tuple(excluded), "")
