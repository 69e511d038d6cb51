"""What a running deployment states about itself, checked against what the config declares.

An endpoint arm boots nothing, so its server axes cannot be *set*; they are declared
(``kv_cache_dtype = "fp8"``) and verified here before any prompt is sent. Each replica is asked:

* ``GET /version``     the engine version (vLLM: ``{"version": "0.32.0"}``);
* ``GET /v1/models``   the served names, ``root`` (the weights it loaded), ``max_model_len``;
* ``GET /metrics``     vLLM's Prometheus text, parsed with ``prometheus_client``:
  ``vllm:cache_config_info`` carries the CacheConfig as labels (``cache_dtype``,
  ``enable_prefix_caching``, ``block_size``, ...); the ``vllm:spec_decode_*`` counters exist
  only when speculative decoding is on, and ``..._num_accepted_tokens_per_pos`` has one
  ``position`` per speculative token (vLLM 0.32 states no method or draft model).

A declared axis the servers contradict is a :class:`DeploymentMismatchError` (one line);
replicas of one deployment that state different identities are one too. What the servers
state, the declared axes, ``[arms.x] identity`` and the ``pytest_servecert_stack_info`` hook's
fields make the :class:`DeploymentIdentity`, whose fingerprint keys every stored answer: a
redeployed candidate never reuses old answers. Declared fields no server stated are listed
as ``declared_only`` in the certificate.

Keys and header values are read from the environment when a request is built and never
stored in any of these objects. Loopback replicas are reached without environment proxies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import ConfigError
from .stack import canonical_extra

__all__ = [
    "DeploymentIdentity",
    "DeploymentMismatchError",
    "EndpointSpec",
    "ReplicaIdentity",
    "auth_headers",
    "deployment_identity",
    "is_loopback_url",
    "parse_metrics",
    "plan_deployment",
    "probe_replica",
    "replica_root",
]

#: ``vllm:cache_config_info`` labels that depend on the machine's free memory, not on the
#: deployment's flags: recorded, never fingerprinted (two identical replicas may differ).
VOLATILE_CACHE_LABELS = frozenset({
    "num_gpu_blocks", "num_cpu_blocks", "kv_cache_size_tokens", "kv_cache_max_concurrency",  # sizes
    "engine", "model_name",  # which engine of a data-parallel server, not what it runs
})
# A label that is an object's repr ("<X object at 0x7f..>") differs per process, never per flag.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_SPEC_COUNTER = "vllm:spec_decode_num_drafts"
_SPEC_PER_POS = "vllm:spec_decode_num_accepted_tokens_per_pos"


class DeploymentMismatchError(ConfigError):
    """The deployment is not what the config declares (or its replicas disagree)."""


def replica_root(url: str) -> str:
    """``http://h:8000/v1`` -> ``http://h:8000`` (where ``/version`` and ``/metrics`` live)."""
    return url.rstrip("/").removesuffix("/v1")


def is_loopback_url(url: str) -> bool:
    from ..judges.gate import is_loopback_endpoint  # one definition of "loopback"

    return is_loopback_endpoint(url)


def auth_headers(api_key_env: str | None, headers_env: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """Request headers from the environment (read now; never stored, logged or fingerprinted)."""
    out = {}
    if api_key_env is not None:
        token = os.environ.get(api_key_env)
        if not token:
            raise ConfigError(f"environment variable {api_key_env!r} (api_key_env) is not set")
        out["Authorization"] = f"Bearer {token}"
    for header, name in headers_env:
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"environment variable {name!r} (headers_env {header!r}) is not set")
        out[header] = value
    return out


# ---------------------------------------------------------------------------------------------
# one replica


