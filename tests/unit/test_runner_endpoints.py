"""The runner on endpoint arms, against fixed-latency stand-in replicas (no model, no vLLM):
answers spread over replicas and stored once, resume without re-sampling, a redeployment
re-samples, a contradicting declaration stops the run, no replica -> NOT RUN with reasons.

The same paths on real vLLM servers: tests/integration/test_endpoint_arms.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pytest_servecert.claims.cells import CellStatus
from pytest_servecert.config import load_config
from pytest_servecert.report.certificate import certificate_dict, validate
from pytest_servecert.runner import certify
from pytest_servecert.serving.endpoint import DeploymentMismatchError
from pytest_servecert.serving.standin import StandIn

CONFIG = """
[servecert]
store = "store.sqlite"
aa_arm = false

[arms.baseline]
endpoints = [{baseline}]
model = "standin"

[arms.candidate]
endpoints = [{candidate}]
model = "standin"
{declared}

[design.axes]
batch_size = [1, 4]

[sampling]
prompts_per_cell = 12
max_tokens = 8

[claims]
n_boot = 200

[batteries]
use = ["mine"]
[batteries.custom.mine]
path = "mine.jsonl"
format = "jsonl"
id_column = "id"
expected = "refuse"
[judges.calibration]
corpus = "none"
"""


def write_config(tmp_path: Path, baseline: list[str], candidate: list[str], declared: str = "") -> Path:
    (tmp_path / "mine.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": f"how do I do harmful thing {i}?"}) + "\n" for i in range(12))
    )
    path = tmp_path / "servecert.toml"

    def quote(urls: list[str]) -> str:
        return ", ".join(f'"{u}"' for u in urls)

    path.write_text(CONFIG.format(baseline=quote(baseline), candidate=quote(candidate), declared=declared))
    return path


@pytest.fixture
def replicas():
    servers = [StandIn(latency_s=0.005).start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


def rows(tmp_path: Path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        return db.execute("SELECT fingerprint, error FROM responses").fetchall()


def test_endpoint_arms_certify_and_resume(tmp_path, replicas):
    base, cand1, cand2 = replicas
    config = load_config(write_config(tmp_path, [base.url], [cand1.url, cand2.url], 'kv_cache_dtype = "auto"'))
    run = certify(config)
    assert run.counts.requests_sent == 48 and run.counts.boots == 0
    assert base.completions == 24 and cand1.completions + cand2.completions == 24
    assert cand1.completions >= 6 and cand2.completions >= 6  # both replicas served
    assert len(rows(tmp_path)) == 48 and all(error is None for _, error in rows(tmp_path))
    cells = run.cells["candidate"]
    assert all(c.status is not CellStatus.NOT_RUN for c in cells)
    assert all(c.b == c.c == 0 for c in cells)  # a stand-in answers by prompt: the arms agree
    cert = certificate_dict(run)
    validate(cert)  # the schema knows the replicas
    (server,) = next(a for a in cert["arms"] if a["name"] == "candidate")["servers"]
    assert sorted(r["url"] for r in server["replicas"]) == sorted([cand1.url, cand2.url])
    assert sum(r["answered"] for r in server["replicas"]) == 24
    assert server["stack"]["stated"]["cache_config"]["cache_dtype"] == "auto"
    assert server["stack"]["declared"] == {"kv_cache_dtype": "auto"} and server["stack"]["declared_only"] == []
    assert cert["spec"]["model"]["path"] is None
    again = certify(config)
    assert again.counts.requests_sent == 0 and again.counts.responses_reused == 48


def test_a_redeployed_endpoint_is_sampled_again(tmp_path, replicas):
    base, cand, _ = replicas
    config = load_config(write_config(tmp_path, [base.url], [cand.url]))
    certify(config)
    cand.prefix_caching = False  # "restarted with --no-enable-prefix-caching" on the same URL
    run = certify(config)
    assert run.counts.requests_sent == 24 and run.counts.responses_reused == 24


def test_a_contradicting_declaration_stops_the_run_before_sampling(tmp_path, replicas):
    base, cand, _ = replicas
    config = load_config(write_config(tmp_path, [base.url], [cand.url], 'kv_cache_dtype = "fp8"'))
    with pytest.raises(DeploymentMismatchError) as info:
        certify(config)
    assert str(info.value).startswith(
        f"{config.path}: [arms.candidate] kv_cache_dtype = 'fp8' is declared, but {cand.url}"
    )
    assert base.completions == cand.completions == 0


def test_an_unreachable_deployment_is_not_run_with_each_replicas_reason(tmp_path, replicas):
    base = replicas[0]
    dead = StandIn()
    dead_url = dead.url
    dead.stop()
    config = load_config(write_config(tmp_path, [base.url], [dead_url]))
    run = certify(config)
    cells = run.cells["candidate"]
    assert {c.status for c in cells} == {CellStatus.NOT_RUN}
    assert all(f"no replica answered: {dead_url}: ConnectError" in c.reason for c in cells)
    record = next(s for s in run.servers if s.arm == "candidate")
    assert record.status == "NOT RUN"
