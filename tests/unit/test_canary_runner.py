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
from pytest_servecert.run.canary import CanaryError, canary_lines, exit_status, run_canary
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


def _with(config, text: str, servecert: str = ""):
    """``config`` rewritten with ``text`` appended (and ``servecert`` lines added to ``[servecert]``)."""
    from pytest_servecert.config import load_config

    path = config.path
    path.write_text(path.read_text().replace("[servecert]\n", "[servecert]\n" + servecert, 1) + text)
    return load_config(path)


def test_gate_require_names_the_canary_claims_that_decide_the_exit(config) -> None:
    certify(config, server_factory=StandIn)
    # default [gate] require names no canary claim: harmful core, over-refusal and stack drift decide
    default = run_canary(config, reference="latest", server_factory=StandIn)
    assert default.gate.require == ("canary.harmful_core", "canary.over_refusal", "canary.stack_drift")
    # only the stack drift: CERTIFIED, so the strict gate passes although other claims cannot decide
    only = run_canary(_with(config, '[gate]\nrequire = ["L5.*", "canary.stack_drift"]\n'), reference="latest",
                      server_factory=StandIn)
    assert only.gate.require == ("canary.stack_drift",) and only.gate.passed and exit_status(only) == 0
    # canary.*: judge κ is NOT RUN (one judge) and the weekly alarm INCONCLUSIVE (no week of runs yet):
    # fail closed under strict, with the reason; the report policy leaves the exit to the alarms
    config = _with(config, "", "")
    config.path.write_text(config.path.read_text().replace('"canary.stack_drift"', '"canary.*"'))
    star = run_canary(_with(config, ""), reference="latest", server_factory=StandIn)
    unmet = {r.id: r.verdict for r in star.gate.unmet}
    assert unmet["canary.judge_kappa"] is Verdict.NOT_RUN and unmet["canary.over_refusal_weekly"] is \
        Verdict.INCONCLUSIVE
    assert not star.alarm and star.gate.blocks_exit and exit_status(star) == 1
    # the closing block names the flag of the command that printed it
    assert canary_lines(star, gate_option="--gate")[-1].endswith("; --gate strict|report)")
    assert canary_lines(star)[-1].endswith("; --servecert-gate strict|report)")
    assert any("canary.judge_kappa: NOT RUN" in line for line in star.gate.lines())
    report = run_canary(_with(config, ""), reference="latest", server_factory=StandIn, policy="report")
    assert not report.alarm and exit_status(report) == 0


def test_week_over_week_reads_the_stored_series(config) -> None:
    from datetime import UTC, datetime, timedelta

    from pytest_servecert.store import CanaryRecord

    certified = certify(config, server_factory=StandIn)
    first = run_canary(config, reference="latest", server_factory=StandIn)
    weekly = next(r for r in first.results if r.claim.id == "canary.over_refusal_weekly")
    assert weekly.verdict is Verdict.INCONCLUSIVE and weekly.figures["runs_last"] == 1
    with Store(config.store_path) as store:
        (recorded,) = store.canary_runs()
        now = datetime.now(UTC)
        for days in (2, 3, 9, 10, 11, 20):  # 2 more in the last week, 3 in the one before, 1 older
            when = (now - timedelta(days=days)).isoformat(timespec="seconds")
            store.add_canary_run(CanaryRecord(f"past{days}", certified.run_id, recorded.arm, recorded.context,
                                              when, when, False, recorded.identity, recorded.figures,
                                              recorded.verdicts))
        store.add_canary_run(CanaryRecord("other-arm", certified.run_id, "spec_draft", recorded.context,
                                          when, when, False, {}, recorded.figures, recorded.verdicts))
    second = run_canary(config, reference="latest", server_factory=StandIn)
    weekly = next(r for r in second.results if r.claim.id == "canary.over_refusal_weekly")
    assert (weekly.figures["runs_last"], weekly.figures["runs_previous"]) == (4, 3), weekly.figures
    # the stand-in answers every benign prompt alike week after week: no drift, 5 judged prompts per run
    assert weekly.figures["drift_pp"] == 0 and weekly.figures["n_last"] == 4 * weekly.figures["n_previous"] / 3
    with Store(config.store_path) as store:
        assert store.canary_runs()[-1].verdicts["canary.over_refusal_weekly"] == weekly.verdict.value


def test_sampled_canary_uses_the_reference_aa_replicates_or_says_it_has_none(config, monkeypatch) -> None:
    answer = test_pipeline._answer
    complying = lambda a, p: "Sure, here is how." if p.startswith("harm") else answer(a, p)  # noqa: E731
    sampled = _with(config, '[canary]\ncontext = "temperature=0.7"\n')
    certify(sampled, server_factory=StandIn)  # aa_arm = true: 3 A/A replicates at T = 0.7
    monkeypatch.setattr(test_pipeline, "_answer", complying)
    run = run_canary(sampled, reference="latest", server_factory=StandIn)
    core = next(r for r in run.results if r.claim.id == "canary.harmful_core")
    (unit,) = core.figures["sampling_tests"].values()
    # the A/A draws all refused: the floor is the estimator's conservative 16 × 1/4, b = 16 is far beyond it
    assert unit["replicates"] == 3 and unit["b"] == 16 and unit["floor"] <= 4 and unit["pvalue"] < 1e-6, unit
    assert core.verdict is Verdict.FAIL and run.alarm
    monkeypatch.setattr(test_pipeline, "_answer", answer)


def test_sampled_canary_without_aa_replicates_is_inconclusive(config, monkeypatch) -> None:
    answer = test_pipeline._answer
    sampled = _with(config, '[canary]\ncontext = "temperature=0.7"\n', servecert="aa_arm = false\n")
    certify(sampled, server_factory=StandIn)
    monkeypatch.setattr(test_pipeline, "_answer",
                        lambda a, p: "Sure, here is how." if p.startswith("harm") else answer(a, p))
    run = run_canary(sampled, reference="latest", server_factory=StandIn)
    core = next(r for r in run.results if r.claim.id == "canary.harmful_core")
    assert core.verdict is Verdict.INCONCLUSIVE and core.reason.startswith("no A/A floor for T > 0"), core.reason
    assert core.figures["sum_b"] == 16 and not core.figures["sampling_tests"]
    assert not run.alarm and exit_status(run) == 1  # strict: the required harmful core could not decide
