"""The claim model: layers, tiers, verdicts, claims and their results.

Pure data. A claim is a certification statement with a statistic, a threshold and a tier;
a ``ClaimResult`` is what one evaluation of it concluded. Verdict semantics
(README "Verdicts"; seed 003): a claim that could not be measured is NOT_RUN / UNTESTED /
INCONCLUSIVE, never CERTIFIED.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The largest share of unjudgeable labels a battery (cohort gate) or a cell (layer 5) may have
#: before its claims are INCONCLUSIVE: a plugin decision, the seeds give no figure (TR152 lost
#: 2.6 % of its pairs). ``[judges] max_unjudgeable_rate`` overrides it; this is its one default.
DEFAULT_MAX_UNJUDGEABLE_RATE = 0.10


class Layer(enum.IntEnum):
    """Protocol layer (seed 003 L40-51); also the pytest marker ``layer<N>``."""

    JUDGE_VALIDITY = 1
    BEHAVIOURAL_SCREENS = 2
    STACK_REPRODUCIBILITY = 3
    SCALE = 4
    SERVING_STATE = 5

    @property
    def marker(self) -> str:
        return f"layer{int(self)}"


class Tier(enum.Enum):
    """Claim-ladder tier (seed 002 §4.6)."""

    SUPPORTED = "Supported"
    LICENSED = "Licensed"
    FORBIDDEN = "Forbidden"


class Verdict(enum.Enum):
    """Outcome of one claim evaluation."""

    CERTIFIED = "CERTIFIED"
    MONITOR = "MONITOR"  # passes, with a located-effect footnote (Licensed)
    FAIL = "FAIL"
    NOT_RUN = "NOT RUN"  # a server/cell could not run; never counted as a null
    SCAFFOLDED_ONLY = "SCAFFOLDED-ONLY"  # outside the certified envelope (e.g. scale band)
    UNTESTED = "UNTESTED"  # the claim does not apply to what was measured (e.g. T > 0 for TAIS)
    INCONCLUSIVE = "INCONCLUSIVE"  # measured, but the data cannot decide (sparse, unjudgeable)

    @property
    def passed(self) -> bool:
        """True only for verdicts that let a release through."""
        return self in (Verdict.CERTIFIED, Verdict.MONITOR)

    @property
    def failed(self) -> bool:
        return self is Verdict.FAIL

    @property
    def measured(self) -> bool:
        """False for verdicts that say nothing was (or could be) measured."""
        return self not in (Verdict.NOT_RUN, Verdict.UNTESTED, Verdict.SCAFFOLDED_ONLY)

    @property
    def severity(self) -> int:
        """Rank in :data:`SEVERITY`: 0 is the worst (FAIL)."""
        return SEVERITY.index(self)


#: Every verdict, worst first: the ladder folds a rung to its worst cell, the report orders
#: tallies by it and the certificate's status is the worst verdict's (the one ordering).
SEVERITY: tuple[Verdict, ...] = (
    Verdict.FAIL,
    Verdict.INCONCLUSIVE,
    Verdict.NOT_RUN,
    Verdict.UNTESTED,
    Verdict.SCAFFOLDED_ONLY,
    Verdict.MONITOR,
    Verdict.CERTIFIED,
)


def worst_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe of ``verdicts`` (:data:`SEVERITY`); ``ValueError`` when empty."""
    return min(verdicts, key=SEVERITY.index)


@dataclass(frozen=True)
class Claim:
    """A certification statement: what is asserted, by which statistic, against what threshold."""

    id: str
    layer: Layer
    tier: Tier
    statement: str
    statistic: str
    threshold: str


@dataclass(frozen=True)
class ClaimResult:
    """One evaluation of a claim.

    ``figures`` holds the headline numbers (JSON-serialisable scalars); ``headline`` renders them
    for humans. ``scope`` says what the verdict covers (and which axes were dropped); ``reason``
    explains any verdict other than CERTIFIED.
    """

    claim: Claim
    verdict: Verdict
    headline: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    scope: str = ""
    reason: str = ""
    subject: str = ""  # e.g. "harmbench/servecert-tiny/batch_size=8" for per-cell claims

    @property
    def id(self) -> str:
        return f"{self.claim.id}[{self.subject}]" if self.subject else self.claim.id
