"""The claim ladder as data, and its plain-text lines (no IO here; ``report/`` prints them).

One rung per summary claim, ordered by layer then claim id. Per-cell results of one claim
(``L5.equivalence[battery/model/context]``) fold into a single rung that lists only the
cells that did not pass, so a 72-cell design stays readable; layer-2 screens (one result per
candidate) list every result with its figures. Every rung that did not pass ends
with a remedy sentence; the last line counts the verdicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from .catalogue import remedy
from .model import SEVERITY, ClaimResult, Layer, Verdict, worst_verdict

__all__ = ["LAYER_TITLES", "ClaimLadder"]

LAYER_TITLES: Mapping[Layer, str] = {
    Layer.JUDGE_VALIDITY: "judge validity",
    Layer.BEHAVIOURAL_SCREENS: "behavioural screens",
    Layer.STACK_REPRODUCIBILITY: "stack reproducibility",
    Layer.SCALE: "scale",
    Layer.SERVING_STATE: "serving-state independence",
}


_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_COLOURS: Mapping[Verdict, str] = {
    Verdict.CERTIFIED: "\x1b[32m",
    Verdict.MONITOR: "\x1b[33m",
    Verdict.FAIL: "\x1b[1;31m",
    Verdict.INCONCLUSIVE: "\x1b[35m",
    Verdict.NOT_RUN: "\x1b[36m",
    Verdict.UNTESTED: "\x1b[36m",
    Verdict.SCAFFOLDED_ONLY: "\x1b[36m",
}

_INDENT = "  "
_DETAIL = "      "


@dataclass(frozen=True)
class ClaimLadder:
    """Claim results ordered by layer, claim id and subject.

    Build with :meth:`from_results`; :meth:`lines` renders it; :attr:`exit_ok` is False when any
    claim FAILed.
    """

    results: tuple[ClaimResult, ...]

    @classmethod
    def from_results(cls, results: Sequence[ClaimResult]) -> ClaimLadder:
        ordered = sorted(results, key=lambda r: (int(r.claim.layer), r.claim.id, r.subject))
        return cls(tuple(ordered))

    @property
    def counts(self) -> Mapping[Verdict, int]:
        """How many results got each verdict (per-cell results counted one by one)."""
        counter = Counter(r.verdict for r in self.results)
        return {v: counter[v] for v in SEVERITY if counter[v]}

    @property
    def exit_ok(self) -> bool:
        return not any(r.verdict is Verdict.FAIL for r in self.results)

    def lines(self, color: bool = False) -> Iterator[str]:
        """The ladder as text lines; ANSI colours only when ``color`` is True."""

        def paint(text: str, verdict: Verdict | None = None, bold: bool = False) -> str:
            if not color:
                return text
            code = _COLOURS[verdict] if verdict is not None else _BOLD if bold else ""
            return f"{code}{text}{_RESET}" if code else text

        rungs = self._rungs()
        id_width = max((len(label) for _, label, _ in rungs), default=0)
        tier_width = max((len(r.claim.tier.value) for r in self.results), default=0)
        verdict_width = max((len(v.value) for v in SEVERITY), default=0)
        for layer, layer_rungs in groupby(rungs, key=lambda rung: rung[0]):
            yield paint(f"Layer {int(layer)} · {LAYER_TITLES[layer]}", bold=True)
            for _, label, members in layer_rungs:
                yield from self._rung_lines(label, members, id_width, tier_width,
                                            verdict_width, paint)
        total = len(self.results)
        counts = ", ".join(paint(f"{n} {v.value}", v) for v, n in self.counts.items())
        # the exit status is the release gate's (claims.release_gate), not the ladder's
        status = "no FAIL" if self.exit_ok else paint("a claim FAILed", Verdict.FAIL)
        yield f"{total} claim results: {counts or 'none'}; {status}"

    # -- internals -------------------------------------------------------------------------

    def _rungs(self) -> list[tuple[Layer, str, list[ClaimResult]]]:
        """(layer, label, results): a summary result alone, or all per-cell results of a claim."""
        rungs: list[tuple[Layer, str, list[ClaimResult]]] = []
        for result in self.results:
            if not result.subject:
                rungs.append((result.claim.layer, result.claim.id, [result]))
                continue
            label = f"{result.claim.id}[*]"
            if rungs and rungs[-1][1] == label:
                rungs[-1][2].append(result)
            else:
                rungs.append((result.claim.layer, label, [result]))
        return rungs

    @staticmethod
    def _rung_lines(
        label: str,
        members: list[ClaimResult],
        id_width: int,
        tier_width: int,
        verdict_width: int,
        paint: Callable[..., str],
    ) -> Iterator[str]:
        verdict = worst_verdict([m.verdict for m in members])
        tier = members[0].claim.tier.value
        head = f"{_INDENT}{label:<{id_width}}  {tier:<{tier_width}}  "
        shown = paint(f"{verdict.value:<{verdict_width}}", verdict)
        if len(members) == 1 and not members[0].subject:
            result = members[0]
            yield f"{head}{shown}  {result.headline}".rstrip()
            if result.scope:
                yield f"{_DETAIL}scope: {result.scope}"
            if result.reason:
                yield f"{_DETAIL}{'note' if result.verdict.passed else 'reason'}: {result.reason}"
            if not result.verdict.passed:
                yield f"{_DETAIL}remedy: {remedy(result)}"
            return
        tally = Counter(m.verdict for m in members)
        summary = ", ".join(f"{tally[v]} {v.value}" for v in SEVERITY if tally[v])
        # Layer-2 screens are one result per candidate: every one is listed with its figures.
        screens = members[0].claim.layer is Layer.BEHAVIOURAL_SCREENS
        noun = "results" if screens else "cells"
        yield f"{head}{shown}  {len(members)} {noun}: {summary}".rstrip()
        # NOT RUN cells share a handful of reasons (one per failed server): one line each.
        not_run: dict[str, list[ClaimResult]] = {}
        for member in members:
            if member.verdict is Verdict.NOT_RUN and not screens:
                not_run.setdefault(member.reason, []).append(member)
        for reason, group in not_run.items():
            subjects = ", ".join(m.subject for m in group[:3])
            more = f", +{len(group) - 3} more" if len(group) > 3 else ""
            yield (f"{_DETAIL}{paint(Verdict.NOT_RUN.value, Verdict.NOT_RUN)} ×{len(group)}  "
                   f"{subjects}{more}")
            yield f"{_DETAIL}  {reason}"
        for member in members:
            if not screens and (member.verdict.passed or member.verdict is Verdict.NOT_RUN):
                continue
            yield (f"{_DETAIL}{member.subject}  {paint(member.verdict.value, member.verdict)}  "
                   f"{member.headline}")
            if member.reason:
                yield f"{_DETAIL}  {member.reason}"
        if verdict is not Verdict.CERTIFIED and verdict is not Verdict.MONITOR:
            worst = next(m for m in members if m.verdict is verdict)
            yield f"{_DETAIL}remedy: {remedy(worst)}"
