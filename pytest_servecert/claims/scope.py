"""What a set of cells covers: per serving axis, the settings measured and the ones NOT RUN.

A claim's scope is written from this (seed 000 SS6, SS18): every axis is listed with the
settings its measured cells covered; a setting only NOT RUN cells had is subtracted with its
reason, and an axis left with nothing beyond its centre is *deferred*, never reported as null.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .cells import CellTable

__all__ = ["AxisCoverage", "axis_coverage", "axis_name", "join_words", "scope_text"]

#: Display names of the serving-state axes (``config.py``: SERVER_AXES, CLIENT_AXES); unknown
#: knobs show with spaces for underscores.
AXIS_NAMES = {
    "kv_cache_dtype": "KV-cache dtype",
    "batch_size": "batch size",
    "prefix_caching": "prefix caching",
    "speculative": "speculative decoding",
    "speculative_decoding": "speculative decoding",
    "temperature": "temperature",
}
_AXIS_ORDER = tuple(AXIS_NAMES)
#: Token for a cell whose settings do not mention the axis (a bare ``baseline`` label).
BASELINE = "baseline"


def axis_name(axis: str) -> str:
    return AXIS_NAMES.get(axis, axis.replace("_", " "))


def _show(value: str) -> str:
    lowered = value.lower()
    if lowered in ("true", "on", "yes"):
        return "on"
    if lowered in ("false", "off", "no", "none"):
        return "off"
    return value


def _sorted_values(values: Iterable[str]) -> tuple[str, ...]:
    def key(value: str) -> tuple[int, float, str]:
        if value == BASELINE:
            return (0, 0.0, "")
        try:
            return (1, float(value), value)
        except ValueError:
            return (2, 0.0, value)

    return tuple(sorted(set(values), key=key))


def join_words(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b, and c``."""
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + ", and " + words[-1]


@dataclass(frozen=True)
class AxisCoverage:
    """One axis: the settings measured, and the settings only NOT RUN cells had (with why)."""

    axis: str
    measured: tuple[str, ...]
    not_run: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def name(self) -> str:
        return axis_name(self.axis)

    @property
    def varied(self) -> bool:
        """The measured cells covered more than one setting of the axis."""
        return len(self.measured) > 1

    @property
    def deferred(self) -> bool:
        """Only the centre was measured; every off-centre setting was NOT RUN."""
        return len(self.measured) <= 1 and bool(self.not_run)

    def values_text(self) -> str:
        return "{" + ", ".join(self.measured) + "}"

    def reason_text(self) -> str:
        first = self.reasons[0] if self.reasons else "no reason recorded"
        more = f" (+{len(self.reasons) - 1} other reasons)" if len(self.reasons) > 1 else ""
        return f"NOT RUN: {first}{more}"


def axis_coverage(cells: Sequence[CellTable]) -> tuple[AxisCoverage, ...]:
    """Coverage of every axis any cell mentions, in the order of :data:`AXIS_NAMES`, then alphabetical."""
    axes = {axis for cell in cells for axis, _ in cell.settings}
    ordered = [a for a in _AXIS_ORDER if a in axes] + sorted(axes - set(_AXIS_ORDER))
    coverage = []
    for axis in ordered:
        measured = {_show(c.settings_map.get(axis, BASELINE)) for c in cells if c.measured}
        not_run: dict[str, list[str]] = {}
        for cell in cells:
            value = _show(cell.settings_map.get(axis, BASELINE))
            if not cell.measured and value not in measured:
                not_run.setdefault(value, []).append(cell.reason.strip())
        reasons = list(dict.fromkeys(r for v in _sorted_values(not_run) for r in not_run[v]))
        coverage.append(
            AxisCoverage(
                axis=axis,
                measured=_sorted_values(measured),
                not_run=_sorted_values(not_run),
                reasons=tuple(reasons),
            )
        )
    return tuple(coverage)


def scope_text(cells: Sequence[CellTable]) -> str:
    """The claim scope: covered settings per axis, then what was deferred and why.

    ``"batch size {1, 8, 32}, prefix caching {off, on}, temperature {0.0, 0.7, 1.0};
    speculative decoding deferred (NOT RUN: <reason>)"``
    """
    covered: list[str] = []
    deferred: list[str] = []
    for axis in axis_coverage(cells):
        if axis.deferred:
            deferred.append(f"{axis.name} deferred ({axis.reason_text()})")
        elif axis.measured:
            part = f"{axis.name} {axis.values_text()}"
            if axis.not_run:
                part += f" ({', '.join(axis.not_run)} {axis.reason_text()})"
            covered.append(part)
    if not covered and not deferred:
        contexts = sorted({c.context for c in cells if c.measured})
        return f"contexts {{{', '.join(contexts)}}}" if contexts else ""
    text = ", ".join(covered)
    if deferred:
        text = f"{text}; {'; '.join(deferred)}" if text else "; ".join(deferred)
    return text
