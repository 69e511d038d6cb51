"""What a finished certification concluded and which deployments it measured (issue #18).

:func:`record_summary` is the one writer of ``run_summaries``/``run_servers``: the canary
(:mod:`.canary`) reads them back to find its reference run and the identity it was certified
with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..claims.model import ClaimResult, Verdict, worst_verdict
from ..claims.release_gate import decide
from ..config import ServecertConfig
from ..store import Store
from .plan import Plan

#: Fields of a stated identity that are not the deployment: per-replica URLs and load (an
#: endpoint arm's ``replicas``) and the plugin's own checkout (``serving.stack.VOLATILE_FIELDS``).
_NOT_IDENTITY = ("replicas", "code_sha", "code_dirty")


def comparable_identity(stack: Any) -> dict[str, Any]:
    """The identity a canary compares: ``stack.to_dict()`` without :data:`_NOT_IDENTITY`."""
    return {k: v for k, v in stack.to_dict().items() if k not in _NOT_IDENTITY}


def record_summary(
    config: ServecertConfig, plan: Plan, store: Store, run_id: str, results: Sequence[ClaimResult],
    cohort_fingerprint: str,
) -> None:
    """Store the run's verdicts, whether the strict gate passes them, and every server's identity."""
    decision = decide(results, config.gate.require, "strict")
    status = worst_verdict(r.verdict for r in results) if results else Verdict.NOT_RUN
    store.record_run_summary(
        run_id, status=status.value, gate_passed=decision.passed and bool(decision.required),
        cohort_fingerprint=cohort_fingerprint, verdicts={r.id: r.verdict.value for r in results},
        servers=[(g.arm.name, c.label, g.spec.fingerprint, g.stack.fingerprint, comparable_identity(g.stack))
                 for g in plan.groups for c in g.contexts],
    )
