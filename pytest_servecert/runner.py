"""The layer-5 runner's public entry points (kept for existing callers).

The run itself lives in :mod:`pytest_servecert.run` (one module per phase).
"""

from __future__ import annotations

from .run import (
    CertificationRun,
    DiscordantPair,
    RunCounts,
    ServerRecord,
    certify,
    parameter_count,
    resolve_model,
    resolve_served_model,
)

__all__ = [
    "CertificationRun",
    "DiscordantPair",
    "RunCounts",
    "ServerRecord",
    "certify",
    "parameter_count",
    "resolve_model",
    "resolve_served_model",
]
