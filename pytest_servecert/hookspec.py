"""Hooks that pytest-servecert calls, so a ``conftest.py`` can extend what it records.

Registered through ``pytest_addhooks``. All hooks are called with keyword arguments.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest


def pytest_servecert_stack_info(
    config: pytest.Config, arm: str, stack: MutableMapping[str, Any]
) -> None:
    """Add or change stack-identity fields for one arm before they are fingerprinted.

    Every implementation sees the same mutable ``stack`` mapping; add keys, don't replace it.
    The fields become part of the arm's stack fingerprint, so a changed value never reuses a
    stored answer. Example::

        def pytest_servecert_stack_info(config, arm, stack):
            stack["driver"] = "535.104"
    """


def pytest_servecert_certificate(
    config: pytest.Config, certificate: MutableMapping[str, Any]
) -> None:
    """Change the certificate dictionary just before it is validated and written."""


def pytest_servecert_claim_result(config: pytest.Config, result: Any) -> None:
    """Called once for every ``ClaimResult`` a certification test produced."""
