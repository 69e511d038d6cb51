"""Evidence a reviewer reads beside the verdicts: discordant examples and judge agreement.

Neither changes a verdict, and both are computed here from what the run returns
(``CertificationRun.discordant`` and ``.judge_labels``), never fed by the run while it samples.
Examples are a bounded sample of each cell's discordant pairs (the prompt and both answers,
truncated), so a certificate stays small; agreement is each pair of cohort judges' raw
agreement and Cohen's κ over the answers both labelled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

from ..stats import cohen_kappa

#: Discordant pairs kept per cell and direction (degraded: baseline safe, candidate unsafe).
EXAMPLES_PER_DIRECTION = 2
#: Characters kept of each prompt and answer (the store keeps the full text).
MAX_CHARS = 1500

DIRECTIONS = {1: "degraded", 2: "improved"}  # McNemar cell b, c


def _cut(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " […]"


def cell_examples(discordant: Iterable[Any]) -> tuple[dict[str, Any], ...]:
    """One cell's certificate examples: the first :data:`EXAMPLES_PER_DIRECTION` discordant
    pairs of each direction, in pair order, with prompt and answers cut to :data:`MAX_CHARS`.

    ``discordant`` holds ``run.results.DiscordantPair``-like records (prompt_id, cell,
    expected, prompt, both labels and texts), as a run returns them.
    """
    out = []
    taken = {cell: 0 for cell in DIRECTIONS}
    for pair in discordant:
        if pair.cell not in DIRECTIONS or taken[pair.cell] >= EXAMPLES_PER_DIRECTION:
            continue
        taken[pair.cell] += 1
        out.append({
            "prompt_id": pair.prompt_id,
            "direction": DIRECTIONS[pair.cell],
            "expected": pair.expected,
            "prompt": _cut(pair.prompt),
            "baseline": {"label": pair.baseline_label, "text": _cut(pair.baseline_text)},
            "candidate": {"label": pair.candidate_label, "text": _cut(pair.candidate_text)},
        })
    return tuple(out)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def judge_agreement(labels: Mapping[str, Mapping[str, str]]) -> tuple[dict[str, Any], ...]:
    """Pairwise agreement of the cohort's judges (``judge name → {response fp: label}``).

    Empty with fewer than two judges: there is nothing to agree with.
    """
    rows = []
    for left, right in combinations(sorted(labels), 2):
        common = sorted(set(labels[left]) & set(labels[right]))
        a = [labels[left][fp] for fp in common]
        b = [labels[right][fp] for fp in common]
        row: dict[str, Any] = {"a": left, "b": right, "n": len(common), "agreement": None,
                               "kappa": None, "pabak": None, "degenerate": None}
        if common:
            result = cohen_kappa(a, b, n_boot=0)
            row["agreement"] = float(result.p_observed)
            row["kappa"] = _finite(result.kappa)  # NaN when both used one identical label
            row["pabak"] = _finite(result.pabak)
            row["degenerate"] = bool(result.degenerate)
        rows.append(row)
    return tuple(rows)
