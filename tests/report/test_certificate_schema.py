"""Certificate schema versioning and ``servecert report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_servecert.cli import main
from pytest_servecert.report import certificate as cert_module
from pytest_servecert.report.certificate import (
    SCHEMA_VERSION,
    CertificateError,
    load_certificate,
    schema,
    validate,
)


def test_schema_file_is_versioned() -> None:
    data = schema()
    assert cert_module.SCHEMA_FILE == f"certificate.v{SCHEMA_VERSION}.schema.json"
    assert data["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    assert data["$id"].endswith(f"/v{SCHEMA_VERSION}")


def test_sample_certificate_is_valid_and_round_trips(certificate_file: Path) -> None:
    loaded = load_certificate(certificate_file)
    assert loaded["schema_version"] == SCHEMA_VERSION
    example = next(c for c in loaded["cells"] if c["examples"])["examples"][0]
    assert set(example) == {"prompt_id", "direction", "expected", "prompt", "baseline", "candidate"}


@pytest.mark.parametrize("version", [3, 0, "1", True, None])
def test_unknown_version_is_refused_in_one_line(certificate_file: Path, version: Any) -> None:
    data = json.loads(certificate_file.read_text())
    if version is None:
        data.pop("schema_version")
    else:
        data["schema_version"] = version
    certificate_file.write_text(json.dumps(data))
    with pytest.raises(CertificateError) as info:
        load_certificate(certificate_file)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{certificate_file}: ")
    assert "reads certificate schema versions 1 and 2 only" in message
    assert ("no schema_version" if version is None else f"schema_version = {version!r}") in message


def test_layer2_section_carries_the_screens(certificate: dict[str, Any]) -> None:
    tais = {t["id"]: t for t in certificate["layer2"]["tais"]}
    assert set(tais) == {"L2.tais[spec_draft]", "L2.tais[spec_draft@T=0.7]"}
    greedy = tais["L2.tais[spec_draft]"]
    assert greedy["n_pairs"] == 260 and greedy["byte_identity"] == pytest.approx(0.9)
    assert greedy["verdict"] == "CERTIFIED" and greedy["n_prompts"] == 130
    assert len(greedy["tost_interval_pp"]) == 2 and greedy["h"] is not None
    rtsi = {r["id"]: r for r in certificate["layer2"]["rtsi"]}
    assert rtsi["L2.rtsi[fp8_kv]"]["verdict"] == "NOT RUN"
    spec = rtsi["L2.rtsi[spec_draft]"]
    assert set(spec["features"]) == {"opening_tvd", "length_ks", "partial_shift", "lexical_js"}
    assert "greedy decoding only" in certificate["licensable"]["spec_draft"]


def test_a_version_1_certificate_is_still_read(certificate_file: Path) -> None:
    # migration note (report/certificate.py): version 2 only added `layer2`
    data = json.loads(certificate_file.read_text())
    data["schema_version"] = 1
    data.pop("layer2")
    certificate_file.write_text(json.dumps(data))
    assert load_certificate(certificate_file)["schema_version"] == 1
    data["schema_version"] = 2
    certificate_file.write_text(json.dumps(data))
    with pytest.raises(CertificateError, match="'layer2' is a required property"):
        load_certificate(certificate_file)


def test_schema_violation_names_the_field(certificate: dict[str, Any]) -> None:
    certificate["cells"][0]["status"] = "maybe"
    with pytest.raises(CertificateError, match=r"^certificate: cells/0/status: 'maybe' is not one of"):
        validate(certificate)


def test_cli_report_renders_html(certificate_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "page.html"
    assert main(["report", str(certificate_file), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert "Serving-state certificate: servecert-tiny" in out.read_text()
    # default output: beside the certificate
    assert main(["report", str(certificate_file)]) == 0
    assert certificate_file.with_suffix(".html").is_file()


def test_cli_report_refuses_unknown_version(certificate_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(certificate_file.read_text())
    data["schema_version"] = 99
    certificate_file.write_text(json.dumps(data))
    assert main(["report", str(certificate_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"servecert: error: {certificate_file}: schema_version = 99;")
    assert not certificate_file.with_suffix(".html").exists()


def test_cli_report_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: certificate not found" in capsys.readouterr().err
