"""The public surface of ``pytest_servecert.serving`` is what ``__all__`` says."""

from __future__ import annotations

import subprocess
import sys

from pytest_servecert import serving


def test_all_names_resolve() -> None:
    for name in serving.__all__:
        assert getattr(serving, name) is not None
    assert serving.__all__ == sorted(serving.__all__)


def test_importing_the_package_is_light() -> None:
    code = "import sys, pytest_servecert.serving; print('httpx' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
