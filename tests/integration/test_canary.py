"""The production canary against real vLLM servers the test starts itself (loopback, servecert-tiny).

A certification of a deployment (both arms endpoint arms of one vLLM server), then:

* ``servecert canary`` against the same, unchanged deployment: no alarm (exit 0 under the report
  policy), one row in the series, the Prometheus textfile parses back;
* the deployment restarted with ``--no-enable-prefix-caching``: ``canary.stack_drift`` FAILs,
  naming the prefix-caching field, and says to re-certify.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_servecert import cli
from pytest_servecert.claims.model import Verdict
from pytest_servecert.config import load_config
from pytest_servecert.run.canary import run_canary
from pytest_servecert.runner import certify
from pytest_servecert.serving import ServerSpec, VLLMServer
from pytest_servecert.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vllm")]

ENGINE_ARGS = ["--enforce-eager", "--dtype", "float32", "--max-model-len", "512",
               "--kv-cache-memory-bytes", "67108864", "--seed", "0"]

CONFIG = """
[servecert]
store = "store.sqlite"
report_dir = "reports"
aa_arm = false

[model]
name = "servecert-tiny"

[arms.baseline]
endpoints = ["{url}"]
model = "servecert-tiny"
[arms.candidate]
endpoints = ["{url}"]
model = "servecert-tiny"

[design.axes]
batch_size = [1]

[sampling]
prompts_per_cell = 8
max_tokens = 24

[batteries]
use = ["jbb_harmful", "jbb_benign"]
offline_dirs = [{battery_dir!r}]
allow_download = false

[claims]
n_boot = 200

[judges.calibration]
corpus = "none"

[canary]
harmful_prompts = 8
benign_prompts = 8
"""


def write(tmp_path: Path, battery_dir: Path, url: str) -> Path:
    path = tmp_path / "servecert.toml"
    path.write_text(CONFIG.format(url=url, battery_dir=str(battery_dir)))
    return path


def start(target_model: Path, *args: str, label: str) -> VLLMServer:
    spec = ServerSpec("vllm", str(target_model), args=(*ENGINE_ARGS, *args), label=label,
                      served_model_name="servecert-tiny")
    return VLLMServer(spec, start_timeout_s=420).start()


def test_canary_unchanged_then_redeployed(tmp_path, battery_dir, target_model, capsys):
    server = start(target_model, label="deployed")
    try:
        config_path = write(tmp_path, battery_dir, f"{server.base_url}/v1")
        certified = certify(load_config(config_path))
        status = cli.main(["canary", "--servecert-config", str(config_path), "--reference", certified.run_id,
                           "--gate", "report"])
        out = capsys.readouterr().out
        assert status == 0, out
        assert "alarm: no" in out and "canary.stack_drift: CERTIFIED" in out
    finally:
        server.stop()
    config = load_config(config_path)
    with Store(config.store_path) as store:
        (first,) = store.canary_runs()
    assert not first.alarm and first.reference_run_id == certified.run_id
    assert first.figures["canary.harmful_core"]["n_pairs"] == 8  # every canary answer paired
    families = {f.name: f for f in text_string_to_metric_families((tmp_path / "reports" /
                                                                   "servecert_canary.prom").read_text())}
    alarms = {s.labels["claim"]: s.value for s in families["servecert_canary_alarm"].samples}
    assert alarms["canary.harmful_core"] == alarms["canary.stack_drift"] == 0

    moved = start(target_model, "--no-enable-prefix-caching", label="redeployed")
    try:
        config = load_config(write(tmp_path, battery_dir, f"{moved.base_url}/v1"))
        run = run_canary(config, reference=certified.run_id)
    finally:
        moved.stop()
    drift = next(r for r in run.results if r.claim.id == "canary.stack_drift")
    assert drift.verdict is Verdict.FAIL, drift.headline
    assert any("enable_prefix_caching" in field for field in drift.figures["changed"]), drift.figures
    assert "re-certify; re-run layer 3" in drift.reason
    assert run.alarm
    with Store(config.store_path) as store:
        series = store.canary_runs()
    assert [s.alarm for s in series] == [False, True]
    assert json.dumps(series[1].figures["canary.stack_drift"]["changed"])
