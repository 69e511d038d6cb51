"""Fixtures of the report tests: a certificate built in memory (see ``sample_certificate``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sample_certificate import build_certificate


@pytest.fixture
def certificate(tmp_path: Path) -> dict[str, Any]:
    return build_certificate(tmp_path)


@pytest.fixture
def certificate_file(tmp_path: Path, certificate: dict[str, Any]) -> Path:
    path = tmp_path / "certificate-test.json"
    path.write_text(json.dumps(certificate, indent=2))
    return path
