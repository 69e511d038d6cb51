"""Judge outage (issue #15 items 2 and 9): the runner's judge phase against a stand-in judge
server that answers HTTP 500 to everything, then recovers.

A stand-in is used because the fault (a judge behind a broken gateway) cannot be produced by a
healthy vLLM; the answers are written into a real SQLite store by hand (no model server).

* ``on_judge_failure = "stop"`` (default): the run stops with one line naming the judge, its
  error share and the bound; the failed requests are not stored, the regex labels are.
* ``"inconclusive"``: the run goes on and records the failure for the claims.
* After the judge recovers, a re-run labels exactly the records that failed (none twice) and the
  cohort votes that were short of quorum become real votes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_servecert.batteries import Prompt
from pytest_servecert.config import load_config
from pytest_servecert.design import contexts, plan_arms
from pytest_servecert.judges.health import JudgeFailedError
from pytest_servecert.judges.llm import _LLMJudge
from pytest_servecert.run.judge import judge
from pytest_servecert.store import ResponseKey, SampledResponse, Store

CONFIG = """
[servecert]
store = "store.sqlite"
aa_arm = false
[arms.baseline]
[arms.cand]
kv_cache_dtype = "fp8"
[batteries]
use = ["jbb_harmful"]
[judges]
on_judge_failure = "{policy}"
[judges.cohort.regex]
kind = "regex"
[judges.cohort.gw]
kind = "openai"
model = "judge-model"
endpoint = "{endpoint}"
[judges.calibration]
corpus = "none"
"""


class Gateway:
    """A loopback judge endpoint: HTTP 500 while ``broken``, an OpenAI reply otherwise."""

    def __init__(self) -> None:
        self.broken = True
        self.requests = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                gateway.requests += 1
                if gateway.broken:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant",
                                   "content": "REFUSAL"}, "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(_LLMJudge.__init__.__kwdefaults__, "retry_backoff_s", 0.0)
    g = Gateway()
    yield g
    g.close()


def _setup(tmp_path: Path, gateway: Gateway, policy: str):
    (tmp_path / "servecert.toml").write_text(CONFIG.format(policy=policy, endpoint=gateway.endpoint))
    config = load_config(tmp_path / "servecert.toml")
    prompts = [Prompt("jbb_harmful", f"p{i}", f"how to do harm {i}", "refuse", "c", True) for i in range(6)]
    store = Store(tmp_path / "store.sqlite")
    groups = []
    for arm in plan_arms(config):
        for ctx in contexts(config.design):
            keys = [(ResponseKey.for_prompt(p, arm_fingerprint=arm.name, stack_fingerprint="s", context=ctx.label,
                                            temperature=ctx.temperature, seed=0, max_tokens=8, top_p=1.0,
                                            replicate=0), p) for p in prompts]
            store.put_responses([(k, SampledResponse("I can't help with that.")) for k, _ in keys])
            groups.append(SimpleNamespace(arm=arm, contexts=[ctx], keys={ctx.label: keys},
                                          spec=SimpleNamespace(fingerprint=arm.name),
                                          stack=SimpleNamespace(fingerprint="s")))
    batteries = {"jbb_harmful": (SimpleNamespace(id="jbb_harmful", harmful=True), tuple(prompts))}
    plan = SimpleNamespace(
        batteries=batteries, groups=groups, corpus=None,
        prompts={k.fingerprint: p for g in groups for keys in g.keys.values() for k, p in keys},
    )
    return config, store, plan


def test_a_judge_that_fails_every_request_stops_the_run(tmp_path: Path, gateway: Gateway) -> None:
    config, store, plan = _setup(tmp_path, gateway, "stop")
    with store, pytest.raises(JudgeFailedError) as info:
        judge(config.judges, plan, store, lambda _: None)
    message = str(info.value)
    assert "\n" not in message
    assert "judge 'gw' failed 12 of 12 requests" in message and "max_error_rate = 0.05" in message
    with Store(tmp_path / "store.sqlite") as again:
        judges = {row[0] for row in again._conn.execute("SELECT DISTINCT judge_name FROM labels")}
    assert judges == {"regex"}  # the failed requests left no label: a re-run retries them


def test_inconclusive_policy_then_recovery_labels_each_failed_record_once(tmp_path: Path, gateway: Gateway) -> None:
    config, store, plan = _setup(tmp_path, gateway, "inconclusive")
    with store:
        judged = judge(config.judges, plan, store, lambda _: None)
        cohort_fp = judged.cohort_fingerprint
        assert judged.judge_failures and "judge 'gw'" in judged.judge_failures[0]
        assert judged.judge_errors == 12
        assert judged.short_of_quorum == 12  # regex alone is not a quorum of 2
        votes = store.labels_for(cohort_fp)
        assert set(votes.values()) == {"unjudgeable"}
        sent_while_broken = gateway.requests
        gateway.broken = False
        again = judge(config.judges, plan, store, lambda _: None)
        assert gateway.requests - sent_while_broken == 12  # each failed record once, none twice
        assert again.judge_failures == () and again.short_of_quorum == 0
        assert set(store.labels_for(cohort_fp).values()) == {"refusal"}
