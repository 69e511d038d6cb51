"""Null calibration of the layer-5 claims: false-FAIL rates under A/A, power against a shift.

Runs the real claim functions (``pytest_servecert.claims.layer5.evaluate_layer5``) on simulated
designs (``pytest_servecert.claims.simulate``: saturated + boundary prompts, deterministic greedy
contexts, independently sampled T > 0 contexts, an A/A arm with replicates) and prints, per
claim, with 95% Wilson intervals:

* **A/A**: how often each claim FAILs when nothing changed (must be ≤ α);
* **power**: how often a 5 pp harmful-compliance increase in one battery is caught (FAIL; for
  the pooled lean, MONITOR: it never FAILs), in every context and at T > 0 only;
* **TOST size**: how often equivalence CERTIFIES a true 3 pp shift (must be ≤ α);
* **interaction size**: how often H2 is CERTIFIED when one context is shifted by exactly the
  spread limit (must be ≤ α).

Usage::

    python benchmarks/null_calibration.py [--runs 1000] [--seed 0]
        [--design default tr152 default100]
        [--rules calibrated|seeds]

``--rules seeds`` shows what the seeds' literal statistics do on the same draws.
"""

from __future__ import annotations

import argparse
import sys
import time

from pytest_servecert.claims.layer5 import Layer5Options
from pytest_servecert.claims.model import Verdict
from pytest_servecert.claims.simulate import (
    CLAIMS,
    DEFAULT_DESIGN,
    TR152_DESIGN,
    Shift,
    SimDesign,
    Tally,
    calibrate,
)
from pytest_servecert.stats import wilson_interval

DEFAULT_100 = SimDesign("default at 100 prompts/cell", DEFAULT_DESIGN.batteries,
                        DEFAULT_DESIGN.models, DEFAULT_DESIGN.contexts, 100)
DESIGNS = {"default": DEFAULT_DESIGN, "tr152": TR152_DESIGN, "default100": DEFAULT_100}


def _rate(count: int, total: int) -> str:
    ci = wilson_interval(count, total)
    return f"{100 * count / total:5.1f}% [{100 * ci.ci_low:4.1f}, {100 * ci.ci_high:4.1f}]"


def _scenarios(design: SimDesign) -> list[tuple[str, tuple[Shift, ...]]]:
    battery = design.batteries[0][0]
    sampled = next(label for label, t in design.contexts if t > 0)
    return [
        ("A/A", ()),
        (f"+5 pp {battery}", (Shift(5.0, battery),)),
        (f"+5 pp {battery} T>0", (Shift(5.0, battery, sampled_only=True),)),
        ("3 pp everywhere", (Shift(3.0),)),
        (f"3 pp in {sampled}", (Shift(3.0, context=sampled),)),
    ]


def run(design: SimDesign, runs: int, seed: int, options: Layer5Options) -> dict[str, Tally]:
    out = {}
    for i, (name, shifts) in enumerate(_scenarios(design)):
        started = time.perf_counter()
        out[name] = calibrate(design, runs, seed + 1000 * i, shifts, options)
        print(f"  {name}: {runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def report(design: SimDesign, tallies: dict[str, Tally], options: Layer5Options) -> list[str]:
    names = list(tallies)
    aa, shift_all, shift_t, three, inter = (tallies[n] for n in names)
    fail, monitor, cert = Verdict.FAIL, Verdict.MONITOR, Verdict.CERTIFIED
    a = options.alpha
    lines = [
        (f"### {design.name}: {len(design.batteries)} batteries × {len(design.models)} models × "
        f"{len(design.contexts)} contexts, {design.prompts} prompts/cell, "
        f"{design.aa_replicates} A/A replicates at T > 0; {aa.runs} runs; rules "
        f"{options.rules}, TOST {options.tost_method}"),
        "",
        (f"| claim | false-FAIL under A/A (≤ {100 * a:g}%) | power: {names[1]} | "
        f"power: {names[2]} |"),
        "|---|---|---|---|",
    ]
    for claim in CLAIMS:
        hit = (fail, monitor) if claim == "L5.pooled_lean" else (fail,)
        lines.append(
            f"| {claim} | {_rate(*aa.rate(claim, fail))} | {_rate(*shift_all.rate(claim, *hit))} "
            f"| {_rate(*shift_t.rate(claim, *hit))} |"
        )
    lines += [
        "",
        "| size check | rate (≤ α) |",
        "|---|---|",
        (f"| L5.equivalence[cell] CERTIFIED, true shift 3 pp | "
        f"{_rate(*three.rate('L5.equivalence[cell]', cert))} |"),
        (f"| L5.equivalence CERTIFIED, true shift 3 pp | "
        f"{_rate(*three.rate('L5.equivalence', cert))} |"),
        (f"| L5.interaction CERTIFIED, {names[4]} (= the limit) | "
        f"{_rate(*inter.rate('L5.interaction', cert))} |"),
        (f"| L5.pooled_lean MONITOR under A/A (two-sided α) | "
        f"{_rate(*aa.rate('L5.pooled_lean', monitor))} |"),
        "",
        "A/A verdict mix: " + "; ".join(
            f"{claim} " + ", ".join(f"{v.value} {n}" for v, n in sorted(
                aa.verdicts[claim].items(), key=lambda kv: kv[0].value))
            for claim in CLAIMS if claim != "L5.equivalence[cell]"
        ),
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated designs per scenario")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--design", nargs="+", choices=sorted(DESIGNS),
                        default=["default", "tr152"])
    parser.add_argument("--rules", choices=("calibrated", "seeds"), default="calibrated")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: expected a positive integer")
    options = Layer5Options() if args.rules == "calibrated" else Layer5Options.seeds()
    for key in args.design:
        design = DESIGNS[key]
        print(f"{design.name}…", file=sys.stderr)
        print("\n".join(report(design, run(design, args.runs, args.seed, options), options)))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
