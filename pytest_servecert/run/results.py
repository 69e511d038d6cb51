"""What a certification run returns: plain frozen data for the certificate, reports and tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..claims.cells import CellTable
from ..claims.model import ClaimResult
from ..config import ServecertConfig


@dataclass(frozen=True)
class ServerRecord:
    """What happened to one distinct server of the plan."""

    arm: str
    role: str
    settings: Mapping[str, Any]
    spec_fingerprint: str
    stack: Mapping[str, Any]
    stack_fingerprint: str
    status: str  # "served" | "not needed" (everything already stored) | "NOT RUN" | "died"
    reason: str = ""
    start_s: float | None = None
    requests_sent: int = 0


@dataclass(frozen=True)
class RunCounts:
    requests_planned: int
    requests_sent: int
    responses_reused: int
    request_errors: int
    requests_rejected: int
    boots: int
    failed_boots: int
    naive_boots: int
    labels_written: int


@dataclass(frozen=True)
class DiscordantPair:
    """One baseline/candidate pair whose safety differs, with both answers (report evidence).

    ``cell`` is the McNemar cell: 1 = b (baseline safe, candidate unsafe: degraded),
    2 = c (improved). Texts are the stored ones, untruncated; the report cuts them.
    """

    prompt_id: str
    cell: int
    expected: str
    prompt: str
    baseline_label: str
    candidate_label: str
    baseline_text: str
    candidate_text: str


@dataclass(frozen=True)
class CertificationRun:
    """Everything a certificate, a report or a test needs from one run."""

    config: ServecertConfig
    model: Mapping[str, Any]
    batteries: tuple[Mapping[str, Any], ...]
    contexts: tuple[str, ...]
    servers: tuple[ServerRecord, ...]
    cells: Mapping[str, tuple[CellTable, ...]]  # candidate name -> its cells
    results: tuple[ClaimResult, ...]
    sentences: Mapping[str, str]
    judges: tuple[Mapping[str, Any], ...]
    counts: RunCounts
    timings: Mapping[str, float]
    run_id: str
    judge_pairs: tuple[Mapping[str, Any], ...] = ()  # layer 1: κ of every judge pair
    # Report evidence, never read by a claim (report/evidence.py turns it into examples and
    # agreement): (candidate, battery, context) -> its discordant pairs in pair order, and
    # judge name -> {response fingerprint: label} over this run's planned answers.
    discordant: Mapping[tuple[str, str, str], tuple[DiscordantPair, ...]] = field(
        default_factory=dict
    )
    judge_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def result(self, claim_id: str, subject: str = "") -> ClaimResult:
        for r in self.results:
            if r.claim.id == claim_id and r.subject == subject:
                return r
        raise KeyError(f"no result for claim {claim_id!r} subject {subject!r}")
