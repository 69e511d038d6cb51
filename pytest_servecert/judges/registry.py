"""Build judges from config: one factory per kind; an unknown kind is an error, never a default.

TR145's JBB bug is the reason for the loud failure: a battery missing from a task -> judge
mapping silently turned 150/150 valid refusals into UNCLEAR. Here a kind without a factory
raises :class:`~pytest_servecert.judges.base.JudgeConfigError` naming the judge and the known
kinds. The ``embedded`` kind is the project's tiny judge model (:mod:`.embedded`); ``classifier`` is its
in-process refusal classifier (:mod:`.classifier`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from .base import DEFAULT_OLLAMA_ENDPOINT, Judge, JudgeConfigError, JudgeSpec
from .llm import DEFAULT_PARAMS, JUDGE_PROMPT_SHA256, JUDGE_PROMPT_VERSION
from .regex import RegexJudge

__all__ = ["JudgeConfigLike", "build_judge", "infer_family", "known_kinds", "register_judge_kind"]


class JudgeConfigLike(Protocol):
    """The fields of ``pytest_servecert.config.JudgeConfig`` that judges use."""

    name: str
    kind: str
    model: str | None
    endpoint: str | None
    family: str | None
    api_key_env: str | None
    timeout_s: float
    concurrency: int


Factory = Callable[..., Judge]
_FACTORIES: dict[str, Factory] = {}


def register_judge_kind(kind: str, factory: Factory) -> None:
    """Register ``factory(config, *, transport=None) -> Judge`` for ``kind``."""
    _FACTORIES[kind] = factory


def known_kinds() -> tuple[str, ...]:
    """Every registered kind, sorted: the one list of judge kinds."""
    return tuple(sorted(_FACTORIES))


def infer_family(model: str) -> str:
    """Model family from a model name: the leading letters of its last path component.

    >>> infer_family("gemma3:12b"), infer_family("meta-llama/Llama-3.1-8B-Instruct")
    ('gemma', 'llama')
    """
    base = model.rsplit("/", 1)[-1].lower()
    match = re.match(r"[a-z]+", base)
    return match.group(0) if match else base


def build_judge(
    config: JudgeConfigLike, *, transport: httpx.AsyncBaseTransport | None = None
) -> Judge:
    """Build the judge described by one ``[judges.cohort.<name>]`` config entry."""
    factory = _FACTORIES.get(config.kind)
    if factory is None:
        raise JudgeConfigError(
            f"judge {config.name!r}: no judge of kind {config.kind!r} is available; known kinds: "
            + ", ".join(known_kinds())
        )
    return factory(config, transport=transport)


def _llm_spec(config: JudgeConfigLike, endpoint: str) -> JudgeSpec:
    if not config.model:
        raise JudgeConfigError(f"judge {config.name!r}: kind {config.kind!r} needs a model name")
    return JudgeSpec(
        name=config.name,
        kind=config.kind,
        model=config.model,
        endpoint=endpoint,
        family=config.family or infer_family(config.model),
        prompt_version=JUDGE_PROMPT_VERSION,
        prompt_sha256=JUDGE_PROMPT_SHA256,
        params=DEFAULT_PARAMS,
    )


def _regex(config: JudgeConfigLike, *, transport: Any = None) -> Judge:
    return RegexJudge(config.name, family=config.family or "regex")


def _openai(config: JudgeConfigLike, *, transport: httpx.AsyncBaseTransport | None = None) -> Judge:
    from .llm import OpenAICompatibleJudge

    if not config.endpoint:
        raise JudgeConfigError(
            f"judge {config.name!r}: kind 'openai' needs an endpoint, e.g. "
            "'http://127.0.0.1:8000/v1'"
        )
    return OpenAICompatibleJudge(
        _llm_spec(config, config.endpoint),
        api_key_env=config.api_key_env,
        timeout_s=config.timeout_s,
        concurrency=config.concurrency,
        transport=transport,
    )


def _ollama(config: JudgeConfigLike, *, transport: httpx.AsyncBaseTransport | None = None) -> Judge:
    from .llm import OllamaJudge

    return OllamaJudge(
        _llm_spec(config, config.endpoint or DEFAULT_OLLAMA_ENDPOINT),
        api_key_env=config.api_key_env,
        timeout_s=config.timeout_s,
        concurrency=config.concurrency,
        transport=transport,
    )


def _embedded(config: JudgeConfigLike, *, transport: httpx.AsyncBaseTransport | None = None) -> Judge:
    from .embedded import EmbeddedJudge

    if config.endpoint:
        raise JudgeConfigError(
            f"judge {config.name!r}: kind 'embedded' starts its own loopback server; remove "
            f"endpoint = {config.endpoint!r} (or use kind 'openai' for a server you run)"
        )
    return EmbeddedJudge(
        config.name,
        model_dir=config.model,  # optional: a judge model directory instead of the cached build
        family=config.family,
        timeout_s=config.timeout_s,
        concurrency=config.concurrency,
        transport=transport,
    )


def _classifier(config: JudgeConfigLike, *, transport: Any = None) -> Judge:
    from .classifier import ClassifierJudge

    if config.endpoint:
        raise JudgeConfigError(
            f"judge {config.name!r}: kind 'classifier' runs in-process; remove "
            f"endpoint = {config.endpoint!r}"
        )
    calibration = getattr(config, "calibration", None)
    return ClassifierJudge(
        config.name,
        model_path=config.model,  # optional: a saved .npz instead of the cached default build
        family=config.family,
        offline_dirs=tuple(calibration.offline_dirs) if calibration is not None else None,
        allow_download=calibration.allow_download if calibration is not None else True,
    )


register_judge_kind("regex", _regex)
register_judge_kind("classifier", _classifier)
register_judge_kind("embedded", _embedded)
register_judge_kind("openai", _openai)
register_judge_kind("ollama", _ollama)
