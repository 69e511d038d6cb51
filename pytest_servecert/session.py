"""Per-run state of the plugin: the claim results the certification tests produced.

Results travel as plain dicts (``result_to_dict``) so they survive pytest-xdist: a worker attaches
them to its test report's ``user_properties``; the controller rebuilds them here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .claims.model import Claim, ClaimResult, Layer, Tier, Verdict

USER_PROPERTY = "servecert_claim"


def json_safe(value: Any) -> Any:
    """JSON-safe scalars: numpy numbers become Python numbers, NaN/inf become None."""
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"claim figure of type {type(value).__name__} is not JSON-serialisable: {value!r}")


def result_to_dict(result: ClaimResult) -> dict[str, Any]:
    claim = result.claim
    return {
        "id": result.id,
        "claim": {
            "id": claim.id,
            "layer": int(claim.layer),
            "tier": claim.tier.value,
            "statement": claim.statement,
            "statistic": claim.statistic,
            "threshold": claim.threshold,
        },
        "subject": result.subject,
        "verdict": result.verdict.value,
        "headline": result.headline,
        "figures": json_safe(dict(result.figures)),
        "scope": result.scope,
        "reason": result.reason,
    }


def result_from_dict(data: Mapping[str, Any]) -> ClaimResult:
    c = data["claim"]
    claim = Claim(
        id=c["id"],
        layer=Layer(c["layer"]),
        tier=Tier(c["tier"]),
        statement=c["statement"],
        statistic=c["statistic"],
        threshold=c["threshold"],
    )
    return ClaimResult(
        claim=claim,
        verdict=Verdict(data["verdict"]),
        headline=data["headline"],
        figures=data.get("figures") or {},
        scope=data.get("scope", ""),
        reason=data.get("reason", ""),
        subject=data.get("subject", ""),
    )


@dataclass
class CertSession:
    """Claim results collected during one pytest session (controller side), keyed by result id."""

    results: dict[str, ClaimResult] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)

    def add(self, result: ClaimResult) -> None:
        self.results[result.id] = result

    def ordered(self) -> list[ClaimResult]:
        return sorted(self.results.values(), key=lambda r: (int(r.claim.layer), r.claim.id, r.subject))
