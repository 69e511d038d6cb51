"""Shared test fixtures: where the canonical batteries are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# No wall-clock deadlines in the suite (CI machines are shared and noisy); in CI the examples
# are derived from the test, so a failure reproduces exactly.
settings.register_profile("servecert", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("servecert")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def battery_dir() -> Path:
    """The verified offline battery copy: SERVECERT_BATTERY_DIR, else ../shared/batteries."""
    env = os.environ.get("SERVECERT_BATTERY_DIR")
    path = Path(env) if env else ROOT.parent / "shared" / "batteries"
    if not (path / "MANIFEST.json").is_file():
        pytest.fail(f"battery copy not found at {path}: set SERVECERT_BATTERY_DIR", pytrace=False)
    return path


@pytest.fixture(scope="session")
def calibration_dir() -> Path:
    """The verified judge-calibration copy: SERVECERT_CALIBRATION_DIR, else ../shared/judge-calibration."""
    env = os.environ.get("SERVECERT_CALIBRATION_DIR")
    path = Path(env) if env else ROOT.parent / "shared" / "judge-calibration"
    if not (path / "xstest-v2-completions" / "SHA256SUMS").is_file():
        pytest.fail(f"calibration copy not found at {path}: set SERVECERT_CALIBRATION_DIR", pytrace=False)
    return path
