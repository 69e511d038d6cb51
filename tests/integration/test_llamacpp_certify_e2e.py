"""Layer 5 end to end on real llama.cpp servers: an f16 vs q4_0 KV-cache certification.

The quantized-KV contrast that vLLM on a CPU without AVX-512/AMX can only report NOT RUN is
measured here: every cell has pairs. The store, judges and claims are the main job's; only the
engine differs. Small prompt counts keep it inside CI's budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_servecert.config import load_config
from pytest_servecert.report.certificate import (
    certificate_dict,
    load_certificate,
    write_certificate,
)
from pytest_servecert.runner import certify
from pytest_servecert.serving.llamacpp import REQUEST_HANDLING

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("llamacpp")]

CONFIG = """
[servecert]
store = "store.sqlite"
report_dir = "reports"
aa_arm = true

[model]
name = "servecert-tiny"
path = "embedded:target"

[engine]
name = "llamacpp"
start_timeout_s = 300
max_live_servers = 1

[arms.baseline]
kv_cache_dtype = "f16"

[arms.q4_0_kv]
kv_cache_dtype = "q4_0"

[design]
kind = "star"
[design.axes]
batch_size = [1, 4]
temperature = [0.0, 0.7]

[sampling]
prompts_per_cell = {n}
max_tokens = 24

[batteries]
use = ["jbb_harmful", "xstest"]
offline_dirs = [{battery_dir}]
allow_download = false

# this test exercises the llama.cpp engine; layer 1 against humans has its own tests
[judges.calibration]
corpus = "none"
"""


def test_f16_vs_q4_0_kv_certification_is_measured_end_to_end(
    tmp_path: Path, battery_dir: Path
) -> None:
    path = tmp_path / "servecert.toml"
    path.write_text(CONFIG.format(n=6, battery_dir=json.dumps(str(battery_dir))))
    config = load_config(path)
    run = certify(config)

    # 3 arms (baseline, q4_0, A/A) x 3 contexts x 2 batteries x 6 prompts, and the A/A arm
    # draws its T = 0.7 context [sampling] aa_replicates = 3 times (2 more draws)
    assert run.counts.requests_planned == 3 * 3 * 2 * 6 + 2 * 2 * 6
    assert run.counts.requests_sent == run.counts.requests_planned
    assert run.counts.request_errors == 0
    # batch size and temperature are client-side: one server per arm
    assert run.counts.boots == 3 and run.counts.failed_boots == 0
    assert {s.status for s in run.servers} == {"served"}
    assert run.model["path"].endswith(".f32.gguf")
    assert run.model["parameters"] > 0

    cells = run.cells["q4_0_kv"]
    assert len(cells) == 3 * 2
    assert all(c.status.value == "measured" for c in cells)
    assert all(c.n + c.unjudgeable == 6 for c in cells)
    for server in run.servers:
        extra = server.stack["extra"]
        assert extra["llamacpp.requests"] == REQUEST_HANDLING
        assert extra["llamacpp.system_info"] not in ("", "absent")
        assert server.stack["engine_version"].startswith("llama-cpp-python ")
    q4 = next(s for s in run.servers if s.arm == "q4_0_kv")
    assert q4.stack["server_argv"][-4:] == ["--type_k", "2", "--type_v", "2"]
    assert dict(q4.settings) == {"kv_cache_dtype": "q4_0"}

    verdicts = {r.id: r.verdict.value for r in run.results}
    measured = {"CERTIFIED", "MONITOR", "FAIL", "INCONCLUSIVE"}
    assert verdicts["L5.harmful_core[q4_0_kv]"] in measured
    assert verdicts["L5.holm[q4_0_kv]"] in measured
    assert verdicts["L4.scale_band"] == "SCAFFOLDED-ONLY"

    cert = load_certificate(write_certificate(certificate_dict(run), tmp_path / "reports"))
    assert cert["spec"]["engine"] == "llamacpp"
    assert not cert["not_run"]
    assert {a["name"] for a in cert["arms"]} == {"baseline", "q4_0_kv", "baseline~aa"}

    again = certify(config)  # resumes from the store: nothing sent, nothing booted
    assert again.counts.requests_sent == 0 and again.counts.boots == 0
    assert again.counts.responses_reused == run.counts.requests_planned
