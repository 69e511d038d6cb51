"""Verdict snapshots (syrupy): what a stack bump changed, as a snapshot diff.

The snapshot holds, per claim result, only what a reviewer signs off on — verdict, tier, band
(when the claim has one) and scope — never raw figures, which move with every resample. So
``pytest certifications -m layer5`` on a new stack fails with a diff exactly when a verdict,
a band or a scope changed.

A fresh checkout has no baseline. Syrupy would fail on the missing snapshot; a missing
baseline is not a regression, and a comparison that was not made is not a pass, so the test is
*skipped* as NOT RUN with the command that records one (``--snapshot-update``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from ..claims.model import ClaimResult

__all__ = ["VerdictSnapshotExtension", "assert_verdicts_match", "verdict_table"]


class VerdictSnapshotExtension(JSONSnapshotExtension):
    """One JSON file per snapshot: reviewable in a pull request, diffs line by line."""


def _entry(result: ClaimResult) -> str:
    # One line per claim, so a changed verdict's diff line names its claim.
    parts = [f"verdict={result.verdict.value}", f"tier={result.claim.tier.value}"]
    band = result.figures.get("band")
    if isinstance(band, str):
        parts.append(f"band={band}")
    parts.append(f"scope={result.scope}")
    return "; ".join(parts)


def verdict_table(results: Iterable[ClaimResult]) -> dict[str, str]:
    """``claim result id → "verdict=…; tier=…; band=…; scope=…"``, sorted by id."""
    return {r.id: _entry(r) for r in sorted(results, key=lambda r: r.id)}


def assert_verdicts_match(snapshot: Any, results: Iterable[ClaimResult]) -> None:
    """Compare the run's verdicts with the accepted baseline (syrupy's ``snapshot`` fixture).

    With ``--snapshot-update`` the run's verdicts become the baseline. Without a baseline the
    test is skipped as NOT RUN, naming the command that records one.
    """
    snap = snapshot.use_extension(VerdictSnapshotExtension)
    location = Path(snap.extension.get_location(test_location=snap.test_location, index=snap.index))
    if not location.is_file() and not snap.update_snapshots:
        pytest.skip(
            f"NOT RUN: no verdict baseline at {location}; record this run's verdicts with "
            "--snapshot-update (`tox -e certify -- --snapshot-update`) and commit it"
        )
    if not snap == verdict_table(results):
        # Explicit, so the diff shows whether or not pytest rewrote this module's asserts
        # (an editable install of the plugin is not rewritten).
        pytest.fail("\n".join(["verdicts differ from the baseline: [- snapshot] vs [+ received]",
                               *snap.get_assert_diff()]), pytrace=False)
