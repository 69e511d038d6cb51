"""Endpoint arms on real vLLM servers the test starts itself (loopback, servecert-tiny).

* greedy answers through endpoint arms equal the booted run of the same configuration;
* a declared axis that /metrics contradicts is refused before anything is sent;
* one of two replicas is SIGKILLed mid-run: the run completes on the other, nothing lost or
  duplicated, and the certificate says which replica left and why;
* an unreachable endpoint is NOT RUN with its reason;
* a redeployment (other flags on the same URL) is sampled again instead of reused.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_servecert.claims.cells import CellStatus
from pytest_servecert.config import load_config
from pytest_servecert.report.certificate import certificate_dict
from pytest_servecert.runner import certify
from pytest_servecert.serving import ServerSpec, VLLMServer
from pytest_servecert.serving import engine as engine_module
from pytest_servecert.serving.endpoint import DeploymentMismatchError, deployment_identity

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vllm")]

ENGINE_ARGS = ["--enforce-eager", "--dtype", "float32", "--max-model-len", "512",
               "--kv-cache-memory-bytes", "67108864", "--seed", "0"]
NO_PREFIX = ["--no-enable-prefix-caching"]

CONFIG = """
[servecert]
store = "store.sqlite"
aa_arm = false

[model]
name = "servecert-tiny"
{model_path}

[engine]
args = {engine_args}
max_live_servers = 1

{arms}

[design.axes]
batch_size = [1, 4]

[sampling]
prompts_per_cell = {n}
max_tokens = 24

[batteries]
use = ["jbb_harmful", "jbb_benign"]
offline_dirs = [{battery_dir!r}]
allow_download = false

[claims]
n_boot = 500

