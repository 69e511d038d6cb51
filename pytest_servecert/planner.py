"""``servecert plan``: the prompts per cell a config needs, before anything boots.

For each layer-5 claim, the smallest prompts per cell at which it could detect (or, for the
equivalence and interaction claims, certify against) an effect of ``mde_pp`` with ``power``,
from the discordance rates of a pilot (the last certificate in ``[servecert] report_dir``) or
conservative defaults; then the requests, server boots and an estimated wall time of the
design at the configured and at the needed prompts per cell. Same formulas as the claims'
own minimum detectable effects (``claims/layer5.py``), so the plan and the verdict agree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

from . import stats
from .config import ServecertConfig
from .design import contexts, plan_arms, planned_requests

__all__ = ["DEFAULT_RATES", "Plan", "plan", "plan_lines"]

#: Conservative discordance rates (b + c)/n when no pilot exists: a greedy context flips few
#: prompts; a sampled one disagrees with itself on every boundary prompt (the simulation in
#: claims/simulate.py gives ≈ 8% on harmful, ≈ 17% on benign batteries at T > 0).
DEFAULT_RATES = {"greedy": 0.02, "sampled": 0.15}
#: Baseline-safe share of a harmful battery when no pilot says otherwise.
DEFAULT_SAFE_SHARE = 0.9
#: Wall-time model from README "Performance" (servecert-tiny, vLLM CPU, 2 shared cores):
#: a server is ready in ~31–34 s; sampling + judging cost ~0.1 s per request.
BOOT_S = 35.0
REQUEST_S = 0.10


@dataclass(frozen=True)
class Plan:
    """What one config needs (see :func:`plan`)."""

    needed: Mapping[str, tuple[int, str]]  # claim -> (prompts per cell, why)
    prompts_per_cell: int
    requests: int
    boots: int
    minutes: float
    requests_needed: int
    minutes_needed: float
    rates: Mapping[str, float]
    source: str


def _z(q: float) -> float:
    return NormalDist().inv_cdf(q)


def pilot_rates(report_dir: Path) -> tuple[dict[str, float], str] | None:
    """Discordance rates by greedy/sampled context from the last certificate, if any."""
    path = report_dir / "certificate-latest.json"
    try:
        cert = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    totals: dict[str, list[int]] = {"greedy": [0, 0], "sampled": [0, 0], "safe": [0, 0]}
    for cell in cert.get("cells", []):
        if cell.get("status") != "measured" or not cell.get("n"):
            continue
        sampled = "temperature=" in cell.get("context", "") and \
            not cell["context"].endswith("temperature=0.0")
        row = totals["sampled" if sampled else "greedy"]
        row[0] += cell["b"] + cell["c"]
        row[1] += cell["n"]
        if cell.get("harmful"):
            totals["safe"][0] += cell["a"] + cell["b"]
            totals["safe"][1] += cell["n"]
    if not totals["greedy"][1] and not totals["sampled"][1]:
        return None
    rates = {k: max(v[0] / v[1], 1.0 / v[1]) if v[1] else DEFAULT_RATES.get(k, 0.0)
             for k, v in totals.items() if k != "safe"}
    rates["safe_share"] = (totals["safe"][0] / totals["safe"][1] if totals["safe"][1]
                           else DEFAULT_SAFE_SHARE)
    return rates, f"pilot {path}"


def _boots(config: ServecertConfig) -> int:
    return sum(len({tuple(sorted(c.server_levels.items(), key=str)) for c in
                    contexts(config.design)}) for _ in plan_arms(config))


def plan(config: ServecertConfig, mde_pp: float | None = None,
         power: float | None = None) -> Plan:
    """Prompts per cell each layer-5 claim needs to detect ``mde_pp`` (default: the margin)."""
    claims = config.claims
    delta = (mde_pp if mde_pp is not None else claims.margin_pp) / 100.0
    pw = power if power is not None else claims.power
    alpha = claims.alpha
    found = pilot_rates(config.report_dir)
    rates, source = found if found else (
        {**DEFAULT_RATES, "safe_share": DEFAULT_SAFE_SHARE}, "conservative defaults")
    ctxs = contexts(config.design)
    n_sampled = sum(c.temperature > 0 for c in ctxs)
    batteries = len(config.batteries.use)
    cells = batteries * len(ctxs)
    psi = max(rates["greedy"], rates["sampled"] if n_sampled else 0.0)
    needed: dict[str, tuple[int, str]] = {}

    strict = stats.strict_rule_mde(1, 0, 100 * delta, pw).n_needed
    harmful = math.ceil(strict / max(rates["safe_share"], 1e-9))
    why = f"T = 0: ≥ 1 flip of {strict} baseline-safe prompts"
    if n_sampled and config.aa_arm:
        reps = config.sampling.aa_replicates
        units = max(batteries, 1)
        q = rates["sampled"] / 2
        var = q * (1 - q) * (1 + 1 / reps)
        lone = math.ceil(math.log(alpha / units) / math.log(1 / (reps + 1)))
        per_unit = max((_z(1 - alpha / units) + _z(pw)) ** 2 * var / delta ** 2, lone / delta)
        sampled = math.ceil(per_unit / n_sampled)
        if sampled > harmful:
            harmful = sampled
            why = (f"T > 0: exact test vs {reps} A/A replicates over {n_sampled} sampled "
                   f"contexts, Holm over {units} batteries")
    needed["L5.harmful_core"] = (harmful, why)

    def tost_n(rate: float) -> int:
        n = 2
        while n < 200_000:
            k = round(rate * n)
            if stats.paired.score_tost_pvalue(k // 2, k - k // 2, n, 100 * delta) < alpha:
                return n
            n = math.ceil(n * 1.1)
        return n

    needed["L5.equivalence"] = (tost_n(psi), f"score TOST at a {100 * psi:.1f}% discordance rate")
    per_context = batteries  # cells pooled into one context mean (one model)
    limit = claims.spread_limit_pp / 100.0
    z_int = _z(1 - alpha) + _z(0.5 + pw / 2)
    needed["L5.interaction"] = (
        math.ceil(2 * psi * z_int ** 2 / (per_context * limit ** 2)),
        f"context means of {per_context} cells, every pair within ±{100 * limit:g} pp",
    )
    floor = stats.exact_mcnemar_floor(0, alpha, cells).discordant_needed
    holm = max(math.ceil(floor / delta),
               math.ceil(psi * (_z(1 - alpha / (2 * cells)) + _z(pw)) ** 2 / delta ** 2))
    needed["L5.holm"] = (holm, f"exact McNemar at α/{cells}")
    pooled = math.ceil(psi * (_z(1 - alpha / 2) + _z(pw)) ** 2 / delta ** 2 / cells)
    needed["L5.pooled_lean"] = (max(pooled, 1), f"pooled over {cells} cells")

    ppc = config.sampling.prompts_per_cell
    per_battery = {b: ppc for b in config.batteries.use}
    requests = planned_requests(config, per_battery)
    boots = _boots(config)
    most = max(n for n, _ in needed.values() if n)
    requests_needed = planned_requests(config, {b: most for b in config.batteries.use})
    return Plan(
        needed=needed, prompts_per_cell=ppc, requests=requests, boots=boots,
        minutes=(boots * BOOT_S + requests * REQUEST_S) / 60, requests_needed=requests_needed,
        minutes_needed=(boots * BOOT_S + requests_needed * REQUEST_S) / 60,
        rates=rates, source=source,
    )


def plan_lines(config: ServecertConfig, result: Plan, mde_pp: float, power: float) -> list[str]:
    ctxs = contexts(config.design)
    lines = [
        f"servecert plan: {config.path}",
        (f"  design: {len(config.batteries.use)} batteries × {len(ctxs)} contexts "
        f"({sum(c.temperature > 0 for c in ctxs)} sampled) × {len(plan_arms(config))} arms; "
        f"{config.sampling.prompts_per_cell} prompts per cell, A/A replicates at T > 0: "
        f"{config.sampling.aa_replicates if config.aa_arm else 'none (aa_arm = false)'}"),
        (f"  discordance rates ({result.source}): greedy {100 * result.rates['greedy']:.1f}%, "
        f"sampled {100 * result.rates['sampled']:.1f}%; harmful baseline-safe share "
        f"{100 * result.rates['safe_share']:.0f}%"),
        (f"  prompts per cell to detect {mde_pp:g} pp with {100 * power:.0f}% power "
        f"(α = {config.claims.alpha:g}):"),
    ]
    width = max(len(k) for k in result.needed)
    for claim, (n, why) in result.needed.items():
        ok = "ok" if n <= result.prompts_per_cell else "short"
        lines.append(f"    {claim:<{width}}  {n:>7,}  {ok:<5}  {why}")
    lines += [
        (f"  as configured: {result.requests:,} requests, {result.boots} server boots, "
        f"≈ {result.minutes:.0f} min"),
        (f"  at {max(n for n, _ in result.needed.values()):,} prompts per cell: "
        f"{result.requests_needed:,} requests, ≈ {result.minutes_needed:.0f} min "
        f"(batteries smaller than that cap it)"),
        (f"  time model: {BOOT_S:g} s per boot + {REQUEST_S:g} s per request (README "
        f"Performance, servecert-tiny on 2 cores)"),
    ]
    return lines

