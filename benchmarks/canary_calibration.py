"""Calibration of the production canary's alarms (issue #18) at a canary size.

Runs the real claim functions (``pytest_servecert.claims.canary``) on simulated canaries
(``pytest_servecert.claims.simulate.simulate_canary``: certified answer, canary answer and the
reference deployment's A/A draws per prompt) and prints, with 95% Wilson intervals:

* **false-alarm rate**: how often each alarm FAILs when the deployment is unchanged (must be
  ≤ α), at T = 0.7 (independent draws: the most discordant null) and at T = 0 (deterministic);
* **power**: how often it FAILs against a harmful-compliance shift / a benign-edge refusal drift;
* **no A/A replicates**: a T = 0.7 canary whose reference run has no A/A replicates must not
  alarm on sampling noise (it says INCONCLUSIVE "no A/A floor for T > 0"): its FAIL and
  INCONCLUSIVE rates, unchanged and shifted;
* **rolling**: ``canary.over_refusal_rolling`` over ``--window`` canary runs of the same pinned
  benign prompts against one set of certified answers (T = 0.7), beside a single run's alarm;
* **week over week**: ``canary.over_refusal_weekly`` over two weeks of ``--week-runs`` canary
  runs each of the same pinned benign prompts (T = 0.7), the last week shifted.

Usage::

    python benchmarks/canary_calibration.py [--runs 1000] [--seed 0] [--harmful 60] [--benign 40]
                                            [--window 6] [--week-runs 7]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import numpy as np

from pytest_servecert.claims.canary import (
    CanaryOptions,
    CanaryPair,
    canary_harmful_core,
    canary_over_refusal,
    canary_sizing,
    rolling_over_refusal,
    weekly_over_refusal,
)
from pytest_servecert.claims.model import Verdict
from pytest_servecert.claims.simulate import BENIGN_MIX, simulate_canary
from pytest_servecert.stats import wilson_interval


def rate(hits: int, runs: int) -> str:
    ci = wilson_interval(hits, runs)
    return f"{hits / runs:6.3f} [{ci.ci_low:.3f}, {ci.ci_high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--harmful", type=int, default=60)
    parser.add_argument("--benign", type=int, default=40)
    parser.add_argument("--window", type=int, default=6, help="canary runs pooled by the rolling alarm")
    parser.add_argument("--week-runs", type=int, default=7, help="canary runs per week (week over week)")
    args = parser.parse_args()
    options = CanaryOptions()
    sizing = canary_sizing(args.harmful, args.benign, options)
    print(f"canary of {args.harmful} harmful + {args.benign} benign-edge prompts, α = {options.alpha}, "
          f"drift limit {options.drift_pp:g} pp; greedy MDE {sizing.harmful_mde_pp:.1f} pp "
          f"({sizing.harmful_needed} safe prompts detect {options.margin_pp:g} pp), refusal-drift MDE "
          f"≈ {sizing.benign_mde_pp:.1f} pp at {options.power:.0%} power")
    print("| scenario | canary.harmful_core FAIL rate | canary.over_refusal FAIL rate | runs |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for name, kwargs in (
        ("unchanged, T = 0.7", {}),
        ("unchanged, T = 0", {"temperature": 0.0}),
        ("harmful −10 pp safe, T = 0.7", {"shift_pp": 10}),
        ("harmful −20 pp safe, T = 0.7", {"shift_pp": 20}),
        ("benign refusals +15 pp, T = 0.7", {"benign_shift_pp": 15}),
        ("benign refusals +30 pp, T = 0.7", {"benign_shift_pp": 30}),
    ):
        core = drift = 0
        for _ in range(args.runs):
            pairs = simulate_canary(rng, harmful=args.harmful, benign=args.benign, **kwargs)
            core += canary_harmful_core(pairs, options).verdict is Verdict.FAIL
            drift += canary_over_refusal(pairs, options).verdict is Verdict.FAIL
        print(f"| {name} | {rate(core, args.runs)} | {rate(drift, args.runs)} | {args.runs} |")
    print("\n| T = 0.7, reference run without A/A replicates | canary.harmful_core FAIL rate | INCONCLUSIVE rate "
          "| runs |")
    print("|---|---|---|---|")
    for name, shift in (("unchanged", 0), ("harmful −20 pp safe", 20)):
        fail = unsure = 0
        for _ in range(args.runs):
            pairs = simulate_canary(rng, harmful=args.harmful, benign=args.benign, aa_replicates=0, shift_pp=shift)
            verdict = canary_harmful_core(pairs, options).verdict
            fail += verdict is Verdict.FAIL
            unsure += verdict is Verdict.INCONCLUSIVE
        print(f"| {name} | {rate(fail, args.runs)} | {rate(unsure, args.runs)} | {args.runs} |")
    print(f"\n| benign refusals, {args.window} runs | last run's canary.over_refusal FAIL rate | "
          "canary.over_refusal_rolling FAIL rate | runs |")
    print("|---|---|---|---|")
    for shift in (0, 10, 20):
        single = pooled = 0
        for _ in range(args.runs):
            p = BENIGN_MIX.draw(args.benign, rng)
            ref = rng.random(args.benign) < p
            q = np.clip(p - shift / 100.0, 0, 1)
            series = []
            for _ in range(args.window):
                can = rng.random(args.benign) < q
                pairs = [CanaryPair("xstest", str(i), False, "comply", 0.7, "compliance" if ref[i] else "refusal",
                                    "compliance" if can[i] else "refusal") for i in range(args.benign)]
                last = canary_over_refusal(pairs, options)
                series.append(dict(last.figures))
            single += last.verdict is Verdict.FAIL
            pooled += rolling_over_refusal(series, options).verdict is Verdict.FAIL
        print(f"| +{shift} pp | {rate(single, args.runs)} | {rate(pooled, args.runs)} | {args.runs} |")
    now = datetime(2026, 12, 2, tzinfo=UTC)
    print(f"\n| benign refusals, last week vs the week before ({args.week_runs} runs each) | "
          "canary.over_refusal_weekly FAIL rate | CERTIFIED rate | runs |")
    print("|---|---|---|---|")
    for shift in (0, 10, 20):
        fail = certified = 0
        for _ in range(args.runs):
            p = BENIGN_MIX.draw(args.benign, rng)
            ref = rng.random(args.benign) < p
            points = []
            for week, q in ((2, p), (1, np.clip(p - shift / 100.0, 0, 1))):
                for day in range(args.week_runs):
                    can = rng.random(args.benign) < q
                    pairs = [CanaryPair("xstest", str(i), False, "comply", 0.7,
                                        "compliance" if ref[i] else "refusal", "compliance" if can[i] else "refusal")
                             for i in range(args.benign)]
                    when = now - timedelta(days=7 * week) + timedelta(days=7 * (day + 0.5) / args.week_runs)
                    points.append((when, dict(canary_over_refusal(pairs, options).figures)))
            verdict = weekly_over_refusal(points, now, options).verdict
            fail += verdict is Verdict.FAIL
            certified += verdict is Verdict.CERTIFIED
        print(f"| +{shift} pp | {rate(fail, args.runs)} | {rate(certified, args.runs)} | {args.runs} |")


if __name__ == "__main__":
    main()
