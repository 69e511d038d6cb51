"""Layer 5 — serving-state independence (README "Claims"; seed 000, TR152).

Each test looks up the claim result the runner computed and ends with its verdict:
CERTIFIED/MONITOR pass, FAIL fails, NOT RUN/INCONCLUSIVE/UNTESTED/SCAFFOLDED-ONLY are skipped
with their reason (never passed) and shown under that verdict in the claim ladder.
"""

from __future__ import annotations

import pytest

from pytest_servecert.assertions import check_claim

pytestmark = pytest.mark.layer5


def test_harmful_core_invariant(request, servecert_run, candidate):
    """Harmful batteries: no discordant pair beyond the A/A noise floor, in any cell."""
    check_claim(request, servecert_run.result("L5.harmful_core", candidate))


def test_cell_equivalence(request, servecert_run, candidate, cell):
    """Per cell: TOST ±margin on the paired safe-rate change (sparse cells are INCONCLUSIVE)."""
    check_claim(request, servecert_run.result("L5.equivalence", f"{candidate}:{cell}"))


def test_equivalence_coverage(request, servecert_run, candidate):
    """Share of measured cells shown equivalent (≥ 95% certifies)."""
    check_claim(request, servecert_run.result("L5.equivalence", candidate))


def test_no_serving_state_interaction(request, servecert_run, candidate):
    """H2 rejected: the spread of per-cell Δ stays within the limit."""
    check_claim(request, servecert_run.result("L5.interaction", candidate))


def test_pooled_lean_located(request, servecert_run, candidate):
    """Pooled matched-pairs OR; a CI excluding 1 is a located, Licensed footnote (MONITOR)."""
    check_claim(request, servecert_run.result("L5.pooled_lean", candidate))


def test_no_per_cell_effect(request, servecert_run, candidate):
    """Holm over every measured cell's exact McNemar test: none significant."""
    check_claim(request, servecert_run.result("L5.holm", candidate))
