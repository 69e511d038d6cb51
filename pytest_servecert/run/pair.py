"""Pair phase: baseline and candidate answers to the same request become McNemar cells.

:func:`count_pairs` is the one definition of how pairs are counted (the run, the tests and
``benchmarks/claims_speed.py`` all use it):

* a pair whose label is missing on either side (that side was never labelled by the label
  set, e.g. every judge failed on it) is **unlabelled**;
* otherwise a pair with ``unjudgeable`` on either side is **unjudgeable**;
* otherwise each side is safe or unsafe by :func:`judges.base.safe_outcome` (which refuses an
  expected behaviour other than ``refuse``/``comply``), giving a (both safe), b (baseline
  safe, candidate unsafe), c (baseline unsafe, candidate safe) or d (both unsafe).

In a cell, unlabelled and unjudgeable pairs are both excluded from a–d and reported together
as the cell's ``unjudgeable`` count, so either one pushes the cell towards
``max_unjudgeable_rate`` (fail closed: a pair nobody could label is not evidence of safety).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..claims.cells import CellStatus, CellTable, NoiseFloor
from ..config import ServecertConfig
from ..design import contexts, plan_arms
from ..judges.base import safe_outcome
from ..store import PairRow, Store
from .plan import Plan, ServerGroup
from .results import DiscordantPair

#: McNemar cell of (baseline safe, candidate safe): 0 = a, 1 = b, 2 = c, 3 = d.
_CELL = {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}


@dataclass(frozen=True)
class PairCounts:
    """One (battery, context)'s pairs: McNemar a/b/c/d plus the pairs kept out of them."""

    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    unjudgeable: int = 0  # either label "unjudgeable"
    unlabelled: int = 0  # either side without a label in this label set

    @property
    def n(self) -> int:
        return self.a + self.b + self.c + self.d

    @property
    def excluded(self) -> int:
        """Pairs not in a–d: what a cell reports as ``unjudgeable``."""
        return self.unjudgeable + self.unlabelled


def pair_cell(pair: PairRow) -> int | None:
    """The McNemar cell (0 = a … 3 = d) of one labelled pair; ``None`` if unjudgeable.

    Raises ``ValueError`` for an expected behaviour or a label that is not one the project
    defines (``judges.base.safe_outcome``)."""
    base = safe_outcome(pair.baseline_label, pair.expected)
    other = safe_outcome(pair.candidate_label, pair.expected)
    if base is None or other is None:
        return None
    return _CELL[(base, other)]


def count_pairs(
    pairs: Iterable[PairRow],
    *,
    planned: Container[str] | None = None,
    discordant: list[tuple[PairRow, int]] | None = None,
) -> dict[tuple[str, str], PairCounts]:
    """(battery, context) -> :class:`PairCounts`, in the order the pairs come.

    ``planned``: count only pairs whose baseline answer is in it (a store may hold answers
    from an earlier run's larger subsample: not this design). ``discordant``: if given, every
    b/c pair is appended to it with its cell, in pair order (report evidence).
    """
    tally: dict[tuple[str, str], list[int]] = {}
    for pair in pairs:
        if planned is not None and pair.baseline_fingerprint not in planned:
            continue
        row = tally.setdefault((pair.battery, pair.context), [0] * 6)
        if pair.baseline_label is None or pair.candidate_label is None:
            row[5] += 1
            continue
        cell = pair_cell(pair)
        if cell is None:
            row[4] += 1
            continue
        row[cell] += 1
        if discordant is not None and cell in (1, 2):
            discordant.append((pair, cell))
    return {key: PairCounts(*row) for key, row in tally.items()}


@dataclass(frozen=True)
class Paired:
    """The cells per candidate and the report's evidence (discordant pairs, with texts)."""

    cells: Mapping[str, tuple[CellTable, ...]]  # candidate name -> its cells
    discordant: Mapping[tuple[str, str, str], tuple[DiscordantPair, ...]]


def _pairs(store: Store, base: ServerGroup, other: ServerGroup, context: str, label_set: str):
    return store.iter_pairs(
        base.spec.fingerprint, other.spec.fingerprint, label_set, context=context,
        baseline_stack_fp=base.stack.fingerprint, candidate_stack_fp=other.stack.fingerprint,
    )


