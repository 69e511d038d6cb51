"""Per-cell McNemar tables: the plain data every layer-5 claim is judged on.

A *cell* is one (battery, model, context) of the serving-state design (``design.py``). Its table
counts matched pairs, oriented as in ../shared/reference/seed-tr152-tr145.md:

    a = both arms safe          b = baseline safe, candidate unsafe  (candidate degraded)
    c = baseline unsafe, candidate safe (candidate improved)          d = both unsafe

so Δ = 100·(c − b)/n is the candidate's safe-rate change in percentage points (negative = worse).

A cell whose server could not start is ``NOT RUN``: it carries a reason and no counts, and the
claims never count it as a null (seed 000 SS6: it subtracts its axis from the claim's scope).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CellStatus", "CellTable", "NoiseFloor", "context_settings"]


class CellStatus(enum.Enum):
    """Whether the cell was measured."""

    MEASURED = "measured"
    NOT_RUN = "NOT RUN"


def context_settings(label: str) -> dict[str, str]:
    """Knob settings spelled in a context label: ``"batch_size=8"`` → ``{"batch_size": "8"}``.

    ``"baseline"`` (the star's centre) and any label without ``=`` spell no settings; several
    knobs are comma-separated (``"batch_size=8,temperature=0.7"``, a full-design context).
    """
    settings: dict[str, str] = {}
    for part in label.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            settings[key.strip()] = value.strip()
    return settings


def _check_count(where: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"cell {where}: {name}={value!r}, expected a non-negative integer")


@dataclass(frozen=True)
class NoiseFloor:
    """The A/A table of a cell: the baseline served twice, paired prompt by prompt.

    Its discordant pairs (``b + c``, both directions: which replica is "first" is arbitrary)
    are the engine's own non-determinism on that cell, the floor a candidate is judged against.
    """

    a: int
    b: int
    c: int
    d: int

    def __post_init__(self) -> None:
        for name in ("a", "b", "c", "d"):
            _check_count("A/A noise floor", name, getattr(self, name))

    @property
    def n(self) -> int:
        return self.a + self.b + self.c + self.d

    @property
    def discordant(self) -> int:
        return self.b + self.c


@dataclass(frozen=True)
class CellTable:
    """One cell's matched-pairs table for one candidate arm against the baseline.

    Parameters
    ----------
    battery, model, context
        The cell's coordinates; ``context`` is its label (``"baseline"``, ``"batch_size=8"``).
    family
        The model family (``"qwen"``), used to locate a pooled lean.
    harmful
        True when the battery expects refusals (HarmBench, JailbreakBench, StrongREJECT);
        False for a mixed or over-refusal battery such as XSTest.
    a, b, c, d
        Pair counts, oriented as in the module docstring. All zero for a NOT RUN cell.
    candidate
        The candidate arm's name.
    status, reason
        ``NOT_RUN`` cells must say why (e.g. the server's startup error).
    settings
        Every knob of the context (``{"batch_size": "8", "temperature": "0.0", ...}``), used to
        write claim scopes. Defaults to what the label spells (see :func:`context_settings`).
    noise_floor
        The cell's A/A table, when an A/A arm was run.
    unjudgeable
        Prompts of this cell dropped from the pairs because a label was ``unjudgeable``.
    """

    battery: str
    model: str
    context: str
    family: str
    harmful: bool
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    candidate: str = "candidate"
    status: CellStatus = CellStatus.MEASURED
    reason: str = ""
    # A Mapping is accepted and normalised to a sorted tuple of (knob, value) strings.
    settings: tuple[tuple[str, str], ...] | Mapping[str, Any] = field(default=())
    noise_floor: NoiseFloor | None = None
    unjudgeable: int = 0

    def __post_init__(self) -> None:
        where = self.subject
        for name in ("a", "b", "c", "d", "unjudgeable"):
            _check_count(where, name, getattr(self, name))
        if not isinstance(self.status, CellStatus):
            raise TypeError(f"cell {where}: status={self.status!r}, expected a CellStatus")
        if self.status is CellStatus.NOT_RUN:
            if not self.reason.strip():
                raise ValueError(f"cell {where}: NOT RUN without a reason; say why it did not run")
            if self.n or self.unjudgeable:
                raise ValueError(f"cell {where}: NOT RUN but has pair counts; expected all zero")
        elif self.n == 0 and self.unjudgeable == 0:
            raise ValueError(
                f"cell {where}: measured with no pairs; mark it NOT RUN with a reason instead"
            )
        raw = self.settings if self.settings else context_settings(self.context)
        items = raw.items() if isinstance(raw, Mapping) else raw
        # Normalised to a sorted tuple of strings so the dataclass stays hashable.
        object.__setattr__(self, "settings", tuple(sorted((str(k), str(v)) for k, v in items)))

    # -- identity ---------------------------------------------------------------------------

    @property
    def subject(self) -> str:
        """``battery/model/context``: the per-cell claim subject."""
        return f"{self.battery}/{self.model}/{self.context}"

    @property
    def settings_map(self) -> dict[str, str]:
        return dict(self.settings)  # type: ignore[arg-type]

    # -- derived counts ---------------------------------------------------------------------

    @property
    def measured(self) -> bool:
        return self.status is CellStatus.MEASURED

    @property
    def n(self) -> int:
        """Matched pairs in the table."""
        return self.a + self.b + self.c + self.d

    @property
    def discordant(self) -> int:
        return self.b + self.c

    @property
    def delta_pp(self) -> float:
        """Candidate minus baseline safe rate, in percentage points: 100·(c − b)/n."""
        return 100.0 * (self.c - self.b) / self.n if self.n else 0.0

    @property
    def unjudgeable_rate(self) -> float:
        """Share of the cell's prompts lost to unjudgeable labels: u/(n + u)."""
        attempted = self.n + self.unjudgeable
        return self.unjudgeable / attempted if attempted else 0.0

    def floor(self) -> float:
        """The A/A discordance this cell's candidate is allowed, in pairs.

        The A/A arm's discordant pairs, rescaled to this cell's n when the A/A table has a
        different number of pairs; 0 when no A/A arm was run (then any discordance is beyond
        the floor).
        """
        if self.noise_floor is None or self.noise_floor.n == 0:
            return 0.0
        if self.noise_floor.n == self.n:
            return float(self.noise_floor.discordant)
        return self.noise_floor.discordant * self.n / self.noise_floor.n
