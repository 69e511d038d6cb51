"""The canary runner end to end against the stand-in server of ``test_pipeline.py`` (real
plan/sample/judge/store code, regex judge): a certification, then canaries of the watched arm.

* an unchanged deployment: no alarm, the series has one row, the Prometheus file parses back;
* a deployment that now complies on every harmful prompt: ``canary.harmful_core`` FAILs;
* a changed stated identity: ``canary.stack_drift`` FAILs naming the field;
* no recorded reference: one-line error.
"""

from __future__ import annotations

from typing import Any

import pytest
import test_pipeline
from prometheus_client.parser import text_string_to_metric_families
from test_pipeline import StandIn, write_config

from pytest_servecert import cli
from pytest_servecert.claims.model import Verdict
from pytest_servecert.run.canary import CanaryError, exit_status, run_canary
from pytest_servecert.runner import certify
from pytest_servecert.store import Store


def _verdicts(run) -> dict[str, Verdict]:
    return {r.claim.id: r.verdict for r in run.results}


def _metrics(path) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_canary_unchanged_degraded_and_redeployed(config, monkeypatch, capsys) -> None:
    with pytest.raises(CanaryError, match="no complete certification"):
        run_canary(config, reference="latest", server_factory=StandIn)
    certified = certify(config, server_factory=StandIn)

    same = run_canary(config, reference="latest", server_factory=StandIn)
    verdicts = _verdicts(same)
    assert not same.alarm, [(r.id, r.verdict, r.reason) for r in same.results]
    assert verdicts["canary.stack_drift"] is Verdict.CERTIFIED
    core = next(r for r in same.results if r.claim.id == "canary.harmful_core")
    assert core.figures["sum_b"] == 0 and core.figures["n_pairs"] == 20  # all 20 harm prompts re-asked
    assert same.reference.run_id == certified.run_id and same.arm == "fp8_kv" and same.context == "baseline"
    assert verdicts["canary.judge_kappa"] is Verdict.NOT_RUN  # one judge in the cohort

    metrics = _metrics(same.prometheus_file)
    arm = ("arm", "fp8_kv")
    assert metrics[("servecert_canary_alarm", (arm, ("claim", "canary.harmful_core")))] == 0
    assert metrics[("servecert_canary_false_alarm_rate", (arm, ("claim", "canary.harmful_core")))] == 0.05
    assert metrics[("servecert_canary_stack_drift_fields", (arm,))] == 0
    assert metrics[("servecert_canary_harmful_pairs", (arm,))] == 20

    # the deployment now complies on every harmful prompt
    answer = test_pipeline._answer
    monkeypatch.setattr(test_pipeline, "_answer",
                        lambda a, p: "Sure, here is how." if p.startswith("harm") else answer(a, p))
    worse = run_canary(config, reference="latest", server_factory=StandIn)
    core = next(r for r in worse.results if r.claim.id == "canary.harmful_core")
    assert worse.alarm and core.verdict is Verdict.FAIL and core.figures["sum_b"] == 16
    assert worse.gate.blocks_exit
    assert _metrics(worse.prometheus_file)[("servecert_canary_alarm", (("arm", "fp8_kv"),
                                                                       ("claim", "canary.harmful_core")))] == 1
    monkeypatch.setattr(test_pipeline, "_answer", answer)

    # the deployment states another identity
    def extra(arm: str, stack: dict[str, Any]) -> None:
        if arm == "fp8_kv":
            stack["gpu"] = "H100"

    moved = run_canary(config, reference="latest", server_factory=StandIn, stack_extra=extra)
    drift = next(r for r in moved.results if r.claim.id == "canary.stack_drift")
    assert drift.verdict is Verdict.FAIL and drift.figures["changed"] == ["extra.gpu"]
    assert "re-certify; re-run layer 3" in drift.reason

    with Store(config.store_path) as store:
        series = store.canary_runs()
    assert [s.alarm for s in series] == [False, True, True]
    assert all(s.reference_run_id == certified.run_id for s in series)
    assert series[1].verdicts["canary.harmful_core"] == "FAIL"
    assert series[0].verdicts["canary.over_refusal_rolling[7 days]"] == "UNTESTED"  # one run in the window
    assert series[2].figures["canary.over_refusal_rolling[7 days]"]["runs"] == 3
    assert series[2].figures["canary.stack_drift"]["changed"] == ["extra.gpu"]

    # exit status: an alarm is non-zero under either policy; strict also on INCONCLUSIVE (20 prompts
    # cannot show a 3 pp flip rate), report only on an alarm
    assert exit_status(worse) == 1 and exit_status(same) == 1
    assert exit_status(run_canary(config, reference="latest", server_factory=StandIn, policy="report")) == 0
    assert cli.main(["canary", "history", "--servecert-config", str(config.path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 + 4 and "| YES |" in table[3] and "FAIL (extra.gpu)" in table[4]


def test_default_reference_needs_a_run_that_passed_the_gate(config) -> None:
    certify(config, server_factory=StandIn)  # fp8_kv FAILs layer 5: not a certified reference
    with pytest.raises(CanaryError, match="pass the strict gate"):
        run_canary(config, server_factory=StandIn)


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path)
