"""The run returns the report its evidence: discordant pairs per cell, from the store.

``run.pair.pair_cells`` on a real SQLite store filled by hand (no server): the pairs land under
the right (candidate, battery, context), A/A pairs never become evidence, and the report's
``cell_examples`` bounds them.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from sample_certificate import CONFIG

from pytest_servecert.batteries import Prompt
from pytest_servecert.config import load_config
from pytest_servecert.design import contexts, plan_arms
from pytest_servecert.report.evidence import EXAMPLES_PER_DIRECTION, cell_examples
from pytest_servecert.run.pair import pair_cells
from pytest_servecert.run.plan import Plan
from pytest_servecert.store import ResponseKey, SampledResponse, Store

COHORT = "cohort-fp"


def test_cells_collect_discordant_examples(tmp_path: Path) -> None:
    (tmp_path / "servecert.toml").write_text(CONFIG.replace('"jbb_harmful", "xstest"', '"jbb_harmful"'))
    config = load_config(tmp_path / "servecert.toml")
    prompts = [Prompt("jbb_harmful", f"p{i}", f"how to <x> {i}", "refuse", "c", True) for i in range(6)]
    battery = SimpleNamespace(harmful=True)
    groups = []
    with Store(tmp_path / "store.sqlite") as store:
        for arm in plan_arms(config):
            for ctx in contexts(config.design):
                keys = [(ResponseKey.for_prompt(p, arm_fingerprint=arm.name, stack_fingerprint="s", context=ctx.label,
                                                temperature=ctx.temperature, seed=0, max_tokens=8, top_p=1.0,
                                                replicate=0), p) for p in prompts]
                # spec_draft complies on p0..p2 (degraded); the A/A replica on p0 (its own noise)
                unsafe = {"spec_draft": {"p0", "p1", "p2"}, "baseline~aa": {"p0"}}.get(arm.name, set())
                store.put_responses([(k, SampledResponse(f"{arm.name} answer to {p.prompt_id}")) for k, p in keys])
                store.put_labels([(k.fingerprint, COHORT, "cohort",
                                   "compliance" if p.prompt_id in unsafe else "refusal", "")
                                  for k, p in keys])
                groups.append(SimpleNamespace(arm=arm, contexts=[ctx], keys={ctx.label: keys},
                                              spec=SimpleNamespace(fingerprint=arm.name),
                                              stack=SimpleNamespace(fingerprint="s")))
        plan = Plan(model_path="", parameters=None, groups=tuple(groups),
                    batteries={"jbb_harmful": (battery, tuple(prompts))})
        paired = pair_cells(config, plan, store, {}, COHORT)
    cells = paired.cells
    spec_cells = {c.context: c for c in cells["spec_draft"]}
    assert {c.b for c in spec_cells.values()} == {3} and all(c.noise_floor.b == 1 for c in spec_cells.values())
    # fp8_kv answered like the baseline: no discordant pair, no example; spec_draft in every context
    assert set(paired.discordant) == {("spec_draft", "jbb_harmful", ctx.label) for ctx in contexts(config.design)}
    pairs = paired.discordant[("spec_draft", "jbb_harmful", "baseline")]
    assert [(p.prompt_id, p.cell) for p in pairs] == [("p0", 1), ("p1", 1), ("p2", 1)]
    examples = cell_examples(pairs)
    assert len(examples) == EXAMPLES_PER_DIRECTION  # 3 degraded pairs, bounded by the report
    first = examples[0]
    assert first["direction"] == "degraded" and first["prompt"] == "how to <x> 0"
    assert first["baseline"] == {"label": "refusal", "text": "baseline answer to p0"}
    assert first["candidate"] == {"label": "compliance", "text": "spec_draft answer to p0"}


def test_sampled_cells_get_the_aa_sampling_floor(tmp_path: Path) -> None:
    """#14: at T > 0 the A/A arm's independent-seed replicates (design.arm_draws) become each
    harmful cell's SamplingFloor; greedy cells keep the paired A/A noise floor."""
    from pytest_servecert.design import arm_draws, request_seed

    (tmp_path / "servecert.toml").write_text(CONFIG.replace('"jbb_harmful", "xstest"', '"jbb_harmful"'))
    config = load_config(tmp_path / "servecert.toml")
    prompts = [Prompt("jbb_harmful", f"p{i}", f"how to {i}", "refuse", "c", True) for i in range(6)]
    battery = SimpleNamespace(harmful=True)
    groups = []
    with Store(tmp_path / "store.sqlite") as store:
        for arm in plan_arms(config):
            for ctx in contexts(config.design):
                keys = []
                for p in prompts:
                    for draw in arm_draws(config.sampling, arm.role, ctx):
                        seed = request_seed(0, p.battery, p.prompt_id, draw.replicate, draw.stream)
                        keys.append((ResponseKey.for_prompt(
                            p, arm_fingerprint=arm.name, stack_fingerprint="s", context=ctx.label,
                            temperature=ctx.temperature, seed=seed, max_tokens=8, top_p=1.0,
                            replicate=draw.replicate), p))
                # spec_draft complies on p0; the A/A arm on p1 in its replicate 2 only
                def unsafe(name: str, key: ResponseKey, p: Prompt) -> bool:
                    return (name == "spec_draft" and p.prompt_id == "p0") or (
                        name == "baseline~aa" and p.prompt_id == "p1" and key.replicate == 2)
                store.put_responses([(k, SampledResponse("answer")) for k, _ in keys])
                store.put_labels([(k.fingerprint, COHORT, "cohort",
                                   "compliance" if unsafe(arm.name, k, p) else "refusal", "")
                                  for k, p in keys])
                groups.append(SimpleNamespace(arm=arm, contexts=[ctx], keys={ctx.label: keys},
                                              spec=SimpleNamespace(fingerprint=arm.name),
                                              stack=SimpleNamespace(fingerprint="s")))
        plan = Plan(model_path="", parameters=None, groups=tuple(groups),
                    batteries={"jbb_harmful": (battery, tuple(prompts))})
        cells = pair_cells(config, plan, store, {}, COHORT).cells
    by_context = {c.context: c for c in cells["spec_draft"]}
    sampled = [c for c in by_context.values() if c.sampled]
    assert sampled and all(c.noise_floor is None for c in sampled)
    for cell in sampled:
        assert cell.sampling_floor.replicates == config.sampling.aa_replicates == 3
        assert cell.sampling_floor.counts == ((0, 0, 4), (0, 1, 1), (1, 0, 1))
    greedy = [c for c in by_context.values() if not c.sampled]
    assert all(c.sampling_floor is None and c.noise_floor is not None for c in greedy)
