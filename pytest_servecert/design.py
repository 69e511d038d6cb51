"""Serving-state designs: axes → contexts → which server flags and request params each needs.

An *axis* is a serving knob; a *context* is one setting of the varied knobs. Server axes
(``kv_cache_dtype``, ``prefix_caching``, ``speculative``) change the server's argv, so contexts
that share them share one server; client axes (``batch_size`` = client concurrency, as in TR145's
dispatch pattern, and ``temperature``) vary inside one server launch.

``star`` is TR152's design (seed 000 SS3): the center (every axis at its first level) plus one
spoke per off-center level, each deviating on exactly one axis. ``full`` crosses every level of
every axis, which also covers the joint interactions TR152 could not measure.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import SERVER_AXES, ArmConfig, DesignConfig, SamplingConfig, ServecertConfig

CENTER_LABEL = "baseline"


def format_level(axis: str, value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return str(value.get("method") or value.get("model") or "on")
    return str(value)


@dataclass(frozen=True)
class Context:
    """One setting of the design's axes; ``deviates`` names the off-center axes."""

    levels: tuple[tuple[str, Any], ...]
    deviates: tuple[str, ...]

    @property
    def label(self) -> str:
        if not self.deviates:
            return CENTER_LABEL
        values = dict(self.levels)
        return ",".join(f"{axis}={format_level(axis, values[axis])}" for axis in self.deviates)

    def get(self, axis: str, default: Any = None) -> Any:
        return dict(self.levels).get(axis, default)

    @property
    def server_levels(self) -> dict[str, Any]:
        return {a: v for a, v in self.levels if a in SERVER_AXES}

    @property
    def temperature(self) -> float:
        return float(self.get("temperature", 0.0))

    @property
    def batch_size(self) -> int:
        return int(self.get("batch_size", 1))


def contexts(design: DesignConfig) -> tuple[Context, ...]:
    """The contexts of a design, center first."""
    axes = list(design.axes.items())
    center = tuple((axis, levels[0]) for axis, levels in axes)
    if design.kind == "star":
        out = [Context(levels=center, deviates=())]
        for i, (axis, levels) in enumerate(axes):
            for level in levels[1:]:
                spoke = center[:i] + ((axis, level),) + center[i + 1 :]
                out.append(Context(levels=spoke, deviates=(axis,)))
        return tuple(out)
    out = []
    for combo in itertools.product(*(levels for _, levels in axes)):
        levels = tuple((axis, value) for (axis, _), value in zip(axes, combo))
        deviates = tuple(axis for (axis, lv), value in zip(axes, combo) if value != lv[0])
        out.append(Context(levels=levels, deviates=deviates))
    return tuple(out)


def naive_server_count(config: ServecertConfig) -> int:
    """Boots a harness would need with one server per (arm, context) cell."""
    return len(plan_arms(config)) * len(contexts(config.design))


# ---------------------------------------------------------------------------------------------
# server flags


ModelResolver = Callable[[str], str]


def vllm_axis_args(settings: Mapping[str, Any], resolve_model: ModelResolver) -> list[str]:
    """vLLM flags for the server axes in ``settings`` (unset axes keep the engine default)."""
    _check_expressible("vllm", settings)
    args: list[str] = []
    dtype = settings.get("kv_cache_dtype")
    if dtype is not None:
        args += ["--kv-cache-dtype", str(dtype)]
    if "prefix_caching" in settings:
        # V1 enables prefix caching by default, so "off" must be explicit.
        args.append("--enable-prefix-caching" if settings["prefix_caching"] else "--no-enable-prefix-caching")
    spec = settings.get("speculative")
    if isinstance(spec, dict):
        spec = dict(spec)
        if "model" in spec:
            spec["model"] = resolve_model(str(spec["model"]))
        args += ["--speculative-config", json.dumps(spec, sort_keys=True)]
    return args


def llamacpp_axis_args(settings: Mapping[str, Any], resolve_model: ModelResolver) -> list[str]:
    """llama.cpp flags for the server axes in ``settings``: the KV-cache type as ggml type ids.

    Flash attention (which a quantized V cache needs) is on by default for every arm of this
    engine (serving/llamacpp.py), so arms differ only in the cache type. Axes and levels
    llama.cpp cannot express are refused here as in the config (its engine capabilities).
    """
    from .serving.llamacpp import KV_CACHE_TYPES

    _check_expressible("llamacpp", settings)
    args: list[str] = []
    dtype = settings.get("kv_cache_dtype")
    if dtype is not None:
        type_id = str(KV_CACHE_TYPES[dtype])
        args += ["--type_k", type_id, "--type_v", type_id]
    return args


