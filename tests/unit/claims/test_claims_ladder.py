"""The claim ladder: ordering, folding of per-cell results, remedies, colours, exit status."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_servecert.claims import ClaimLadder, ClaimResult, Tier, Verdict, catalogue
from pytest_servecert.claims.rules import scale_band

SCALE_REASON = (
    "servecert-tiny has 2.1M parameters, below the certified 1B–4B envelope; its verdicts "
    "exercise the protocol but certify nothing at this scale (a toy model: its refusals are "
    "not a production model's)"
)


@pytest.fixture
def results() -> list[ClaimResult]:
    return [
        ClaimResult(catalogue.HARMFUL_CORE, Verdict.CERTIFIED, "0 of 2 harmful cells discordant",
                    scope="batch size {1, 8}"),
        scale_band(2_100_000, model="servecert-tiny"),
        ClaimResult(catalogue.EQUIVALENCE, Verdict.CERTIFIED, "Δ +0.00 pp",
                    subject="hb/tiny/baseline"),
        ClaimResult(catalogue.EQUIVALENCE, Verdict.INCONCLUSIVE, "Δ -1.00 pp", reason="sparse",
                    subject="xs/tiny/baseline"),
        ClaimResult(catalogue.EQUIVALENCE, Verdict.NOT_RUN, "cell not run",
                    reason="NOT RUN: no AVX-512", subject="xs/tiny/kv=fp8"),
        ClaimResult(catalogue.JUDGE_VALIDITY, Verdict.CERTIFIED, "κ 0.814: robust"),
        ClaimResult(catalogue.INTERACTION, Verdict.FAIL, "spread 4.42 pp",
                    reason="two-cell tail"),
    ]


def test_lines_of_a_small_ladder(results: list[ClaimResult]) -> None:
    ladder = ClaimLadder.from_results(results)
    assert list(ladder.lines()) == [
        "Layer 1 · judge validity",
        "  L1.judge_validity  Supported  CERTIFIED        κ 0.814: robust",
        "Layer 4 · scale",
        ("  L4.scale_band      Supported  SCAFFOLDED-ONLY  servecert-tiny: 2.1M parameters vs "
         "envelope 1B–4B"),
        "      scope: envelope 1B–4B",
        f"      reason: {SCALE_REASON}",
        ("      remedy: Treat these verdicts as scaffolding: re-run the standardized batteries "
         "on your production model before enabling the change."),
        "Layer 5 · serving-state independence",
        ("  L5.equivalence[*]  Supported  INCONCLUSIVE     3 cells: 1 INCONCLUSIVE, 1 NOT RUN, "
         "1 CERTIFIED"),
        "      NOT RUN ×1  xs/tiny/kv=fp8",
        "        NOT RUN: no AVX-512",
        "      xs/tiny/baseline  INCONCLUSIVE  Δ -1.00 pp",
        "        sparse",
        ("      remedy: Add prompts to the sparse cells (the score TOST needs ≈ 120 concordant "
         "pairs to show ±3 pp; `servecert plan` prints what each claim needs) or pool by design."),
        "  L5.harmful_core    Supported  CERTIFIED        0 of 2 harmful cells discordant",
        "      scope: batch size {1, 8}",
        "  L5.interaction     Supported  FAIL             spread 4.42 pp",
        "      reason: two-cell tail",
        ("      remedy: A serving-state interaction is not ruled out (H2): re-validate the "
         "candidate per configuration, starting with the cells at the extremes."),
        ("7 claim results: 1 FAIL, 1 INCONCLUSIVE, 1 NOT RUN, 1 SCAFFOLDED-ONLY, 3 CERTIFIED; "
         "a claim FAILed"),
    ]
    assert ladder.exit_ok is False
    assert ladder.counts == {Verdict.FAIL: 1, Verdict.INCONCLUSIVE: 1, Verdict.NOT_RUN: 1,
                             Verdict.SCAFFOLDED_ONLY: 1, Verdict.CERTIFIED: 3}


def test_order_does_not_depend_on_input_order(results: list[ClaimResult]) -> None:
    forward = ClaimLadder.from_results(results)
    backward = ClaimLadder.from_results(list(reversed(results)))
    assert forward == backward
    assert [r.id for r in forward.results][:3] == ["L1.judge_validity", "L4.scale_band",
                                                   "L5.equivalence[hb/tiny/baseline]"]


def test_colour_only_on_request(results: list[ClaimResult]) -> None:
    plain = "\n".join(ClaimLadder.from_results(results).lines())
    coloured = list(ClaimLadder.from_results(results).lines(color=True))
    assert "\x1b[" not in plain
    assert coloured[0] == "\x1b[1mLayer 1 · judge validity\x1b[0m"
    assert "\x1b[32mCERTIFIED      \x1b[0m" in coloured[1]
    assert coloured[-1].endswith("; \x1b[1;31ma claim FAILed\x1b[0m")
    strip = [line.replace("\x1b[0m", "") for line in coloured]
    for code in ("\x1b[1m", "\x1b[32m", "\x1b[1;31m", "\x1b[35m", "\x1b[36m"):
        strip = [line.replace(code, "") for line in strip]
    assert strip == plain.splitlines()


def test_passing_ladder_with_a_monitor_note() -> None:
    monitor = ClaimResult(catalogue.POOLED_LEAN, Verdict.MONITOR, "pooled OR 2.69",
                          reason="H1: located on xstest")
    monitor = dataclasses.replace(monitor, claim=dataclasses.replace(
        monitor.claim, tier=Tier.LICENSED))
    cells = [ClaimResult(catalogue.EQUIVALENCE, Verdict.CERTIFIED, "ok", subject=s)
             for s in ("a", "b")]
    ladder = ClaimLadder.from_results([monitor, *cells])
    assert list(ladder.lines()) == [
        "Layer 5 · serving-state independence",
        "  L5.equivalence[*]  Supported  CERTIFIED        2 cells: 2 CERTIFIED",
        "  L5.pooled_lean     Licensed   MONITOR          pooled OR 2.69",
        "      note: H1: located on xstest",
        "3 claim results: 1 MONITOR, 2 CERTIFIED; no FAIL",
    ]
    assert ladder.exit_ok is True


def test_every_non_passing_rung_ends_with_a_remedy() -> None:
    for claim in catalogue.CATALOGUE.values():
        for verdict in Verdict:
            result = ClaimResult(claim, verdict, "h")
            lines = list(ClaimLadder.from_results([result]).lines())
            if verdict.passed:
                assert catalogue.remedy(result) == ""
                assert not any("remedy:" in line for line in lines)
            else:
                assert lines[-2].startswith("      remedy: ") and lines[-2].endswith("."), lines


def test_empty_ladder() -> None:
    assert list(ClaimLadder.from_results([]).lines()) == ["0 claim results: none; no FAIL"]


def test_unknown_claim_id_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown claim id 'L9.x'; expected one of: L1"):
        catalogue.claim("L9.x")
    assert catalogue.claim("L5.holm") is catalogue.HOLM
