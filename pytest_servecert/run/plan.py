"""Plan phase: the model, the sampled prompts and the distinct servers with their request keys.

Plain data out (:class:`Plan`); nothing is sent or stored here. The draft model of a
speculative arm is built while planning (``design.server_plan`` resolves it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..batteries import Battery, Prompt, custom_battery_from_config, load_battery, subsample
from ..config import ConfigError, ServecertConfig
from ..design import (
    ArmPlan,
    Context,
    ServerPlan,
    arm_draws,
    contexts,
    plan_arms,
    request_seed,
    server_plan,
)
from ..store import ResponseKey

#: ``stack_extra(arm name, extra)`` adds fields to an arm's stack identity (CLI, benchmarks).
StackExtra = Callable[[str, dict[str, Any]], None]
Batteries = Mapping[str, tuple[Battery, tuple[Prompt, ...]]]


def resolve_model(path: str) -> str:
    """A model directory, building the embedded model for ``embedded:<kind>``."""
    if path.startswith("embedded:"):
        from ..models import ensure_model

        return str(ensure_model(path.split(":", 1)[1]))
    if not Path(path).is_dir():
        raise ConfigError(f"model path {path!r}: expected a model directory or 'embedded:target'")
    return path


def resolve_served_model(path: str, engine: str) -> str:
    """What ``engine`` serves for ``[model] path``: a model directory, or for an engine whose
    model format is GGUF (llama.cpp) a GGUF file (a directory or ``embedded:<kind>`` is
    converted offline, cached by hash)."""
    from ..serving.engine import engine_capabilities

    if engine_capabilities(engine).model_format != "gguf":
        return resolve_model(path)
    from ..models.gguf import GGUFError, resolve_gguf

    try:
        return str(resolve_gguf(path))
    except GGUFError as exc:
        raise ConfigError(f"[model] path = {path!r}: {exc}") from None


def parameter_count(model_dir: Path) -> int | None:
    """Parameters in a model directory's safetensors files (read from their headers only)."""
    if model_dir.suffix == ".gguf":
        from ..models.gguf import gguf_parameter_count

        return gguf_parameter_count(model_dir)
    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        try:
            with open(path, "rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                if not 0 < size <= 100_000_000 or size > path.stat().st_size - 8:
                    raise ValueError(f"header length {size} does not fit the file")
                header = json.loads(handle.read(size))
            for name, entry in header.items():
                if name != "__metadata__":
                    count = 1
                    for dim in entry["shape"]:
                        count *= int(dim)
                    total += count
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ConfigError(
                f"{path}: not a readable safetensors file ({type(exc).__name__}: "
                f"{(str(exc).splitlines() or [''])[0][:120]}); expected the model's weights"
            ) from None
    return total or None


@dataclass(frozen=True)
class ServerGroup:
    """One distinct server of the plan and the (context -> request keys) it serves."""

    arm: ArmPlan
    plan: ServerPlan
    spec: Any  # serving.ServerSpec
    stack: Any  # serving.stack.StackIdentity
    contexts: tuple[Context, ...]
    keys: Mapping[str, tuple[tuple[ResponseKey, Prompt], ...]]  # context label -> keys

    def all_keys(self) -> list[ResponseKey]:
        return [k for keys in self.keys.values() for k, _ in keys]


@dataclass(frozen=True)
class Plan:
    """Everything the later phases need to know before anything is sent."""

    model_path: str | None  # None: every arm is a deployment (endpoint arms, #17)
    parameters: int | None  # counted from the model files (None if unknown)
    batteries: Batteries
    groups: tuple[ServerGroup, ...]
    # #20: the calibration corpus (read with the batteries, before any boot; None: "none")
    corpus: Any = None  # calibration.CalibrationCorpus

    @cached_property
    def prompts(self) -> dict[str, Prompt]:
        """Planned response fingerprint -> its prompt (every arm, context and replicate)."""
        return {k.fingerprint: p for g in self.groups for keys in g.keys.values() for k, p in keys}

    @property
    def n_requests(self) -> int:
        return sum(len(k) for g in self.groups for k in g.keys.values())


def load_batteries(config: ServecertConfig) -> dict[str, tuple[Battery, tuple[Prompt, ...]]]:
    """Each configured battery and its subsample of ``prompts_per_cell`` prompts."""
    cfg = config.batteries
    custom = {c.id: c for c in cfg.custom}
    out = {}
    for battery_id in cfg.use:
        spec = (
            custom_battery_from_config(
                custom[battery_id], origin=f"{config.path} [batteries.custom.{battery_id}]"
            )
            if battery_id in custom
            else battery_id
        )
        battery = load_battery(
            spec,
            battery_dir=[str(d) for d in cfg.offline_dirs if d.is_dir()] or None,
            allow_download=cfg.allow_download,
        )
        prompts = subsample(battery.prompts, config.sampling.prompts_per_cell, config.sampling.seed)
        out[battery_id] = (battery, prompts)
    return out


def _context_keys(
    config: ServecertConfig, batteries: Batteries, spec: Any, stack: Any, ctx: Context,
    role: str = "baseline",
) -> tuple[tuple[ResponseKey, Prompt], ...]:
    """The requests of one arm in one context: every prompt × the arm's draws
    (:func:`design.arm_draws`: the A/A arm resamples T > 0 contexts on its own seed stream)."""
    sampling = config.sampling
    return tuple(
        (
            ResponseKey.for_prompt(
                prompt,
                arm_fingerprint=spec.fingerprint,
                stack_fingerprint=stack.fingerprint,
                context=ctx.label,
                temperature=ctx.temperature,
                seed=request_seed(
                    sampling.seed, battery_id, prompt.prompt_id, draw.replicate, draw.stream
                ),
                max_tokens=sampling.max_tokens,
                top_p=sampling.top_p,
                replicate=draw.replicate,
            ),
            prompt,
        )
        for battery_id, (_, prompts) in batteries.items()
        for prompt in prompts
        for draw in arm_draws(sampling, role, ctx)
    )


def build_groups(
    config: ServecertConfig, model_path: str | None, batteries: Batteries, stack_extra: StackExtra | None,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[ServerGroup, ...]:
    """One group per distinct (arm, server argv, env), in plan order."""
    from ..serving import ServerSpec
    from ..serving.scaleout import endpoint_spec_and_identity
    from ..serving.stack import collect_stack_identity

    heads: dict[tuple, tuple[ArmPlan, ServerPlan, Any, Any]] = {}
    members: dict[tuple, list[Context]] = {}
    for arm in plan_arms(config):
        for ctx in contexts(config.design):
            plan = server_plan(config, arm, ctx, resolve_model)
            key = (arm.name, plan.args, plan.env)
            label = f"{arm.name}:{','.join(f'{k}={v}' for k, v in plan.settings)}"
            if arm.config.is_endpoint:  # #17: a running deployment, probed and verified now
                key = (arm.name, plan.settings)
                if key not in heads:
                    spec, stack = endpoint_spec_and_identity(config, arm, ctx, label, stack_extra, progress)
                    heads[key] = (arm, plan, spec, stack)
                    members[key] = []
            elif key not in heads:
                spec = ServerSpec(
                    engine=config.engine.name,
                    model=model_path,
                    args=plan.args,
                    env=plan.env,
                    label=label,
                    served_model_name=config.model.name,
                )
                extra: dict[str, Any] = {}
                if stack_extra is not None:
                    stack_extra(arm.name, extra)
                heads[key] = (arm, plan, spec, collect_stack_identity(spec, extra=extra))
                members[key] = []
            members[key].append(ctx)
    return tuple(
        ServerGroup(
            arm=arm, plan=plan, spec=spec, stack=stack, contexts=tuple(members[key]),
            keys={c.label: _context_keys(config, batteries, spec, stack, c, arm.role)
                  for c in members[key]},
        )
        for key, (arm, plan, spec, stack) in heads.items()
    )