ENGINE_AXIS_ARGS: dict[str, Callable[[Mapping[str, Any], ModelResolver], list[str]]] = {
    "vllm": vllm_axis_args,
    "llamacpp": llamacpp_axis_args,
}


@dataclass(frozen=True)
class ArmPlan:
    """An arm as the runner sees it. ``role`` is baseline, candidate or aa (baseline replica)."""

    name: str
    role: str
    config: ArmConfig


def plan_arms(config: ServecertConfig) -> tuple[ArmPlan, ...]:
    arms = [ArmPlan("baseline", "baseline", config.baseline)]
    arms += [ArmPlan(a.name, "candidate", a) for a in config.candidates]
    if config.aa_arm:
        # The baseline served by a second, independent server instance: the noise floor.
        arms.append(ArmPlan("baseline~aa", "aa", config.baseline))
    return tuple(arms)


@dataclass(frozen=True)
class ServerPlan:
    """The server one (arm, server-axis levels) pair needs."""

    arm: str
    role: str
    settings: tuple[tuple[str, Any], ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]


def server_plan(
    config: ServecertConfig, arm: ArmPlan, context: Context, resolve_model: ModelResolver
) -> ServerPlan:
    settings = {**arm.config.settings, **context.server_levels}
    settings = {k: v for k, v in settings.items() if k in SERVER_AXES}
    if arm.config.is_endpoint:
        # A running deployment: its server axes are declared (and verified), never set.
        args: tuple[str, ...] = ()
        env: dict[str, str] = {}
    else:
        to_args = ENGINE_AXIS_ARGS.get(config.engine.name)
        if to_args is None:
            raise ValueError(f"engine {config.engine.name!r} has no axis mapping")
        args = (*config.engine.args, *to_args(settings, resolve_model), *arm.config.args)
        env = dict(config.engine.env) | dict(arm.config.env)
    if arm.role == "aa":
        # A distinct env makes a distinct server spec, hence a separate process.
        env["SERVECERT_INSTANCE"] = "aa"
    return ServerPlan(
        arm=arm.name,
        role=arm.role,
        settings=tuple(sorted((k, _canonical(v)) for k, v in settings.items())),
        args=tuple(args),
        env=tuple(sorted(env.items())),
    )


def _check_expressible(engine: str, settings: Mapping[str, Any]) -> None:
    """Refuse an axis or level the engine cannot express (the config refuses it first)."""
    from .serving.engine import engine_capabilities

    can = engine_capabilities(engine).axes
    for axis, value in sorted(settings.items()):
        if axis not in can:
            raise ValueError(f"engine {engine!r} cannot express the axis {axis!r}")
        allowed = can[axis]
        if allowed is not None and value not in allowed:
            raise ValueError(
                f"engine {engine!r}: {axis} = {value!r}: expected one of {', '.join(allowed)}"
            )


def _canonical(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value


#: The seed stream of the A/A arm's T > 0 replicates: independent of the baseline's draws.
AA_STREAM = "aa"


def request_seed(
    base_seed: int, battery: str, prompt_id: str, replicate: int, stream: str = ""
) -> int:
    """Per-request seed. The default stream is shared by every arm and context, so T > 0
    pairs share their draw; another ``stream`` (the A/A arm's) gives independent seeds."""
    key = f"{base_seed}|{battery}|{prompt_id}|{replicate}" + (f"|{stream}" if stream else "")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Draw:
    """One planned request per prompt: its replicate number and seed stream."""

    replicate: int
    stream: str = ""


def arm_draws(sampling: SamplingConfig, role: str, context: Context) -> tuple[Draw, ...]:
    """Which requests an arm sends per prompt in a context.

    Baseline and candidates: ``[sampling] replicates`` draws on the shared seed stream. The
    A/A arm at T = 0 does the same (on a deterministic engine its answers repeat the
    baseline's; any difference is the engine's own non-determinism, the greedy floor). At
    T > 0 it sends ``[sampling] aa_replicates`` draws on its own stream: the sampling floor
    (:func:`pytest_servecert.stats.sampling_floor_test`).
    """
    if role == "aa" and context.temperature > 0:
        return tuple(Draw(r, AA_STREAM) for r in range(sampling.aa_replicates))
    return tuple(Draw(r) for r in range(sampling.replicates))


def planned_requests(config: ServecertConfig, prompts_per_battery: Mapping[str, int]) -> int:
    """Requests the design needs: arms × contexts × prompts × draws (before any reuse)."""
    total = 0
    for arm in plan_arms(config):
        for ctx in contexts(config.design):
            draws = len(arm_draws(config.sampling, arm.role, ctx))
            total += draws * sum(prompts_per_battery.values())
    return total