# layer 1 against humans has its own test (test_layer1_calibrated.py)
[judges.calibration]
corpus = "none"
"""

BOOTED_ARMS = """
[arms.baseline]
[arms.candidate]
prefix_caching = false
"""


def endpoint_arms(baseline: list[str], candidate: list[str], declared: str = "prefix_caching = false") -> str:

    def quote(urls: list[str]) -> str:
        return json.dumps(urls)

    return (
        f'[arms.baseline]\nendpoints = {quote(baseline)}\nmodel = "servecert-tiny"\n'
        f'[arms.candidate]\nendpoints = {quote(candidate)}\nmodel = "servecert-tiny"\n{declared}\n'
    )


def write(tmp_path: Path, battery_dir: Path, arms: str, *, n: int = 6, booted: bool = False) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "servecert.toml"
    path.write_text(CONFIG.format(
        model_path='path = "embedded:target"' if booted else "", engine_args=json.dumps(ENGINE_ARGS),
        arms=arms, n=n, battery_dir=str(battery_dir),
    ))
    return path


def answers(store: Path) -> dict[tuple[str, str, str], str]:
    """(arm, context, battery/prompt) -> text, with the arm told apart by the certificate order."""
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT arm_fingerprint, context, battery, prompt_id, text, error FROM responses").fetchall()
    assert all(error is None for *_, error in rows)
    return {(arm, ctx, f"{b}/{p}"): text for arm, ctx, b, p, text, _ in rows}


def by_role(run, store: Path) -> dict[tuple[str, str, str], str]:
    names = {s.spec_fingerprint: s.arm for s in run.servers}
    return {(names[arm], ctx, key): text for (arm, ctx, key), text in answers(store).items()}


def start(target_model: Path, *args: str, label: str = "") -> VLLMServer:
    spec = ServerSpec("vllm", str(target_model), args=(*ENGINE_ARGS, *args), label=label,
                      served_model_name="servecert-tiny")
    return VLLMServer(spec, start_timeout_s=420).start()


@pytest.fixture(scope="module")
def deployments(target_model: Path) -> Iterator[dict[str, VLLMServer]]:
    """The baseline deployment (vLLM defaults) and a candidate without prefix caching."""
    servers: dict[str, VLLMServer] = {}
    try:
        servers["baseline"] = start(target_model, label="deployed-baseline")
        servers["candidate"] = start(target_model, *NO_PREFIX, label="deployed-candidate")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def test_endpoint_answers_equal_the_booted_run_at_t0(tmp_path, battery_dir, deployments):
    booted = certify(load_config(write(tmp_path / "booted", battery_dir, BOOTED_ARMS, booted=True)))
    urls = {k: f"{s.base_url}/v1" for k, s in deployments.items()}
    config = load_config(write(tmp_path / "endpoints", battery_dir,
                               endpoint_arms([urls["baseline"]], [urls["candidate"]])))
    deployed = certify(config)
    assert deployed.counts.boots == 0 and deployed.counts.requests_sent == booted.counts.requests_sent == 2 * 2 * 12
    booted_answers = by_role(booted, tmp_path / "booted" / "store.sqlite")
    deployed_answers = by_role(deployed, tmp_path / "endpoints" / "store.sqlite")
    center = {k: v for k, v in booted_answers.items() if k[1] == "baseline"}  # batch 1: deterministic
    assert center and {k: deployed_answers[k] for k in center} == center
    for candidate in ("candidate",):
        got = [(c.battery, c.context, c.a, c.b, c.c, c.d) for c in deployed.cells[candidate] if c.context == "baseline"]
        want = [(c.battery, c.context, c.a, c.b, c.c, c.d) for c in booted.cells[candidate] if c.context == "baseline"]
        assert got == want
    cert = certificate_dict(deployed)
    stack = next(a for a in cert["arms"] if a["name"] == "candidate")["servers"][0]["stack"]
    assert stack["stated"]["cache_config"]["enable_prefix_caching"] == "False"
    assert stack["stated"]["version"].startswith("0.")
    assert stack["declared"] == {"prefix_caching": False} and stack["declared_only"] == []


def test_a_declared_axis_that_metrics_contradicts_is_refused(tmp_path, battery_dir, deployments):
    urls = {k: f"{s.base_url}/v1" for k, s in deployments.items()}
    for declared, says in (("prefix_caching = true", "enable_prefix_caching=False"),
                           ('kv_cache_dtype = "fp8"', "cache_dtype='auto'")):
        config = load_config(write(tmp_path / declared[:6], battery_dir,
                                   endpoint_arms([urls["baseline"]], [urls["candidate"]], declared)))
        with pytest.raises(DeploymentMismatchError, match=says):
            certify(config)
        assert (not (tmp_path / declared[:6] / "store.sqlite").exists()
                or not answers(tmp_path / declared[:6] / "store.sqlite"))


def test_an_unreachable_endpoint_is_not_run_with_its_reason(tmp_path, battery_dir, deployments):
    nowhere = f"http://127.0.0.1:{engine_module.free_port()}/v1"
    config = load_config(write(tmp_path, battery_dir,
                               endpoint_arms([f"{deployments['baseline'].base_url}/v1"], [nowhere])))
    run = certify(config)
    assert {c.status for c in run.cells["candidate"]} == {CellStatus.NOT_RUN}
    assert all(f"no replica answered: {nowhere}: ConnectError" in c.reason for c in run.cells["candidate"])


def test_a_replica_sigkilled_mid_run_leaves_the_other_to_finish(
    tmp_path, battery_dir, deployments, target_model, serving
):
    spare = start(target_model, *NO_PREFIX, label="deployed-candidate-2")
    try:
        urls = [f"{deployments['candidate'].base_url}/v1", f"{spare.base_url}/v1"]
        config = load_config(write(tmp_path, battery_dir,
                                   endpoint_arms([f"{deployments['baseline'].base_url}/v1"], urls), n=20))
        killed = threading.Event()

        def kill_once_it_has_served() -> None:
            # the spare's own counter says it has answered (twice: the first answer is then surely
            # received): kill its process group mid-run
            deadline = time.monotonic() + 300
            while serving.metric(spare, "vllm:request_success_total") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            os.killpg(spare.pid, signal.SIGKILL)

        def progress(message: str) -> None:
            # The candidate's first context has started: kill the spare once it has answered.
            if message.startswith("servecert: candidate") and not killed.is_set():
                killed.set()
                threading.Thread(target=kill_once_it_has_served, daemon=True).start()

        run = certify(config, progress=progress)
        assert killed.is_set() and not spare.alive()
        planned = 2 * 2 * 40
        with sqlite3.connect(config.store_path) as db:
            total, distinct, errors = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT fingerprint), COUNT(error) FROM responses").fetchone()
        assert total == distinct == planned and errors == 0  # nothing lost, nothing twice
        assert all(c.status is not CellStatus.NOT_RUN for c in run.cells["candidate"])
        record = next(s for s in run.servers if s.arm == "candidate")
        replicas = {r["url"]: r for r in record.replicas}
        assert "taken_out" in replicas[urls[1]] and "taken_out" not in replicas[urls[0]]
        assert replicas[urls[1]]["answered"] > 0  # it served before it died
        assert sum(r["answered"] for r in replicas.values()) >= 80
    finally:
        spare.stop()


def test_a_redeployed_endpoint_is_sampled_again(tmp_path, battery_dir, deployments, target_model, monkeypatch):
    first = start(target_model, label="redeploy-1")
    port = first.port
    try:
        config = load_config(write(tmp_path, battery_dir, endpoint_arms(
            [f"{deployments['baseline'].base_url}/v1"], [f"{first.base_url}/v1"], declared="")))
        before = certify(config)
        assert before.counts.requests_sent == 2 * 2 * 12
    finally:
        first.stop()
    monkeypatch.setattr(engine_module, "free_port", lambda host="127.0.0.1": port)  # same URL
    second = start(target_model, *NO_PREFIX, label="redeploy-2")
    try:
        assert second.port == port
        after = certify(config)
        assert after.counts.requests_sent == 2 * 12  # the candidate's answers, again
        assert after.counts.responses_reused == 2 * 12  # the baseline's
        stacks = {s.arm: s.stack_fingerprint for s in after.servers}
        assert stacks["candidate"] != next(s.stack_fingerprint for s in before.servers if s.arm == "candidate")
    finally:
        second.stop()


def test_speculative_decoding_is_read_from_the_metrics_of_a_real_server(target_model):
    """vLLM 0.32 creates the vllm:spec_decode_* counters only with --speculative-config, with one
    ..._num_accepted_tokens_per_pos position per speculative token (before any request)."""
    spec = {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3}
    server = start(target_model, "--speculative-config", json.dumps(spec), label="deployed-ngram")
    try:
        url = f"{server.base_url}/v1"
        ident = deployment_identity("ngram", model="servecert-tiny", endpoints=[url], settings={"speculative": spec})
        assert ident.stated["speculative"] == {"enabled": True, "num_speculative_tokens": 3}
        assert ident.declared_only == ("speculative.method", "speculative.prompt_lookup_max")
        with pytest.raises(DeploymentMismatchError, match="speculative = 'off' is declared"):
            deployment_identity("ngram", model="servecert-tiny", endpoints=[url], settings={"speculative": "off"})
        with pytest.raises(DeploymentMismatchError, match="reports 3 draft positions"):
            deployment_identity("ngram", model="servecert-tiny", endpoints=[url],
                                settings={"speculative": {**spec, "num_speculative_tokens": 2}})
    finally:
        server.stop()
