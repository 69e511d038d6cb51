"""Verdict snapshots: a stack bump that changes a verdict, band or scope fails with a diff.

``tox -e certify -- --snapshot-update`` accepts this run's verdicts as the
baseline (``__snapshots__/``, commit it); later runs compare against it. Without a baseline
the test is skipped as NOT RUN with that command (pytest_servecert.report.snapshot).
"""

from __future__ import annotations

import pytest

from pytest_servecert.report.snapshot import assert_verdicts_match

pytestmark = pytest.mark.layer5


def test_verdicts_match_baseline(servecert_run, snapshot):
    """Every claim's verdict, tier, band and scope equal the accepted baseline."""
    assert_verdicts_match(snapshot, servecert_run.results)
