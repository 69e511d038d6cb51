"""Layer 4 — scale validity (DESIGN §7; seed 003): is the model inside the certified band?"""

from __future__ import annotations

import pytest

from pytest_servecert.assertions import check_claim

pytestmark = pytest.mark.layer4


def test_scale_band(request, servecert_run):
    """Parameter count vs the certified envelope; outside it every verdict is scaffolding."""
    check_claim(request, servecert_run.result("L4.scale_band"))