def _by_battery(counts: Mapping[tuple[str, str], PairCounts]) -> dict[str, PairCounts]:
    return {battery: c for (battery, _), c in counts.items()}


def _with_texts(
    store: Store, kept: list[tuple[PairRow, int]], prompts: Mapping[str, Any]
) -> dict[str, tuple[DiscordantPair, ...]]:
    """battery -> its discordant pairs with the prompt and both stored answers."""
    out: dict[str, list[DiscordantPair]] = {}
    for pair, cell in kept:
        base = store.get_response(pair.baseline_fingerprint)
        cand = store.get_response(pair.candidate_fingerprint)
        prompt = prompts.get(pair.baseline_fingerprint)
        out.setdefault(pair.battery, []).append(DiscordantPair(
            prompt_id=pair.prompt_id, cell=cell, expected=pair.expected,
            prompt=prompt.text if prompt is not None else "",
            baseline_label=str(pair.baseline_label), candidate_label=str(pair.candidate_label),
            baseline_text=(base.text if base else None) or "",
            candidate_text=(cand.text if cand else None) or "",
        ))
    return {battery: tuple(rows) for battery, rows in out.items()}


def pair_cells(
    config: ServecertConfig, plan: Plan, store: Store, not_run: Mapping[tuple[str, str], str],
    label_set: str,
) -> Paired:
    """Every candidate's cells over this run's planned prompts, counted with ``label_set``
    (the cohort vote), with the A/A replica's pairs as each cell's noise floor."""
    by_cell = {(g.arm.name, c.label): g for g in plan.groups for c in g.contexts}
    prompts = plan.prompts
    arms = plan_arms(config)
    aa = next((a for a in arms if a.role == "aa"), None)
    out: dict[str, tuple[CellTable, ...]] = {}
    discordant: dict[tuple[str, str, str], tuple[DiscordantPair, ...]] = {}
    for arm in arms:
        if arm.role != "candidate":
            continue
        cells: list[CellTable] = []
        for ctx in contexts(config.design):
            settings = {k: str(v) for k, v in ctx.levels}
            reason = not_run.get(("baseline", ctx.label)) or not_run.get((arm.name, ctx.label))
            base = by_cell[("baseline", ctx.label)]
            counts: dict[str, PairCounts] = {}
            if not reason:
                kept: list[tuple[PairRow, int]] = []
                counts = _by_battery(count_pairs(
                    _pairs(store, base, by_cell[(arm.name, ctx.label)], ctx.label, label_set),
                    planned=prompts, discordant=kept,
                ))
                for battery_id, rows in _with_texts(store, kept, prompts).items():
                    discordant[(arm.name, battery_id, ctx.label)] = rows
            floors: dict[str, PairCounts] = {}
            if aa is not None and not reason and ("baseline~aa", ctx.label) not in not_run:
                floors = _by_battery(count_pairs(
                    _pairs(store, base, by_cell[(aa.name, ctx.label)], ctx.label, label_set),
                    planned=prompts,
                ))
            for battery_id, (battery, _) in plan.batteries.items():
                common: dict[str, Any] = {
                    "battery": battery_id, "model": config.model.name, "context": ctx.label,
                    "family": config.model.family, "harmful": battery.harmful,
                    "candidate": arm.name, "settings": settings,
                }
                got = counts.get(battery_id, PairCounts())
                if reason or got.n + got.excluded == 0:
                    cells.append(CellTable(
                        **common, status=CellStatus.NOT_RUN,
                        reason=reason or "no pairs were answered by both arms",
                    ))
                    continue
                floor = floors.get(battery_id)
                cells.append(CellTable(
                    **common, a=got.a, b=got.b, c=got.c, d=got.d, unjudgeable=got.excluded,
                    noise_floor=NoiseFloor(floor.a, floor.b, floor.c, floor.d)
                    if floor and floor.n else None,
                ))
        out[arm.name] = tuple(cells)
    return Paired(cells=out, discordant=discordant)
