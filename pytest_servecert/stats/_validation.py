"""Argument checks and the shared normal-quantile rule for the statistics core.

Every public function validates its inputs here so that bad input fails with one line naming
the argument, e.g. ``b must be a non-negative integer, got -1``. Nothing is coerced silently:
a float count such as ``3.0`` is rejected, because a fractional "count" is always an upstream bug.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import stats

#: The two-sided 95 % normal quantile as TR145 and TR152 hard-code it. TR145's RBG interval
#: 2.0582 [0.6064, 6.9853] reproduces only with this value (Phi^-1(0.975) gives 6.9852).
Z_95_REPORTS = 1.96


def count(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` if it is a non-negative integer (Python or NumPy)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def positive_count(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def real(value: object, name: str) -> float:
    """Return ``value`` as a finite ``float`` (bools and NaN/inf are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def alpha(value: object, name: str = "alpha", upper: float = 1.0) -> float:
    """Return ``value`` if it lies strictly inside ``(0, upper)``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 < float(value) < upper
    ):
        raise ValueError(f"{name} must be in (0, {upper:g}), got {value!r}")
    return float(value)


def proportion(value: object, name: str) -> float:
    """Return ``value`` if it is a real number in ``[0, 1]``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(f"{name} must be a proportion in [0, 1], got {value!r}")
    return float(value)


def samples(values: object, name: str, minimum: int = 1) -> np.ndarray:
    """Return a 1-D float array of finite values with at least ``minimum`` entries."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of real numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size < minimum:
        raise ValueError(f"{name} must hold at least {minimum} value(s), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers")
    return arr


def counts_array(values: object, name: str, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    """Return an int64 array of non-negative integer counts shaped ``(k, *shape_tail)``.

    ``what`` describes one element for the error message, e.g. ``"(b, c) pairs"``.
    """
    arr = np.asarray(values)
    expected = int(np.prod(shape_tail))
    if arr.ndim == 0 or arr.size == 0 or arr.size % expected:
        raise ValueError(f"{name} must be a non-empty list of {what}")
    if arr.dtype == object or arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must contain non-negative integer counts")
    arr = arr.reshape((-1, *shape_tail)).astype(np.int64)
    if np.any(arr < 0):
        raise ValueError(f"{name} must contain non-negative integer counts")
    return arr


def wald_z(alpha_: float) -> float:
    """Normal quantile for a two-sided ``1 - alpha`` Wald interval.

    1.96 at ``alpha = 0.05`` (what both reports hard-code, so their intervals reproduce to the
    printed digits), ``Phi^-1(1 - alpha/2)`` otherwise.
    """
    return Z_95_REPORTS if alpha_ == 0.05 else float(stats.norm.ppf(1.0 - alpha_ / 2.0))
