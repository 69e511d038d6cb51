"""The HTML report rendered from a certificate: sections, figures, and escaping of untrusted text."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from sample_certificate import IMG, SCRIPT, build_certificate

from pytest_servecert.report.html import render_html, write_report

PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def test_sections_and_figures(certificate: dict[str, Any]) -> None:
    page = render_html(certificate)
    for anchor in ("summary", "ladder", "figures", "cells", "judges", "arms", "examples"):
        assert f'id="{anchor}"' in page
    # ladder grouped by layer, tiers and verdicts shown
    assert (page.index("Layer 2 · behavioural screens") < page.index("Layer 4 · scale")
            < page.index("Layer 5 · serving-state"))
    assert "L5.harmful_core[spec_draft]" in page and "Forbidden" in page
    # NOT RUN reason grouped once with its 6 cells
    assert page.count("FP8 KV cache on CPU requires x86 with AVX-512 or AMX") >= 1
    assert re.search(r"<td>server did not start: FP8 KV cache[^<]*</td><td class=\"num\">6</td>", page)
    # forest + interaction for the measured candidate only; fp8 has nothing to draw
    images = PNG.findall(page)
    assert len(images) == 2
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "No measured cell: nothing to plot." in page
    # stack identity per arm
    assert "engine_version" in page and "2.13.0+cpu" in page and "baseline~aa" in page
    # self-contained: no external resource, no script at all
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<script" not in page.lower()


def test_single_judge_says_so_instead_of_a_matrix(certificate: dict[str, Any]) -> None:
    page = render_html(certificate)
    assert "single judge (regex)" in page
    assert "judge agreement matrix" not in page


def test_agreement_matrix_with_three_judges(tmp_path: Path) -> None:
    page = render_html(build_certificate(tmp_path, judges=3))
    assert 'alt="judge agreement matrix"' in page
    assert len(PNG.findall(page)) == 3
    # three pairs in the table, κ printed
    assert page.count("<td class=\"num\">40</td>") >= 3


def test_untrusted_text_is_escaped(certificate: dict[str, Any]) -> None:
    page = render_html(certificate)
    assert SCRIPT not in page and IMG not in page
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;" in page
    assert "&lt;img src=x onerror=&#34;document.title=&#39;PWNED-IMG&#39;&#34;&gt;" in page
    assert "onerror=" not in page.replace("onerror=&#34;", "")


def test_escaping_covers_every_field(tmp_path: Path) -> None:
    """Names and reasons come from configs and servers: escaped too, not only model output."""
    certificate = build_certificate(tmp_path)
    certificate["not_run"][0]["reason"] = "<b>boom</b>"
    certificate["arms"][0]["servers"][0]["stack"]["driver"] = "<i>550</i>"
    certificate["licensable"]["spec_draft"] = "<u>sentence</u>"
    page = render_html(certificate)
    for raw in ("<b>boom</b>", "<i>550</i>", "<u>sentence</u>"):
        assert raw not in page
    assert "&lt;b&gt;boom&lt;/b&gt;" in page and "&lt;u&gt;sentence&lt;/u&gt;" in page


def test_failing_certificate_shows_the_breach(tmp_path: Path) -> None:
    page = render_html(build_certificate(tmp_path, degraded=2))  # b = 2 > A/A floor 1
    assert 'class="badge s-fail">FAIL<' in page
    assert "No layer-5 certificate" in page
    assert "candidate degraded" in page


def test_write_report_writes_run_and_latest(certificate: dict[str, Any], tmp_path: Path) -> None:
    path = write_report(certificate, tmp_path / "reports")
    assert path.name == "report-abcdef012345.html"
    assert (tmp_path / "reports" / "report-latest.html").read_bytes() == path.read_bytes()
    assert not list((tmp_path / "reports").glob("*.tmp"))


@pytest.mark.parametrize("missing", ["examples", "judge_agreement"])
def test_certificates_without_optional_evidence_render(certificate: dict[str, Any], missing: str) -> None:
    if missing == "examples":
        for cell in certificate["cells"]:
            cell.pop("examples")
        assert "No discordant pair was recorded" in render_html(certificate)
    else:
        certificate.pop(missing)
        assert "single judge" in render_html(certificate)
