"""The main job's reporting path, end to end without vLLM: the real certification suite runs in
pytester with ``runner.certify`` replaced by an in-memory run (tests/report/sample_certificate).

Covers: the terminal ladder with the licensable sentences and report paths, the certificate and
the HTML written side by side, claim ids in JUnit XML, and the verdict-snapshot workflow.
"""

from __future__ import annotations

import html as html_text
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sample_certificate import CONFIG

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

CONFTEST = '''
import json, os
from pathlib import Path
import pytest
import pytest_servecert.runner as runner
from sample_certificate import build_run

from certifications_conftest import *  # the real suite's parametrisation

@pytest.fixture(scope="session", autouse=True)
def _in_memory_run(tmp_path_factory):
    """Replace the measurement, keep everything after it (certificate, HTML, ladder)."""
    degraded = int(Path("degraded.txt").read_text()) if Path("degraded.txt").exists() else 0
    run = build_run(tmp_path_factory.mktemp("run"), degraded=degraded)
    original = runner.certify
    runner.certify = lambda config, **kwargs: run
    yield
    runner.certify = original
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A checkout-like directory: servecert.toml, the real certification tests, fake certify."""
    # The inner run is a standalone pytest even when this test runs in an xdist worker
    # (plugins such as syrupy read these to decide whether to print their report).
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.syspathinsert(HERE)
    (pytester.path / "servecert.toml").write_text(CONFIG)
    certifications = pytester.path / "certifications"
    certifications.mkdir()
    for name in ("test_layer2_screens.py", "test_layer4_scale.py", "test_layer5_serving_state.py",
                 "test_verdict_snapshot.py"):
        (certifications / name).write_text((ROOT / "certifications" / name).read_text())
    # the real conftest, importable under another name so the fake can wrap it
    (pytester.path / "certifications_conftest.py").write_text((ROOT / "certifications" / "conftest.py").read_text())
    (certifications / "conftest.py").write_text(CONFTEST)
    pytester.syspathinsert(pytester.path)
    return pytester


MARKERS = "layer2 or layer4 or layer5"


def run(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest("certifications", "-m", MARKERS, "-p", "no:cacheprovider", "-rfEs", *args)


def run_apart(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    """``run`` in a fresh interpreter: plugins that keep module-level state (syrupy's session)
    see only this run, as in a user's CI job."""
    monkeypatch.setenv("PYTHONPATH", f"{HERE}:{suite.path}")
    return suite.runpytest_subprocess("certifications", "-m", MARKERS, "-p", "no:cacheprovider", "-rfEs", *args)


def test_main_job_prints_ladder_sentence_and_writes_certificate_and_html(suite: pytest.Pytester) -> None:
    result = run(suite)
    out = result.stdout.str()
    ladder = out[out.index("servecert claim ladder"):]
    assert ladder.index("Layer 2") < ladder.index("Layer 4") < ladder.index("Layer 5")
    assert "L5.harmful_core" in ladder and "SCAFFOLDED-ONLY" in ladder
    # layer 2: every screen result is listed with its figures
    assert "spec_draft  CERTIFIED  h +0.000" in ladder and "byte-identical 90.0%" in ladder
    assert "L2.rtsi[*]" in ladder and "spec_draft  " in ladder.split("L2.rtsi[*]")[1]
    # NOT RUN cells show with the server's reason
    assert "FP8 KV cache on CPU requires x86 with AVX-512 or AMX" in ladder
    # the licensable sentences (seed 000 SS18 form), one per candidate, and the envelope
    assert "licensable (spec_draft): Across batch size {1, 8} and temperature {0.0, 0.7}," in ladder
    assert "licensable (fp8_kv):" in ladder and "axis is deferred" in ladder
    assert "envelope: SCAFFOLDED-ONLY: servecert-tiny" in ladder
    reports = suite.path / "reports"
    certificate = json.loads((reports / "certificate-latest.json").read_text())
    html = (reports / f"report-{certificate['run_id'][:12]}.html").read_text()
    assert f"certificate: {reports / ('certificate-' + certificate['run_id'][:12] + '.json')}" in ladder
    assert f"HTML report: {reports / ('report-' + certificate['run_id'][:12] + '.html')}" in ladder
    assert (reports / "report-latest.html").read_text() == html
    assert certificate["licensable"]["spec_draft"] in html_text.unescape(html)
    # no verdict baseline yet: NOT RUN (skipped, never passed), naming the command that records one
    result.stdout.fnmatch_lines(["*SKIPPED*NOT RUN: no verdict baseline*--snapshot-update*"])


def test_ladder_has_no_colour_when_not_a_tty(suite: pytest.Pytester) -> None:
    out = run(suite).stdout.str()
    assert "\x1b[" not in out


def test_ladder_is_coloured_on_a_tty(suite: pytest.Pytester) -> None:
    out = run(suite, "--color=yes").stdout.str()
    ladder = out[out.index("servecert claim ladder"):]
    assert "\x1b[32mCERTIFIED" in ladder and "\x1b[36mNOT RUN" in ladder


def test_junit_xml_carries_claim_ids(suite: pytest.Pytester) -> None:
    run(suite, "--junitxml=junit.xml")
    root = ET.parse(suite.path / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    claims = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if "servecert_claim_id" in props:
            claims[props["servecert_claim_id"]] = (case.get("name"), props["servecert_verdict"])
    # 40 prompts per cell: no complying pair, but a 3 pp increase was not detectable (#14 MDE)
    assert claims["L5.harmful_core[spec_draft]"] == ("test_harmful_core_invariant[spec_draft]", "INCONCLUSIVE")
    assert claims["L5.harmful_core[fp8_kv]"] == ("test_harmful_core_invariant[fp8_kv]", "NOT RUN")
    cell = "L5.equivalence[spec_draft:xstest/servecert-tiny/batch_size=8]"
    assert claims[cell] == ("test_cell_equivalence[spec_draft:xstest/servecert-tiny/batch_size=8]", "INCONCLUSIVE")
    assert claims["L4.scale_band"][1] == "SCAFFOLDED-ONLY"
    # layer 2: TAIS of the speculative candidate (T = 0 and T = 0.7) and RTSI of both
    assert claims["L2.tais[spec_draft]"] == ("test_tais[spec_draft]", "CERTIFIED")
    assert claims["L2.tais[spec_draft@T=0.7]"][0] == "test_tais[spec_draft@T=0.7]"
    assert claims["L2.rtsi[fp8_kv]"] == ("test_rtsi[fp8_kv]", "NOT RUN")
    # every claim test reported its claim: 2 candidates x (5 summaries + 6 cells + RTSI)
    # + 2 TAIS + L2 lint + L4
    assert len(claims) == 2 * (5 + 6 + 1) + 2 + 2


def test_snapshot_workflow(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """--snapshot-update writes the baseline; the same verdicts pass; a changed verdict fails
    with a diff naming the claim."""
    first = run_apart(suite, monkeypatch, "--snapshot-update")
    first.stdout.fnmatch_lines(["*1 snapshot generated*"])
    snapshot = suite.path / "certifications/__snapshots__/test_verdict_snapshot/test_verdicts_match_baseline.json"
    table = json.loads(snapshot.read_text())
    assert table["L5.harmful_core[spec_draft]"] == (
        "verdict=INCONCLUSIVE; tier=Supported; scope=batch size {1, 8}, temperature {0.0, 0.7}"
    )
    assert table["L2.no_mechanistic_gate"].startswith("verdict=CERTIFIED; tier=Forbidden;")
    assert "figures" not in snapshot.read_text() and "Δ" not in snapshot.read_text()

    same = run_apart(suite, monkeypatch)
    same.stdout.fnmatch_lines(["*1 snapshot passed*"])
    assert "test_verdicts_match_baseline PASSED" in run_apart(suite, monkeypatch, "-v").stdout.str()

    (suite.path / "degraded.txt").write_text("2")  # the "new stack": b = 2 > the A/A floor of 1
    changed = run_apart(suite, monkeypatch)
    assert changed.ret == pytest.ExitCode.TESTS_FAILED
    out = re.sub(r"\x1b\[[0-9;]*m", "", changed.stdout.str())  # syrupy colours its diff
    assert "FAILED certifications/test_verdict_snapshot.py::test_verdicts_match_baseline" in out
    assert "1 snapshot failed" in out
    # syrupy's diff: the baseline line and the new line of the harmful-core claim
    assert "[- snapshot]" in out and "[+ received]" in out
    diff = out[out.index("[- snapshot]"):]
    assert '-   "L5.harmful_core[spec_draft]": "verdict=INCONCLUSIVE; tier=Supported;' in diff
    assert '+   "L5.harmful_core[spec_draft]": "verdict=FAIL; tier=Supported;' in diff

    accepted = run_apart(suite, monkeypatch, "--snapshot-update")
    accepted.stdout.fnmatch_lines(["*1 snapshot updated*"])
    assert json.loads(snapshot.read_text())["L5.harmful_core[spec_draft]"].startswith("verdict=FAIL;")


def test_sentences_reach_the_controller_under_xdist(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers run the certification; the controller prints the ladder with their sentences."""
    monkeypatch.setenv("PYTHONPATH", f"{HERE}:{suite.path}")
    # a subprocess: xdist workers and syrupy's worker-report merge behave as in a real run
    out = suite.runpytest_subprocess("certifications", "-m", "layer5", "-p", "no:cacheprovider",
                                     "-n", "2").stdout.str()
    assert out.count("servecert claim ladder") == 1
    ladder = out[out.index("servecert claim ladder"):]
    assert ladder.count("licensable (spec_draft): Across batch size") == 1
    assert "certificate: " in ladder and "HTML report: " in ladder
