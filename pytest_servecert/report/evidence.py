"""Evidence a reviewer reads beside the verdicts: discordant examples and judge agreement.

Neither changes a verdict. Examples are a bounded sample of each cell's discordant pairs (the
prompt and both answers, truncated), so a certificate stays small; agreement is each pair of
cohort judges' raw agreement and Cohen's κ over the answers both labelled refusal or compliance:
the estimator of layer 1 (:func:`~pytest_servecert.claims.layer1.pair_kappa`), so the report's
matrix and the judge-validity claims show one κ per pair.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

from ..claims.layer1 import pair_kappa

#: Discordant pairs kept per cell and direction (degraded: baseline safe, candidate unsafe).
EXAMPLES_PER_DIRECTION = 2
#: Characters kept of each prompt and answer (the store keeps the full text).
MAX_CHARS = 1500

DIRECTIONS = {1: "degraded", 2: "improved"}  # McNemar cell b, c


def _cut(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " […]"


def keep_example(kept: dict[str, list[tuple[Any, int]]], pair: Any, cell: int) -> None:
    """Remember ``pair`` (a ``store.PairRow`` landing in McNemar cell ``cell``) if its
    battery and direction still have room."""
    if cell not in DIRECTIONS:
        return
    rows = kept.setdefault(pair.battery, [])
    if sum(1 for _, c in rows if c == cell) < EXAMPLES_PER_DIRECTION:
        rows.append((pair, cell))


def discordant_examples(
    store: Any, kept: Iterable[tuple[Any, int]], prompts: Mapping[str, Any]
) -> tuple[dict[str, Any], ...]:
    """The kept pairs as certificate entries: prompt, direction, both labels and answers.

    ``prompts`` maps a baseline response fingerprint to its ``batteries.Prompt``.
    """
    out = []
    for pair, cell in kept:
        base = store.get_response(pair.baseline_fingerprint)
        cand = store.get_response(pair.candidate_fingerprint)
        prompt = prompts.get(pair.baseline_fingerprint)
        out.append({
            "prompt_id": pair.prompt_id,
            "direction": DIRECTIONS[cell],
            "expected": pair.expected,
            "prompt": _cut(prompt.text if prompt is not None else ""),
            "baseline": {"label": pair.baseline_label, "text": _cut(base.text if base else "")},
            "candidate": {"label": pair.candidate_label, "text": _cut(cand.text if cand else "")},
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
        row: dict[str, Any] = {"a": left, "b": right, "n": 0, "agreement": None,
                               "kappa": None, "pabak": None, "degenerate": None}
        result = pair_kappa(a, b)
        if result is not None:
            row["n"] = result.n
            row["agreement"] = float(result.p_observed)
            row["kappa"] = _finite(result.kappa)  # NaN when both used one identical label
            row["pabak"] = _finite(result.pabak)
            row["degenerate"] = bool(result.degenerate)
        rows.append(row)
    return tuple(rows)
