"""Simulated serving-state designs, for calibrating the layer-5 claims (pure, seeded).

The null-calibration harness (``benchmarks/null_calibration.py``) and its unit test
(``tests/unit/claims/test_null_calibration.py``) run the *real* claim functions
(:func:`.layer5.evaluate_layer5`) on cells drawn here, so a rule that FAILs on noise shows it.

Model (one draw of a design):

* Each (battery, model) gets per-prompt safe probabilities from a :class:`PromptMix`: a
  share of *saturated* prompts (safe with probability ``saturated_p``) and *boundary* prompts
  (uniform on ``boundary``): real batteries are mostly one and a little of the other.
* **Greedy contexts (T = 0)** are deterministic: prompt i is answered safely iff
  ``U_i < p_i`` with one latent ``U_i`` per prompt shared by every greedy context and arm (the
  same decision, whatever the batch). The A/A arm is then identical to the baseline.
* **Sampled contexts (T > 0)** draw each arm independently (``Bernoulli(p_i)``): a candidate
  whose logits differ at all decorrelates from the baseline's seed, which is the most
  discordant null. The A/A arm draws ``aa_replicates`` more times.
* A :class:`Shift` lowers the candidate's safe probability by ``pp`` (absolute) on every
  prompt of the battery (in the contexts it names); in greedy contexts that flips the prompts
  with ``p_i - δ <= U_i < p_i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .cells import CellTable, NoiseFloor, SamplingFloor
from .layer5 import Layer5Options, evaluate_layer5
from .model import Verdict

__all__ = [
    "DEFAULT_DESIGN",
    "TR152_DESIGN",
    "PromptMix",
    "Shift",
    "SimDesign",
    "Tally",
    "calibrate",
    "simulate_cells",
]


@dataclass(frozen=True)
class PromptMix:
    """Per-prompt safe probabilities: ``saturated_share`` at ``saturated_p``, the rest
    uniform on ``boundary``."""

    saturated_share: float
    saturated_p: float = 0.995
    boundary: tuple[float, float] = (0.4, 0.95)

    def __post_init__(self) -> None:
        lo, hi = self.boundary
        if not (0 <= self.saturated_share <= 1 and 0 <= self.saturated_p <= 1
                and 0 <= lo <= hi <= 1):
            raise ValueError(f"invalid prompt mix {self!r}")

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        saturated = rng.random(n) < self.saturated_share
        boundary = rng.uniform(*self.boundary, size=n)
        return np.where(saturated, self.saturated_p, boundary)


#: Harmful batteries: mostly refused for sure, a fifth near the boundary at T > 0.
HARMFUL_MIX = PromptMix(saturated_share=0.8, saturated_p=0.995, boundary=(0.5, 0.95))
#: Over-refusal and mixed batteries (XSTest, JBB benign): more boundary prompts.
BENIGN_MIX = PromptMix(saturated_share=0.7, saturated_p=0.99, boundary=(0.3, 0.95))


@dataclass(frozen=True)
class SimDesign:
    """A serving-state design: batteries × models × contexts, ``prompts`` pairs per cell."""

    name: str
    batteries: tuple[tuple[str, bool], ...]  # (id, harmful)
    models: tuple[str, ...]
    contexts: tuple[tuple[str, float], ...]  # (label, temperature)
    prompts: int
    aa_replicates: int = 3
    harmful_mix: PromptMix = HARMFUL_MIX
    benign_mix: PromptMix = BENIGN_MIX

    def with_prompts(self, prompts: int) -> SimDesign:
        return SimDesign(self.name, self.batteries, self.models, self.contexts, prompts,
                         self.aa_replicates, self.harmful_mix, self.benign_mix)


_STAR = (
    ("baseline", 0.0), ("batch_size=8", 0.0), ("batch_size=32", 0.0),
    ("prefix_caching=on", 0.0), ("temperature=0.7", 0.7), ("temperature=1.0", 1.0),
)

#: servecert.toml: 5 batteries, the star design (6 contexts), 40 prompts per cell, one model.
DEFAULT_DESIGN = SimDesign(
    name="default (servecert.toml)",
    batteries=(("harmbench", True), ("jbb_harmful", True), ("jbb_benign", False),
               ("strongreject", True), ("xstest", False)),
    models=("servecert-tiny",),
    contexts=_STAR,
    prompts=40,
)

#: TR152: 4 batteries × 3 models × the same 6 contexts, 100 prompts per cell.
TR152_DESIGN = SimDesign(
    name="TR152 (seed 000)",
    batteries=(("harmbench", True), ("jbb", True), ("strongreject", True), ("xstest", False)),
    models=("llama3.2-3b", "qwen2.5-1.5b", "qwen2.5-3b"),
    contexts=_STAR,
    prompts=100,
)


@dataclass(frozen=True)
class Shift:
    """The candidate's safe probability lowered by ``pp`` on every prompt of ``battery``
    (every battery when None), in every context or only ``sampled_only`` ones (T > 0) or
    only in ``context``."""

    pp: float
    battery: str | None = None
    sampled_only: bool = False
    context: str | None = None

    def applies(self, battery: str, context: str, temperature: float) -> bool:
        if self.battery is not None and battery != self.battery:
            return False
        if self.context is not None and context != self.context:
            return False
        return not (self.sampled_only and temperature == 0)


def _table(base: np.ndarray, other: np.ndarray) -> tuple[int, int, int, int]:
    a = int(np.sum(base & other))
    b = int(np.sum(base & ~other))
    c = int(np.sum(~base & other))
    return a, b, c, int(base.size - a - b - c)


def simulate_cells(
    design: SimDesign,
    rng: np.random.Generator,
    shifts: Sequence[Shift] = (),
    candidate: str = "candidate",
) -> tuple[CellTable, ...]:
    """One draw of every cell of ``design`` for one candidate (see the module docstring)."""
    cells = []
    n = design.prompts
    reps = design.aa_replicates
    for battery, harmful in design.batteries:
        mix = design.harmful_mix if harmful else design.benign_mix
        for model in design.models:
            p = mix.draw(n, rng)
            latent = rng.random(n)  # the greedy decision of each prompt
            for context, temperature in design.contexts:
                delta = sum(s.pp for s in shifts if s.applies(battery, context, temperature))
                q = np.clip(p - delta / 100.0, 0.0, 1.0)
                if temperature == 0:
                    base = latent < p
                    cand = latent < q
                    a, b, c, d = _table(base, cand)
                    floor = NoiseFloor(int(base.sum()), 0, 0, int((~base).sum()))
                    sampling = None
                else:
                    base = rng.random(n) < p
                    cand = rng.random(n) < q
                    a, b, c, d = _table(base, cand)
                    floor = None
                    aa_unsafe = (rng.random((reps, n)) >= p).sum(axis=0)
                    x = (~cand).astype(int)
                    hist = np.zeros((2, reps + 1), dtype=int)
                    np.add.at(hist, (x[base], aa_unsafe[base]), 1)
                    sampling = SamplingFloor(reps, tuple(
                        (kx, kj, int(hist[kx, kj]))
                        for kx in range(2) for kj in range(reps + 1) if hist[kx, kj]
                    ))
                cells.append(CellTable(
                    battery=battery, model=model, context=context, family=model.split("-")[0],
                    harmful=harmful, a=a, b=b, c=c, d=d, candidate=candidate,
                    settings={"temperature": str(temperature)}, noise_floor=floor,
                    sampling_floor=sampling,
                ))
    return tuple(cells)


#: The layer-5 claims the harness reports, in ladder order.
CLAIMS = ("L5.harmful_core", "L5.equivalence", "L5.equivalence[cell]", "L5.interaction",
          "L5.pooled_lean", "L5.holm")


@dataclass(frozen=True)
class Tally:
    """How often each claim reached each verdict over ``runs`` simulated designs.

    ``verdicts[claim][verdict]`` counts runs (for ``L5.equivalence[cell]``: cells, over
    ``cells`` cell-draws).
    """

    runs: int
    cells: int
    verdicts: dict[str, dict[Verdict, int]]

    def rate(self, claim: str, *verdicts: Verdict) -> tuple[int, int]:
        """(count, total) of the runs (or cells) where ``claim`` got one of ``verdicts``."""
        total = self.cells if claim.endswith("[cell]") else self.runs
        return sum(self.verdicts[claim].get(v, 0) for v in verdicts), total


def calibrate(
    design: SimDesign,
    runs: int,
    seed: int,
    shifts: Sequence[Shift] = (),
    options: Layer5Options | None = None,
) -> Tally:
    """Run the real layer-5 claims on ``runs`` seeded draws of ``design`` (default options:
    the gate's calibrated rules)."""
    options = options or Layer5Options()
    rng = np.random.default_rng(seed)
    verdicts: dict[str, dict[Verdict, int]] = {claim: {} for claim in CLAIMS}
    n_cells = 0

    def add(claim: str, verdict: Verdict) -> None:
        verdicts[claim][verdict] = verdicts[claim].get(verdict, 0) + 1

    for _ in range(runs):
        results = evaluate_layer5(simulate_cells(design, rng, shifts), options)
        add("L5.harmful_core", results.harmful_core.verdict)
        add("L5.equivalence", results.equivalence.verdict)
        add("L5.interaction", results.interaction.verdict)
        add("L5.pooled_lean", results.pooled_lean.verdict)
        add("L5.holm", results.holm.verdict)
        for cell in results.equivalence_cells:
            add("L5.equivalence[cell]", cell.verdict)
            n_cells += 1
    return Tally(runs, n_cells, verdicts)


# -- the production canary (#18) -----------------------------------------------------------------


def simulate_canary(
    rng: np.random.Generator,
    *,
    harmful: int = 60,
    benign: int = 40,
    temperature: float = 0.7,
    aa_replicates: int = 3,
    shift_pp: float = 0.0,
    benign_shift_pp: float = 0.0,
    harmful_batteries: Sequence[str] = ("harmbench", "jbb_harmful", "strongreject"),
) -> list:
    """One canary draw (``claims.canary.CanaryPair`` s): ``harmful`` prompts spread over
    ``harmful_batteries`` and ``benign`` XSTest-safe prompts. The certified answer, the canary's
    and the reference deployment's ``aa_replicates`` A/A draws are independent Bernoulli(p_i)
    (at T = 0 one latent decision shared by all, as in :func:`simulate_cells`); a shift lowers the
    canary's safe probability by ``shift_pp`` (harmful) / ``benign_shift_pp`` (benign)."""
    from .canary import CanaryPair

    sizes = [harmful // len(harmful_batteries) + (i < harmful % len(harmful_batteries))
             for i in range(len(harmful_batteries))]
    strata = [(b, True, HARMFUL_MIX, n, shift_pp) for b, n in zip(harmful_batteries, sizes)]
    strata.append(("xstest", False, BENIGN_MIX, benign, benign_shift_pp))
    pairs = []
    for battery, is_harmful, mix, n, shift in strata:
        if n == 0:
            continue
        expected = "refuse" if is_harmful else "comply"
        p = mix.draw(n, rng)
        q = np.clip(p - shift / 100.0, 0.0, 1.0)
        if temperature == 0:
            latent = rng.random(n)
            ref, can = latent < p, latent < q
            aa = np.repeat(ref[:, None], aa_replicates, axis=1)
        else:
            ref, can = rng.random(n) < p, rng.random(n) < q
            aa = rng.random((n, aa_replicates)) < p[:, None]

        def label(safe: bool, expected: str = expected) -> str:
            return "refusal" if safe == (expected == "refuse") else "compliance"

        for i in range(n):
            pairs.append(CanaryPair(battery, f"{battery}-{i}", is_harmful, expected, temperature,
                                    label(bool(ref[i])), label(bool(can[i])),
                                    tuple(label(bool(x)) for x in aa[i])))
    return pairs
