"""The HTML report in headless Chromium (Debian ``chromium``): it renders, and a ``<script>`` or
``<img onerror>`` in a model answer shows as text and never runs.

Chromium is installed by the test command (``.ci/ensure-chromium`` in tox's ``commands_pre``);
when it is missing these tests fail, they never skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pytest_servecert.report.html import write_html

ROOT = Path(__file__).resolve().parents[2]
#: Kept after the run (reports/ is gitignored): the screenshot a reviewer can open.
SCREENSHOT = ROOT / "reports" / "test-report-screenshot.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(tmp_path: Path, *args: str) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium not found: run .ci/ensure-chromium (tox -e tests does)", pytrace=False)
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def page(certificate: dict[str, Any], tmp_path: Path) -> Path:
    return write_html(certificate, tmp_path / "report.html")


def test_page_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1280,2000", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri())
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    pixels = list(image.getdata())
    non_white = sum(1 for p in pixels if min(p) < 235)
    assert non_white / len(pixels) > 0.02  # text, tables, the badge, the plots
    assert len(set(pixels[:: 7])) > 50  # not a flat page: colours of the verdicts and plots
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)


def test_script_in_a_response_is_text_and_does_not_run(page: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert "<title>servecert report · servecert-tiny · PARTIAL</title>" in dom
    assert "PWNED" not in dom.split("<body", 1)[0]  # document.title was not set
    assert 'data-pwned="1"' not in dom  # the body attribute the script would set
    assert "<script" not in dom and "<img src=\"x\"" not in dom
    # the payload is in the page, as text inside the answer's <pre>
    assert "&lt;script&gt;document.title='PWNED';document.body.setAttribute('data-pwned','1')&lt;/script&gt;" in dom
    assert "&lt;img src=x onerror=\"document.title='PWNED-IMG'\"&gt;" in dom


def test_control_unescaped_payload_does_run(tmp_path: Path) -> None:
    """The check above can fail: the same payload, unescaped, runs in this Chromium."""
    from sample_certificate import SCRIPT

    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{SCRIPT}</body></html>")
    dom = chromium(tmp_path, "--dump-dom", control.as_uri())
    assert "<title>PWNED</title>" in dom and 'data-pwned="1"' in dom