@dataclass(frozen=True)
class ReplicaIdentity:
    """What one replica stated (``stated``), or why it could not be asked (``unreachable``)."""

    url: str
    stated: Mapping[str, Any] = field(default_factory=dict)
    recorded: Mapping[str, Any] = field(default_factory=dict)  # stated but volatile (not keyed)
    unreachable: str | None = None

    @property
    def reachable(self) -> bool:
        return self.unreachable is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "stated": dict(self.stated), "recorded": dict(self.recorded)}
        if self.unreachable is not None:
            out["unreachable"] = self.unreachable
        return out


def parse_metrics(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(stated, recorded) from vLLM's Prometheus ``/metrics`` text.

    ``stated`` holds every ``vllm:*_config_info`` gauge's labels (without the volatile ones)
    and ``speculative``: ``{"enabled": False}``, or ``{"enabled": True,
    "num_speculative_tokens": k}`` from the per-position counter.
    """
    from prometheus_client.parser import text_string_to_metric_families

    stated: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    positions: set[str] = set()
    speculative = False
    for family in text_string_to_metric_families(text):
        if family.name.startswith("vllm:") and family.name.endswith("_config_info"):
            key = family.name.removeprefix("vllm:").removesuffix("_info")
            # One sample per engine (data parallelism): they must agree, except in volatile labels.
            kept = {
                json.dumps({k: _ADDRESS.sub("", v) for k, v in s.labels.items() if k not in VOLATILE_CACHE_LABELS},
                           sort_keys=True)
                for s in family.samples
            }
            values = [json.loads(k) for k in sorted(kept)]
            stated[key] = values[0] if len(values) == 1 else values
            volatile = [{k: v for k, v in s.labels.items() if k in VOLATILE_CACHE_LABELS} for s in family.samples]
            if any(volatile):
                recorded[key] = volatile
        elif family.name == _SPEC_COUNTER:
            speculative = True
        elif family.name == _SPEC_PER_POS:
            speculative = True
            positions |= {s.labels.get("position", "") for s in family.samples}
    spec: dict[str, Any] = {"enabled": speculative}
    if positions:
        spec["num_speculative_tokens"] = len(positions - {""})
    if stated or speculative:  # a /metrics without vLLM's families states nothing about either
        stated["speculative"] = spec
    return stated, recorded


def probe_replica(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> ReplicaIdentity:
    """Ask one replica what it runs (``/version``, ``/v1/models``, ``/metrics``).

    A replica that does not answer ``/v1/models`` is unreachable (the reason says why);
    a missing ``/version`` or ``/metrics`` (not vLLM, or hidden by a gateway) states nothing.
    """
    root = replica_root(url)
    stated: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    try:
        with httpx.Client(
            base_url=root, headers=dict(headers or {}), timeout=timeout_s, transport=transport,
            trust_env=not is_loopback_url(url),  # loopback traffic never via a proxy
        ) as client:
            models = client.get("/v1/models")
            if models.status_code != 200:
                return ReplicaIdentity(
                    url, unreachable=f"GET /v1/models: HTTP {models.status_code}: {models.text[:200]}"
                )
            try:
                data = models.json()["data"]
                stated["models"] = {
                    str(m["id"]): {k: m[k] for k in ("root", "max_model_len") if m.get(k) is not None}
                    for m in data
                }
            except (ValueError, KeyError, TypeError):
                return ReplicaIdentity(
                    url, unreachable=f"GET /v1/models: not an OpenAI model list: {models.text[:200]}"
                )
            version = client.get("/version")
            if version.status_code == 200:
                try:
                    stated["version"] = str(version.json()["version"])
                except (ValueError, KeyError, TypeError):
                    pass
            metrics = client.get("/metrics")
            if metrics.status_code == 200:
                try:
                    found, volatile = parse_metrics(metrics.text)
                except ValueError:  # not Prometheus text
                    found, volatile = {}, {}
                stated |= found
                recorded |= volatile
    except httpx.HTTPError as exc:
        return ReplicaIdentity(url, unreachable=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return ReplicaIdentity(url, stated=stated, recorded=recorded)


# ---------------------------------------------------------------------------------------------
# the deployment


@dataclass(frozen=True)
class DeploymentIdentity:
    """One endpoint arm's verified identity (the ``stack`` of its answers).

    ``fingerprint`` covers the model name, what the servers state, the declared axes, the
    declared ``identity`` and the hook's ``extra``; never URLs' credentials or headers.
    """

    arm: str
    model: str
    stated: Mapping[str, Any]
    declared: Mapping[str, Any]
    declared_only: tuple[str, ...]
    identity: Mapping[str, str]
    extra: Mapping[str, str]
    replicas: tuple[ReplicaIdentity, ...]

    @property
    def reachable(self) -> tuple[ReplicaIdentity, ...]:
        return tuple(r for r in self.replicas if r.reachable)

    @property
    def unreachable_reason(self) -> str:
        """Each replica's reason, when none can be asked."""
        return "; ".join(f"{r.url}: {r.unreachable}" for r in self.replicas if not r.reachable)

    def _keyed(self) -> dict[str, Any]:
        return {
            "engine": "endpoint",
            "model": self.model,
            "stated": self.stated,
            "declared": self.declared,
            "identity": dict(self.identity),
            "extra": dict(self.extra),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._keyed(),
            "declared_only": list(self.declared_only),
            "replicas": [r.to_dict() for r in self.replicas],
        }

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self._keyed(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _declared_axes(settings: Mapping[str, Any]) -> dict[str, Any]:
    from ..config import SERVER_AXES

    return {k: v for k, v in settings.items() if k in SERVER_AXES}


def _check_axes(arm: str, model: str, declared: Mapping[str, Any], stated: Mapping[str, Any], url: str) -> list[str]:
    """Raise on a contradiction; return the declared fields the server did not state."""
    served = stated.get("models", {})
    if model not in served:
        raise DeploymentMismatchError(
            f"[arms.{arm}] model = {model!r}: {url} serves {', '.join(map(repr, served)) or 'no model'}"
        )
    cache = stated.get("cache_config")
    cache = cache if isinstance(cache, Mapping) else {}  # several engines that disagree: no single value
    spec = stated.get("speculative")
    declared_only: list[str] = []

    def contradiction(axis: str, value: Any, says: str) -> DeploymentMismatchError:
        return DeploymentMismatchError(
            f"[arms.{arm}] {axis} = {value!r} is declared, but {url} reports {says}: "
            "this is not the deployment the config describes"
        )

    for axis, value in declared.items():
        if axis == "kv_cache_dtype":
            if "cache_dtype" not in cache:
                declared_only.append(axis)
            elif cache["cache_dtype"] != str(value):
                raise contradiction(axis, value, f"cache_dtype={cache['cache_dtype']!r} (vllm:cache_config_info)")
        elif axis == "prefix_caching":
            if "enable_prefix_caching" not in cache:
                declared_only.append(axis)
            elif (cache["enable_prefix_caching"].lower() == "true") != bool(value):
                raise contradiction(axis, value,
                                    f"enable_prefix_caching={cache['enable_prefix_caching']} (vllm:cache_config_info)")
        elif axis == "speculative":
            on = isinstance(value, Mapping)
            if spec is None:
                declared_only.append(axis)
                continue
            if spec["enabled"] != on:
                says = ("speculative decoding counters (vllm:spec_decode_*)" if spec["enabled"]
                        else "no speculative decoding counters")
                raise contradiction(axis, value if on else "off", says)
            if on:
                k = value.get("num_speculative_tokens")
                if k is not None and "num_speculative_tokens" in spec and spec["num_speculative_tokens"] != k:
                    raise contradiction(axis, value,
                                        f"{spec['num_speculative_tokens']} draft positions ({_SPEC_PER_POS})")
                # vLLM states neither the method nor the draft model
                declared_only += [f"speculative.{k}" for k in sorted(value)
                                  if k != "num_speculative_tokens" or "num_speculative_tokens" not in spec]
    return declared_only


def deployment_identity(
    arm: str,
    *,
    model: str,
    endpoints: Sequence[str],
    settings: Mapping[str, Any],
    identity: Mapping[str, str] = {},
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
    transport_for: Callable[[str], httpx.BaseTransport | None] = lambda url: None,
) -> DeploymentIdentity:
    """Probe every replica, verify the declared axes, and check the replicas agree.

    Raises
    ------
    DeploymentMismatchError
        A declared axis or the model contradicts a replica, or two replicas differ.
    """
    replicas = tuple(
        probe_replica(url, headers=headers, timeout_s=timeout_s, transport=transport_for(url)) for url in endpoints
    )
    declared = _declared_axes(settings)
    reachable = [r for r in replicas if r.reachable]
    stated: dict[str, Any] = {}
    declared_only: list[str] = sorted(declared)
    if reachable:
        first = reachable[0]
        for other in reachable[1:]:
            if other.stated != first.stated:
                field_name = next(
                    k for k in sorted(set(first.stated) | set(other.stated))
                    if first.stated.get(k) != other.stated.get(k)
                )
                raise DeploymentMismatchError(
                    f"[arms.{arm}] endpoints: replicas differ in {field_name}: {first.url} reports "
                    f"{first.stated.get(field_name)!r}, {other.url} reports {other.stated.get(field_name)!r}; "
                    "the replicas of one arm must be one deployment"
                )
        declared_only = _check_axes(arm, model, declared, first.stated, first.url)
        # Only the served model's entry identifies the answers (other models may come and go).
        stated = {k: v for k, v in first.stated.items() if k != "models"}
        stated["model"] = first.stated["models"][model]
    return DeploymentIdentity(
        arm=arm,
        model=model,
        stated=stated,
        declared={k: v for k, v in sorted(declared.items())},
        declared_only=tuple(declared_only),
        identity=dict(identity),
        extra=dict(canonical_extra(extra or {})),  # refuses secret-looking keys
        replicas=replicas,
    )


# ---------------------------------------------------------------------------------------------
# what the runner keys an endpoint arm's answers by


@dataclass(frozen=True)
class EndpointSpec:
    """The "server spec" of one deployment of an endpoint arm (its answers' arm fingerprint).

    The fingerprint covers the model name, the replica URLs (two lists of URLs are two
    deployments unless proven otherwise), the declared server axes and the instance (the
    A/A arm asks the same deployment a second time). The key, header values and limits are
    not part of it; the verified identity is (as the stack fingerprint).
    """

    arm: str
    model: str
    endpoints: tuple[str, ...]
    settings: tuple[tuple[str, Any], ...] = ()
    instance: str = ""
    label: str = ""
    api_key_env: str | None = None
    headers_env: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 120.0
    engine: str = "endpoint"

    @property
    def fingerprint(self) -> str:
        data = {
            "engine": self.engine,
            "model": self.model,
            "endpoints": sorted(self.endpoints),
            "settings": [list(kv) for kv in self.settings],
            "instance": self.instance,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()

    def headers(self) -> dict[str, str]:
        return auth_headers(self.api_key_env, self.headers_env)


def plan_deployment(
    spec: EndpointSpec,
    *,
    identity: Mapping[str, str] = {},
    extra: Mapping[str, Any] | None = None,
    transport_for: Callable[[str], httpx.BaseTransport | None] = lambda url: None,
) -> DeploymentIdentity:
    """Probe and verify the deployment ``spec`` names (raises :class:`DeploymentMismatchError`)."""
    return deployment_identity(
        spec.arm, model=spec.model, endpoints=spec.endpoints, settings=dict(spec.settings),
        identity=identity, extra=extra, headers=spec.headers(), timeout_s=min(30.0, spec.timeout_s),
        transport_for=transport_for,
    )
