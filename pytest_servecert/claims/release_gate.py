"""The release gate: which claim results must pass for the session to exit 0 (DESIGN §7 "Gate").

Verdicts stay what the data say; the gate only decides the exit status. A required claim passes
the gate when its verdict is CERTIFIED or MONITOR (``Verdict.passed``); NOT RUN, INCONCLUSIVE,
UNTESTED and SCAFFOLDED-ONLY are honest verdicts, not passes, so under the ``strict`` policy
each of them makes the session exit non-zero. Under ``report`` the same block is printed and
only a FAIL (a failed test) changes the exit status.

``require`` entries are claim ids (``L5.harmful_core``: every subject of that claim), result ids
(``L5.harmful_core[fp8_kv]``) or glob patterns over either (``L5.*``, ``L5.*[fp8_kv*``).
Only ``*`` and ``?`` are wildcards: brackets are literal, because result ids contain them.

A production canary (issue #18) is decided by the same ``require``: its entries that name a
canary claim (:func:`canary_require`), or :data:`CANARY_DEFAULT_REQUIRE` when none does
(:func:`require_for` decides which entries apply to a session's results).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .model import ClaimResult

#: Every layer-1 and layer-5 claim of every candidate (DESIGN §7).
DEFAULT_REQUIRE: tuple[str, ...] = ("L1.*", "L5.*")
#: A canary's required claims when ``require`` names none: the per-run alarms on what the
#: certification's default requires of a deployment (harmful core and over-refusal, layer 5)
#: plus its identity. Not judge κ (NOT RUN with a one-judge cohort) nor the rolling/weekly
#: alarms (UNTESTED/INCONCLUSIVE until the series holds enough runs): ``"canary.*"`` adds them.
CANARY_DEFAULT_REQUIRE: tuple[str, ...] = ("canary.harmful_core", "canary.over_refusal", "canary.stack_drift")
POLICIES: tuple[str, ...] = ("strict", "report")
DEFAULT_POLICY = "strict"


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts) + r"\Z")


def matches(pattern: str, result: ClaimResult) -> bool:
    """True when ``pattern`` names ``result`` by its result id or its claim id."""
    rx = _pattern(pattern)
    return bool(rx.match(result.id) or rx.match(result.claim.id))


def unknown_patterns(require: Iterable[str], claim_ids: Iterable[str]) -> list[str]:
    """Entries that can match no claim of the catalogue (typos), checked at config time.

    An entry names a claim when its part before any ``[`` matches a catalogue claim id.
    """
    ids = tuple(claim_ids)
    out = []
    for entry in require:
        head = _pattern(entry.split("[", 1)[0] if "[" in entry else entry)
        if not any(head.match(cid) for cid in ids) and not any(
            _pattern(entry).match(cid) for cid in ids
        ):
            out.append(entry)
    return out


def canary_require(require: Sequence[str]) -> tuple[str, ...]:
    """The ``require`` entries that can name a canary claim, or :data:`CANARY_DEFAULT_REQUIRE`
    when none does (``[]`` still requires nothing)."""
    from .catalogue import CANARY_CLAIMS

    if not require:
        return ()
    ids = [c.id for c in CANARY_CLAIMS]
    own = tuple(entry for entry in require if not unknown_patterns([entry], ids))
    return own or CANARY_DEFAULT_REQUIRE


def require_for(require: Sequence[str], results: Iterable[ClaimResult]) -> tuple[str, ...]:
    """The ``require`` entries that decide ``results``: a canary run (only canary claims, from
    ``servecert canary`` or ``pytest -m canary`` alike) by :func:`canary_require` alone; a session
    that certifies and watches at once by ``require`` plus :func:`canary_require`; any other
    session by ``require``."""
    kinds = {r.claim.id.startswith("canary.") for r in results}
    if True not in kinds:
        return tuple(require)
    if False not in kinds:
        return canary_require(require)
    return tuple(dict.fromkeys((*require, *canary_require(require))))


@dataclass(frozen=True)
class GateDecision:
    """What the gate concluded about one session's claim results."""

    policy: str
    require: tuple[str, ...]
    required: tuple[ClaimResult, ...]
    unmet: tuple[ClaimResult, ...]
    unmatched: tuple[str, ...]  # require entries no result of this session matched (deselected)

    @property
    def passed(self) -> bool:
        return not self.unmet

    @property
    def blocks_exit(self) -> bool:
        """True when the session must exit non-zero because of the gate alone."""
        return self.policy == "strict" and not self.passed

    def lines(self, option: str = "--servecert-gate") -> list[str]:
        """The closing block: a headline, then one line per unmet claim with its reason;
        ``option`` is the command-line flag that sets the policy where the block is printed."""
        n, k = len(self.required), len(self.unmet)
        if self.passed:
            head = (
                f"servecert gate ({self.policy}): PASSED: all {n} required claims are "
                "CERTIFIED or MONITOR"
            )
        elif self.policy == "strict":
            head = (
                f"servecert gate (strict): NOT PASSED: {k} of {n} required claims are not "
                "CERTIFIED or MONITOR; the session exits non-zero"
            )
        else:
            head = (
                f"servecert gate (report): {k} of {n} required claims are not CERTIFIED or "
                "MONITOR (report policy: the exit status is left to the test outcomes)"
            )
        out = [head]
        for r in self.unmet:
            why = r.reason or r.headline
            out.append(f"  {r.id}: {r.verdict.value}" + (f": {why}" if why else ""))
        if self.unmatched:
            out.append("  not evaluated in this session (deselected): " + ", ".join(self.unmatched))
        out.append(
            f"  required: {', '.join(self.require) or '(nothing)'}  ([gate] require; "
            f"{option} strict|report)"
        )
        return out


def decide(results: Sequence[ClaimResult], require: Sequence[str], policy: str) -> GateDecision:
    """Apply ``require`` under ``policy`` to this session's results."""
    if policy not in POLICIES:
        raise ValueError(f"gate policy {policy!r}: expected one of {', '.join(POLICIES)}")
    required = tuple(r for r in results if any(matches(p, r) for p in require))
    unmatched = tuple(p for p in require if not any(matches(p, r) for r in results))
    return GateDecision(
        policy=policy,
        require=tuple(require),
        required=required,
        unmet=tuple(r for r in required if not r.verdict.passed),
        unmatched=unmatched,
    )
