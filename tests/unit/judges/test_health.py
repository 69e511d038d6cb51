"""A failing judge is counted, stops the run or makes label-dependent claims INCONCLUSIVE, and
its failed requests are never stored (issue #15 item 2); the cohort's quorum is explicit."""

from __future__ import annotations

from pytest_servecert.claims.catalogue import HARMFUL_CORE, SCALE_BAND
from pytest_servecert.claims.model import ClaimResult, Verdict
from pytest_servecert.judges.base import Judgement, Label
from pytest_servecert.judges.cohort import Cohort
from pytest_servecert.judges.health import (
    JudgeHealth,
    inconclusive_for_failed_judges,
    is_judge_error,
)


def j(label: Label, raw: str | None = None, reason: str = "") -> Judgement:
    return Judgement("k", "g", label, raw=raw, reason=reason)


def test_only_missing_answers_are_judge_errors() -> None:
    assert is_judge_error(j(Label.UNJUDGEABLE, None, "http 500 after 3 attempts"))
    assert is_judge_error(j(Label.UNJUDGEABLE, None, "timeout"))
    assert not is_judge_error(j(Label.UNJUDGEABLE, "maybe?", "unparseable"))  # the judge answered
    assert not is_judge_error(j(Label.UNJUDGEABLE, None, "empty response"))  # the model's fault
    assert not is_judge_error(j(Label.REFUSAL, "REFUSAL"))


def test_a_judge_that_fails_every_request_is_reported_and_nothing_is_kept() -> None:
    health = JudgeHealth()
    kept = health.add("gemma", [j(Label.UNJUDGEABLE, None, "HTTP 500 after 3 attempts")] * 10)
    assert kept == []  # never stored: a re-run retries them
    health.add("regex", [j(Label.REFUSAL, "rule")] * 10)
    (line,) = health.failures(0.05)
    assert "judge 'gemma' failed 10 of 10 requests" in line and "max_error_rate = 0.05" in line
    assert "\n" not in line


def test_error_share_at_the_bound_is_tolerated() -> None:
    health = JudgeHealth()
    health.add("g", [j(Label.UNJUDGEABLE, None, "timeout")] + [j(Label.REFUSAL, "R")] * 19)
    assert health.failures(0.05) == []  # 1/20 = 0.05 is not above it
    assert health.failures(0.04)


def test_inconclusive_policy_touches_only_measured_label_dependent_claims() -> None:
    core = ClaimResult(claim=HARMFUL_CORE, verdict=Verdict.CERTIFIED, headline="0 discordant")
    not_run = ClaimResult(claim=HARMFUL_CORE, verdict=Verdict.NOT_RUN, headline="-", subject="x")
    scale = ClaimResult(claim=SCALE_BAND, verdict=Verdict.SCAFFOLDED_ONLY, headline="2M")
    out = inconclusive_for_failed_judges([core, not_run, scale], ["judge 'g' failed 10 of 10; x"])
    assert out[0].verdict is Verdict.INCONCLUSIVE and "judge 'g' failed" in out[0].reason
    assert out[1].verdict is Verdict.NOT_RUN and out[2].verdict is Verdict.SCAFFOLDED_ONLY


def test_a_record_short_of_quorum_is_unjudgeable_not_decided_by_the_survivor() -> None:
    cohort = Cohort(members=("regex", "llm"), voters=("regex", "llm"), quorum=2)
    vote = cohort.combine({"regex": "refusal"})  # the LLM judge failed on this record
    assert vote.label is Label.UNJUDGEABLE and vote.reason == "short of quorum"
    # an abstention is a live voter: the quorum counts answers, the majority counts votes
    assert cohort.combine({"regex": "refusal", "llm": "unjudgeable"}).label is Label.REFUSAL
    assert (
        Cohort(members=("regex", "llm"), voters=("regex", "llm"))
        .combine({"regex": "refusal"})
        .label
        is Label.REFUSAL
    )
