"""Judge health: a judge that keeps failing stops the run, never silently leaves the vote.

DESIGN §8: "A judge that keeps failing stops the run (or makes label-dependent claims
INCONCLUSIVE); it is never silently dropped from the vote." Before this module a judge that
failed every request (HTTP 500, a wrong model name behind a gateway, a timeout) produced
``unjudgeable`` labels that were stored for good; the cohort then voted with the remaining
judge and the run certified.

* :func:`is_judge_error` says which judgements are the *judge's* failure (no answer from it)
  rather than a verdict about the response (an unparseable or contradictory judge answer, an
  empty model response). Errors are never stored as labels, so a re-run retries them.
* :class:`JudgeHealth` counts errors per judge over a run; :meth:`JudgeHealth.failures` names
  each judge whose error share exceeds ``[judges] max_error_rate``.
* :func:`inconclusive_for_failed_judges` is the ``on_judge_failure = "inconclusive"`` policy:
  every label-dependent claim that was measured becomes INCONCLUSIVE with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..claims.catalogue import LABEL_DEPENDENT
from ..claims.model import ClaimResult, Verdict
from .base import JudgeError, Judgement, Label

#: Unjudgeable reasons that describe the response, not a failure of the judge.
RESPONSE_REASONS = frozenset({"empty response"})


class JudgeFailedError(JudgeError):
    """A judge's error share exceeded ``[judges] max_error_rate`` (one line: judge, share, why)."""


def is_judge_error(judgement: Judgement) -> bool:
    """True when the judge gave no answer (timeout, HTTP error, malformed body, retries spent)."""
    return (
        judgement.label is Label.UNJUDGEABLE
        and judgement.raw is None
        and judgement.reason not in RESPONSE_REASONS
    )


@dataclass
class JudgeHealth:
    """Requests and errors per judge over one run (mutable accumulator; read with failures())."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, judge: str, judgements: Iterable[Judgement]) -> list[Judgement]:
        """Count ``judgements``; return the ones worth storing (the non-errors)."""
        keep = []
        for j in judgements:
            self.requests[judge] += 1
            if is_judge_error(j):
                self.errors[judge] += 1
                self.reasons.setdefault(judge, Counter())[j.reason or "no answer"] += 1
            else:
                keep.append(j)
        return keep

    def failures(self, max_error_rate: float) -> list[str]:
        """One line per judge whose error share is strictly above ``max_error_rate``."""
        out = []
        for judge, n in sorted(self.requests.items()):
            k = self.errors[judge]
            if n and k / n > max_error_rate:
                why, count = self.reasons[judge].most_common(1)[0]
                out.append(
                    f"judge {judge!r} failed {k} of {n} requests ({k / n:.0%} > [judges] "
                    f"max_error_rate = {max_error_rate:g}; most common: {why!r} x{count}); a "
                    "failing judge is never dropped from the vote: fix it and re-run (stored "
                    "answers and labels are kept; only its failed requests are sent again)"
                )
        return out

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {
            judge: {
                "requests": n,
                "errors": self.errors[judge],
                "reasons": dict(self.reasons.get(judge, {})),
            }
            for judge, n in sorted(self.requests.items())
        }


def inconclusive_for_failed_judges(
    results: Sequence[ClaimResult], failures: Sequence[str]
) -> tuple[ClaimResult, ...]:
    """``on_judge_failure = "inconclusive"``: measured label-dependent claims are INCONCLUSIVE."""
    if not failures:
        return tuple(results)
    why = failures[0].split(";")[0]
    out = []
    for r in results:
        if (
            r.claim.id in LABEL_DEPENDENT
            and r.verdict.measured
            and r.verdict is not Verdict.INCONCLUSIVE
        ):
            r = replace(
                r,
                verdict=Verdict.INCONCLUSIVE,
                reason=f"{why}; was {r.verdict.value}" + (f": {r.reason}" if r.reason else ""),
            )
        out.append(r)
    return tuple(out)
