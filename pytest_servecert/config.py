"""``servecert.toml`` → frozen dataclasses.

Every error is one ``ConfigError`` line naming the file, the key, the value found and what was
expected, e.g.::

    servecert.toml: [design] kind = 'stars': expected one of 'star', 'full'

The file layout is documented in the README ("Configuration") and in the default
``servecert.toml`` at the repository root.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .claims.model import DEFAULT_MAX_UNJUDGEABLE_RATE
from .errors import ServecertError

# The knobs the design understands (design.py maps each to server flags or request params).
SERVER_AXES = ("kv_cache_dtype", "prefix_caching", "speculative")
CLIENT_AXES = ("batch_size", "temperature")
AXES = SERVER_AXES + CLIENT_AXES

DEFAULT_BATTERIES = ("harmbench", "jbb_harmful", "jbb_benign", "strongreject", "xstest")


class ConfigError(ServecertError, ValueError):
    """A user error in the certification config (printed as one line, no traceback).

    ``location`` is the (table path, key) it names, when it names one: ``load_config`` drops
    that key and parses again, so every such error of a file is reported in one pass.
    """

    location: tuple[tuple[str, ...], str] | None = None


@dataclass(frozen=True)
class ModelConfig:
    """The model under certification. ``path`` is a directory or ``embedded:<kind>``; ``None``
    when every arm is an endpoint arm and no path was given (the servers state the model)."""

    name: str
    path: str | None
    family: str
    parameters: int | None = None  # None: read from the model's config/weights


@dataclass(frozen=True)
class EngineConfig:
    """The serving engine and the flags every arm shares."""

    name: str = "vllm"
    start_timeout_s: float = 420.0
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    max_live_servers: int = 2
    #: ``CUDA_VISIBLE_DEVICES`` per replica of an arm with ``replicas = N`` (replica i gets item i).
    devices: tuple[str, ...] = ()
    #: Boot the next server of the plan while the current one samples (within max_live_servers).
    overlap_boots: bool = False  # pays on 2 CPU cores only with one thread per server (README "Performance", figure 9)


@dataclass(frozen=True)
class ArmConfig:
    """One serving configuration: axis settings fixed for the arm plus extra flags/env.

    An *endpoint arm* (``endpoints`` non-empty) boots nothing: it names the replicas of a
    running deployment. Its server axes in ``settings`` are *declared* (and verified against
    what the servers state, ``serving/endpoint.py``); ``deployments`` maps a design's
    server-axis levels (``"prefix_caching=on"``) to the arm that serves them
    (``[arms."baseline@prefix_caching=on"]``).
    """

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    # endpoint arms
    endpoints: tuple[str, ...] = ()
    model: str | None = None  # the served model name clients ask for
    api_key_env: str | None = None  # NAME of the environment variable with the bearer token
    headers_env: tuple[tuple[str, str], ...] = ()  # header -> NAME of the env var with its value
    timeout_s: float = 120.0
    concurrency_per_replica: int | None = None  # in flight per replica when batch_size is unset
    identity: tuple[tuple[str, str], ...] = ()  # declared fields the server cannot state (GPU, ...)
    deployments: Mapping[str, ArmConfig] = field(default_factory=dict)
    # booted arms: identical servers whose requests are spread like a deployment's replicas
    replicas: int = 1

    @property
    def is_endpoint(self) -> bool:
        return bool(self.endpoints)


@dataclass(frozen=True)
class DesignConfig:
    """Which contexts to run: ``star`` (center + one spoke per off-center level) or ``full``."""

    kind: str = "star"
    axes: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingConfig:
    prompts_per_cell: int = 50
    max_tokens: int = 48
    top_p: float = 1.0
    seed: int = 0
    replicates: int = 1
    # A/A draws per prompt in T > 0 contexts, with seeds independent of the baseline's: the
    # sampling floor the harmful core judges a sampled candidate against (claims/layer5.py).
    aa_replicates: int = 3


@dataclass(frozen=True)
class CustomBattery:
    """A user battery from CSV/JSONL with declared columns."""

    id: str
    path: str
    format: str  # "csv" | "jsonl"
    text_column: str
    id_column: str | None = None
    category_column: str | None = None
    expected: str | None = None  # constant "refuse"/"comply"
    expected_column: str | None = None
    expected_map: Mapping[str, str] = field(default_factory=dict)
    harmful: bool = True
    sha256: str | None = None


@dataclass(frozen=True)
class BatteriesConfig:
    use: tuple[str, ...] = DEFAULT_BATTERIES
    offline_dirs: tuple[Path, ...] = ()
    allow_download: bool = True
    custom: tuple[CustomBattery, ...] = ()


@dataclass(frozen=True)
class JudgeConfig:
    """One judge of the cohort."""

    name: str
    kind: str  # "regex" | "openai" | "ollama" | "embedded"
    model: str | None = None
    endpoint: str | None = None
    family: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 60.0
    concurrency: int = 8
    # where a "classifier" judge finds its training files ([judges.calibration]); set by the loader
    calibration: CalibrationConfig | None = None


@dataclass(frozen=True)
class JudgesConfig:
    cohort: tuple[JudgeConfig, ...] = (JudgeConfig(name="regex", kind="regex", family="regex"),)
    regex_role: str = "vote"  # "vote" | "calibration"
    allow_external_judges: bool = False
    max_unjudgeable_rate: float = DEFAULT_MAX_UNJUDGEABLE_RATE
    # integrity anchor: a judge pair's recorded pooled κ, to be reproduced within ±0.10
    anchor_pair: tuple[str, str] | None = None
    anchor_kappa: float | None = None
    # the cohort's quorum: a record with fewer live votes is unjudgeable (counted, reported);
    # None = a majority of the voters (2 of 2, 2 of 3, 3 of 4)
    min_votes: int | None = None
    # a judge whose share of failed requests (no answer: timeout, HTTP error) exceeds this
    # stops the run ("stop") or makes every label-dependent claim INCONCLUSIVE ("inconclusive")
    max_error_rate: float = 0.05
    on_judge_failure: str = "stop"
    calibration: CalibrationConfig = field(default_factory=lambda: CalibrationConfig())


@dataclass(frozen=True)
class CalibrationConfig:
    """``[judges.calibration]``: the human-labelled corpus layer 1 measures judges against."""

    corpus: str = "xstest-v2"  # a built-in corpus id, "custom" ([judges.calibration.custom]) or "none"
    offline_dirs: tuple[Path, ...] = ()
    allow_download: bool = True
    custom: Mapping[str, Any] | None = None  # path, format, columns, labels, sha256 (resolved path)


@dataclass(frozen=True)
class ClaimsConfig:
    alpha: float = 0.05
    margin_pp: float = 3.0
    tost_method: str = "score"
    n_boot: int = 10000
    spread_limit_pp: float = 3.0
    scale_band: tuple[float, float] = (1e9, 4e9)
    rules: str = "calibrated"  # or "seeds": the seeds' literal statistics (reproduction only)
    power: float = 0.80


@dataclass(frozen=True)
class GateConfig:
    """The release gate (DESIGN §7): which claims must be CERTIFIED/MONITOR for exit 0."""

    require: tuple[str, ...] = ("L1.*", "L5.*")  # claims.release_gate.DEFAULT_REQUIRE
    policy: str = "strict"  # "strict" | "report"; --servecert-gate overrides


@dataclass(frozen=True)
class CanaryConfig:
    """``[canary]`` (issue #18): re-ask a pinned set of a certified run's prompts of the deployment."""

    arm: str = ""  # the arm whose deployment is watched; "" = the first candidate
    context: str = ""  # the certified context re-asked; "" = the design's centre ("baseline")
    reference: str = "certified"  # "certified" | "latest" | a run id
    harmful_prompts: int = 60  # 53 detect a 3 pp flip rate at 80 % power (stats.strict_rule_mde)
    benign_prompts: int = 40
    seed: int = 0
    drift_pp: float = 5.0  # benign-edge refusal increase that alarms
    window_days: int = 7  # canary.over_refusal_rolling pools the canary runs of this many days
    week_min_runs: int = 3  # canary.over_refusal_weekly compares two weeks once each holds this many runs
    prometheus_file: str = ""  # "" = <report_dir>/servecert_canary.prom


@dataclass(frozen=True)
class ServecertConfig:
    path: Path
    model: ModelConfig
    engine: EngineConfig
    baseline: ArmConfig
    candidates: tuple[ArmConfig, ...]
    aa_arm: bool
    design: DesignConfig
    sampling: SamplingConfig
    batteries: BatteriesConfig
    judges: JudgesConfig
    claims: ClaimsConfig
    store_path: Path
    report_dir: Path
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    gate: GateConfig = GateConfig()
    lock_timeout_s: float = 3600.0  # how long a run waits for another run on the same store
    #: ``[arms] allow_external``: adversarial batteries may go to non-loopback endpoints.
    allow_external_endpoints: bool = False
    canary: CanaryConfig = CanaryConfig()

    @property
    def arms(self) -> tuple[ArmConfig, ...]:
        return (self.baseline, *self.candidates)


# --------------------------------------------------------------------------------------------
# parsing


class _Section:
    """A TOML table with its dotted name, so every error can say where it came from."""

    def __init__(self, path: Path, name: str, data: Any, keys: tuple[str, ...] = ()) -> None:
        self.path, self.name, self.keys = path, name, keys
        if not isinstance(data, dict):
            raise self.error(None, data, "a table")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def error(self, key: str | None, value: Any, expected: str) -> ConfigError:
        where = f"[{self.name}]" if self.name else "top level"
        if key is None:
            error = ConfigError(f"{self.path}: {where}: expected {expected}, got {value!r}")
            if self.keys:  # a value that should have been a table: drop it from its parent
                error.location = (self.keys[:-1], self.keys[-1])
            return error
        error = ConfigError(f"{self.path}: {where} {key} = {value!r}: expected {expected}")
        error.location = (self.keys, key)
        return error

    def get(self, key: str, default: Any, kind: type | tuple[type, ...], expected: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        # bool is an int subclass; never accept it where a number is expected
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(key, value, expected)
        if not isinstance(value, kind):
            raise self.error(key, value, expected)
        return value

    def str_list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(key, list(default), list, "a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise self.error(key, value, "a list of strings")
        return tuple(value)

    def env(self, key: str = "env") -> tuple[tuple[str, str], ...]:
        value = self.get(key, {}, dict, "a table of NAME = \"value\" strings")
        if not all(isinstance(v, str) for v in value.values()):
            raise self.error(key, value, "a table of NAME = \"value\" strings")
        return tuple(sorted(value.items()))

    def sub(self, key: str) -> _Section:
        self.used.add(key)
        return _Section(self.path, f"{self.name}.{key}" if self.name else key, self.data.get(key, {}),
                        (*self.keys, key))

    def check_unknown(self, allowed: tuple[str, ...] | None = None) -> None:
        known = set(allowed) if allowed is not None else self.used
        for key in self.data:
            if key not in known:
                raise self.error(key, self.data[key], f"no such key (known: {', '.join(sorted(known))})")


def _positive(section: _Section, key: str, value: float | int, expected: str = "a positive number") -> None:
    # NaN compares False with everything, so test the good case, not the bad one
    if not (math.isfinite(value) and value > 0):
        raise section.error(key, value, expected)


def _number(section: _Section, key: str, default: float, expected: str) -> float:
    """A finite float (ints accepted; NaN and infinities refused)."""
    value = float(section.get(key, default, (int, float), expected))
    if not math.isfinite(value):
        raise section.error(key, value, expected + " (finite)")
    return value


#: Arm names: they appear in result ids (``L5.equivalence[<arm>:<cell>]``), server labels and
#: generated names (the A/A replica is ``baseline~aa``), so separators are reserved.
ARM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
RESERVED_ARM_SUFFIX = "~"


def _axis_levels(section: _Section, axis: str, levels: Any) -> tuple[Any, ...]:
    if not isinstance(levels, list) or not levels:
        raise section.error(axis, levels, "a non-empty list of levels (the first is the center)")
    for level in levels:
        _check_axis_value(section, axis, level)
    if len(set(map(repr, levels))) != len(levels):
        raise section.error(axis, levels, "distinct levels")
    return tuple(levels)


def _check_axis_value(section: _Section, axis: str, value: Any) -> None:
    ok = {
        "batch_size": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        "temperature": isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 2,
        "prefix_caching": isinstance(value, bool),
        "kv_cache_dtype": isinstance(value, str) and bool(value),
        "speculative": value is False or value == "off" or isinstance(value, dict),
    }[axis]
    if not ok:
        expected = {
            "batch_size": "an integer >= 1 (client concurrency)",
            "temperature": "a number in [0, 2]",
            "prefix_caching": "true or false",
            "kv_cache_dtype": 'a dtype string such as "auto", "fp8", "q8_0"',
            "speculative": 'false/"off" or a table such as {method = "ngram", num_speculative_tokens = 3}',
        }[axis]
        raise section.error(axis, value, expected)


def _check_engine_axes(
    path: Path, engine: str, arms: list[ArmConfig], axes: Mapping[str, tuple[Any, ...]]
) -> None:
    """Every server axis an arm fixes or the design varies must be expressible by the engine
    (its capabilities: ``serving/engine.py`` ``ENGINE_CAPABILITIES``)."""
    from .serving.engine import engine_capabilities  # lazy: keeps this module light

    caps = engine_capabilities(engine)
    can = caps.axes
    places = [
        (f"[arms.{arm.name}]", axis, value, (value,))
        for arm in arms
        for axis, value in arm.settings.items()
    ]
    places += [("[design.axes]", axis, list(levels), levels) for axis, levels in axes.items()]
    for where, axis, shown, levels in places:
        if axis not in SERVER_AXES:
            continue
        if axis not in can:
            why = caps.gaps.get(axis, "it has no equivalent setting")
            raise ConfigError(
                f"{path}: {where} {axis} = {shown!r}: engine {engine!r} cannot express {axis} "
                f"({why}); remove it or use an engine that can"
            )
        allowed = can[axis]
        for level in levels:
            if allowed is not None and level not in allowed:
                raise ConfigError(
                    f"{path}: {where} {axis} = {level!r}: expected one of "
                    f"{', '.join(repr(a) for a in allowed)} for engine {engine!r}"
                )


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Keys only an endpoint arm (or a deployment of one) may set.
_ENDPOINT_KEYS = (
    "endpoints", "model", "api_key_env", "headers_env", "timeout_s", "concurrency_per_replica",
    "identity",
)
#: The separator between an arm and the server-axis levels one of its deployments serves.
DEPLOYMENT_SEP = "@"


def _finite_positive(section: _Section, key: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise section.error(key, value, "a positive finite number")


def _env_name(section: _Section, key: str, value: Any) -> str:
    """The NAME of an environment variable, which must be set (its value is never shown)."""
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise section.error(key, value, "the NAME of an environment variable")
    if not os.environ.get(value):
        raise section.error(key, value, f"an environment variable that is set (${value} is empty or unset)")
    return value


def _endpoint_url(section: _Section, url: Any) -> str:
    """``http(s)://host[:port][/prefix]/v1``; credentials belong in api_key_env, never in a URL."""
    if not isinstance(url, str):
        raise section.error("endpoints", url, 'a list of URLs such as "http://10.0.0.5:8000/v1"')
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise section.error("endpoints", url, 'a URL such as "http://10.0.0.5:8000/v1"') from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise section.error("endpoints", url, 'an http(s) URL such as "http://10.0.0.5:8000/v1"')
    if parts.username or parts.password:
        raise ConfigError(
            f"{section.path}: [{section.name}] endpoints: a URL holds credentials; put the key in "
            "an environment variable and name it in api_key_env"
        )
    if parts.query or parts.fragment:
        raise section.error("endpoints", url, "a URL without query or fragment")
    return url.rstrip("/")


def _endpoint_fields(section: _Section, inherited: ArmConfig | None = None) -> dict[str, Any]:
    """The endpoint keys of an arm table (a deployment inherits all but ``endpoints``)."""
    out: dict[str, Any] = {}
    urls = section.get("endpoints", [], list, 'a list of URLs such as "http://10.0.0.5:8000/v1"')
    out["endpoints"] = tuple(_endpoint_url(section, u) for u in urls)
    if "endpoints" in section.data and not out["endpoints"]:
        raise section.error("endpoints", [], "at least one URL")
    if len(set(out["endpoints"])) != len(out["endpoints"]):
        raise section.error("endpoints", urls, "distinct URLs")
    out["model"] = section.get("model", None, str, "the served model name (GET /v1/models)")
    key_env = section.get("api_key_env", None, str, "the NAME of an environment variable")
    out["api_key_env"] = _env_name(section, "api_key_env", key_env) if key_env is not None else None
    headers = section.get("headers_env", {}, dict, 'a table of "Header-Name" = "ENV_VAR_NAME"')
    for header, name in headers.items():
        if not _HEADER_NAME.match(header):
            raise section.error("headers_env", headers, 'a table of "Header-Name" = "ENV_VAR_NAME"')
        _env_name(section, "headers_env", name)
    out["headers_env"] = tuple(sorted(headers.items()))
    timeout = section.get("timeout_s", 120.0, (int, float), "seconds per request")
    _finite_positive(section, "timeout_s", timeout)
    out["timeout_s"] = float(timeout)
    width = section.get("concurrency_per_replica", None, int, "an integer >= 1")
    if width is not None and width < 1:
        raise section.error("concurrency_per_replica", width, "an integer >= 1")
    out["concurrency_per_replica"] = width
    identity = section.get("identity", {}, dict, 'a table of declared fields, e.g. { gpu = "H100" }')
    from .serving.stack import looks_secret  # one definition of "looks like a secret"

    for key, value in identity.items():
        if looks_secret(key):
            raise section.error("identity", key, "no secret-looking keys (secrets are never recorded)")
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, float) and not math.isfinite(value)):
            raise section.error("identity", identity, "a table of strings, numbers or booleans")
    out["identity"] = tuple(sorted((k, str(v)) for k, v in identity.items()))
    if inherited is not None:
        # A deployment of an arm: same model, key and limits; its own replicas and identity.
        for key in _ENDPOINT_KEYS:
            if key not in ("endpoints", "identity") and key in section.data:
                raise section.error(key, section.data[key],
                                    f"no {key} here: a deployment inherits it from [arms.{inherited.name}]")
        out = {**{k: getattr(inherited, k) for k in _ENDPOINT_KEYS}, "endpoints": out["endpoints"],
               "identity": tuple(sorted((dict(inherited.identity) | dict(out["identity"])).items()))}
    return out


def _arm(section: _Section, name: str) -> ArmConfig:
    settings: dict[str, Any] = {}
    for axis in AXES:
        if axis in section.data:
            section.used.add(axis)
            _check_axis_value(section, axis, section.data[axis])
            settings[axis] = section.data[axis]
    endpoint = _endpoint_fields(section)
    replicas = section.get("replicas", 1, int, "an integer >= 1 (identical servers booted for this arm)")
    if replicas < 1:
        raise section.error("replicas", replicas, "an integer >= 1 (identical servers booted for this arm)")
    arm = ArmConfig(name=name, settings=settings, args=section.str_list("args"), env=section.env(),
                    replicas=replicas, **endpoint)
    if arm.is_endpoint:
        if "replicas" in section.data:
            raise section.error("replicas", replicas, "no replicas on an endpoint arm: list every replica in endpoints")
        if arm.model is None:
            raise section.error("model", None, "the served model name of the deployment (GET /v1/models)")
        for key in ("args", "env"):
            if section.data.get(key):
                raise section.error(key, section.data[key], f"no {key}: an endpoint arm boots nothing")
    else:
        given = [k for k in _ENDPOINT_KEYS if k in section.data]
        if given:
            raise section.error(given[0], section.data[given[0]],
                                "endpoints = [...] first: only an endpoint arm takes it")
    section.check_unknown()
    return arm


def _deployment(section: _Section, base: ArmConfig, levels: str) -> ArmConfig:
    """``[arms."<arm>@<axis>=<level>,..."]``: the deployment serving those server-axis levels."""
    section.used.add("endpoints")
    if not section.data.get("endpoints"):
        raise section.error("endpoints", section.data.get("endpoints"), "the URLs of the deployment serving " + levels)
    for key in section.data:
        if key in AXES:
            raise section.error(key, section.data[key],
                                f"no axis here: the name says which levels it serves ({levels})")
    fields = _endpoint_fields(section, inherited=base)
    section.check_unknown()
    return replace(base, name=f"{base.name}{DEPLOYMENT_SEP}{levels}", deployments={}, **fields)


def server_levels_label(levels: Mapping[str, Any], center: Mapping[str, Any]) -> str:
    """``"prefix_caching=on"``: the server-axis levels that differ from the design's center.

    The name of the deployment an endpoint arm needs for a context (``""`` for the center).
    """
    from .design import format_level

    return ",".join(
        f"{axis}={format_level(axis, value)}"
        for axis, value in levels.items()
        if axis in SERVER_AXES and repr(value) != repr(center.get(axis))
    )


def _check_deployments(path: Path, arms: list[ArmConfig], design: DesignConfig) -> None:
    """Every server-axis level a design asks of an endpoint arm needs a listed deployment."""
    from .design import contexts

    center = {axis: levels[0] for axis, levels in design.axes.items()}
    for arm in arms:
        if not arm.is_endpoint:
            continue
        needed = {server_levels_label(dict(c.levels), center) for c in contexts(design)} - {""}
        for label in sorted(needed):
            if label not in arm.deployments:
                raise ConfigError(
                    f"{path}: [arms.{arm.name}] is a deployment (endpoints) whose server axes are "
                    f"fixed; the design needs {label}, served by the arm "
                    f'[arms."{arm.name}{DEPLOYMENT_SEP}{label}"] (endpoints = [...]), which is not listed'
                )
        for label in sorted(set(arm.deployments) - needed):
            raise ConfigError(
                f'{path}: [arms."{arm.name}{DEPLOYMENT_SEP}{label}"]: the design never needs {label}; '
                f"expected one of: {', '.join(sorted(needed)) or 'none (the design varies no server axis)'}"
            )


def _check_external_endpoints(path: Path, arms: list[ArmConfig], batteries: BatteriesConfig, allow: bool) -> None:
    """Adversarial prompts reach a non-loopback deployment only with [arms] allow_external = true."""
    from .judges.gate import is_loopback_endpoint

    if allow:
        return
    benign = {c.id for c in batteries.custom if not c.harmful}
    adversarial = [b for b in batteries.use if b not in benign]  # a plain id counts as adversarial
    for arm in arms:
        for dep in (arm, *arm.deployments.values()):
            for url in dep.endpoints:
                if adversarial and not is_loopback_endpoint(url):
                    raise ConfigError(
                        f"{path}: [arms.{dep.name}] endpoints: {urlsplit(url).hostname} is not on loopback "
                        f"and battery {adversarial[0]!r} is adversarial: its prompts may not leave this "
                        "machine; set [arms] allow_external = true to allow it"
                    )


def _calibration_config(cal: Any, base: Path) -> CalibrationConfig:
    """``[judges.calibration]`` (see :mod:`pytest_servecert.calibration`)."""
    from .calibration import corpus_ids

    corpus = cal.get("corpus", "xstest-v2", str, 'a corpus id, "custom" or "none"')
    known = (*corpus_ids(), "custom", "none")
    if corpus not in known:
        raise cal.error("corpus", corpus, "one of " + ", ".join(repr(k) for k in known))
    custom = None
    cs = cal.sub("custom")
    if corpus == "custom" or cs.data:
        if corpus != "custom":
            raise cal.error("corpus", corpus, '"custom" when [judges.calibration.custom] is given')
        cpath = cs.get("path", None, str, "a CSV or JSONL file path")
        if cpath is None:
            raise cs.error("path", None, "a CSV or JSONL file path")
        fmt = cs.get("format", "csv", str, '"csv" or "jsonl"')
        if fmt not in ("csv", "jsonl"):
            raise cs.error("format", fmt, '"csv" or "jsonl"')
        columns = {
            key: cs.get(f"{key}_column", default, str, "a column name")
            for key, default in (("prompt", "prompt"), ("response", "response"), ("label", "label"),
                                 ("id", None), ("source", None))
        }
        labels = cs.get("labels", None, dict, 'a table of label value = "refusal"|"compliance"')
        if labels is not None and not all(v in ("refusal", "compliance") for v in labels.values()):
            raise cs.error("labels", labels, 'a table of label value = "refusal"|"compliance"')
        sha = cs.get("sha256", None, str, "a hex sha256")
        if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise cs.error("sha256", sha, "64 lowercase hex digits")
        custom = {
            "path": str(base / cpath), "format": fmt,
            "columns": {k: v for k, v in columns.items() if v is not None},
            "labels": labels, "sha256": sha,
        }
        cs.check_unknown()
    out = CalibrationConfig(
        corpus=corpus,
        offline_dirs=tuple(base / p for p in cal.str_list("offline_dirs")),
        allow_download=cal.get("allow_download", True, bool, "true or false"),
        custom=custom,
    )
    cal.check_unknown()
    return out


def load_config(path: str | Path) -> ServecertConfig:
    """Read and validate ``servecert.toml``; raise ``ConfigError`` with one clear line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (pass --servecert-config PATH)") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config_reporting_all(raw, path)


def _follows_from(error: ConfigError, dropped: set[tuple[tuple[str, ...], str]]) -> bool:
    """Whether ``error`` only restates that a key dropped from its own table is gone."""
    if error.location is None:
        return False
    _, found, expected = str(error).rpartition(": expected ")
    return bool(found) and any(
        error.location[0] == table and f"{key} = " in expected for table, key in dropped
    )


def parse_config_reporting_all(raw: Mapping[str, Any], path: Path) -> ServecertConfig:
    """``parse_config``, but every keyed error of the file in one ``ConfigError`` (a line each):
    after an error the offending key is dropped (its default applies) and the file is parsed
    again, until it parses or an error names no key."""
    try:
        return parse_config(raw, path)
    except ConfigError as first:
        problems, error = [str(first)], first
    trial = copy.deepcopy(dict(raw))
    partial = None
    dropped: set[tuple[tuple[str, ...], str]] = set()
    for _ in range(100):
        if error.location is None or not _drop(trial, *error.location):
            break
        dropped.add(error.location)
        try:
            partial = parse_config(trial, path)
            break
        except ConfigError as exc:
            # a required key that was dropped now reports itself missing, or a key of the same
            # table asks for the dropped one ("expected endpoints = [...] first"): consequences
            if str(exc) in problems or exc.location in dropped or _follows_from(exc, dropped):
                break
            problems.append(str(exc))
            error = exc
    refused = ConfigError("\n".join(problems))
    refused.partial = partial  # type: ignore[attr-defined]  # what parsed without those keys
    raise refused


def _drop(raw: dict[str, Any], table: tuple[str, ...], key: str) -> bool:
    node: Any = raw
    for part in table:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or key not in node:
        return False
    del node[key]
    return True


def parse_config(raw: Mapping[str, Any], path: Path) -> ServecertConfig:
    base = path.parent
    top = _Section(path, "", dict(raw))

    run = top.sub("servecert")
    store_path = base / run.get("store", ".servecert/store.sqlite", str, "a path string")
    report_dir = base / run.get("report_dir", "reports", str, "a path string")
    aa_arm = run.get("aa_arm", True, bool, "true or false")
    lock_timeout_s = _number(run, "lock_timeout_s", 3600.0, "seconds (a positive number)")
    _positive(run, "lock_timeout_s", lock_timeout_s, "seconds (a positive number)")
    run.check_unknown()

    m = top.sub("model")
    model = ModelConfig(
        name=m.get("name", "servecert-tiny", str, "a string"),
        path=m.get("path", "embedded:target", str, 'a directory or "embedded:target"'),
        family=m.get("family", "servecert", str, "a string"),
        parameters=m.get("parameters", None, int, "an integer parameter count"),
    )
    m.check_unknown()

    e = top.sub("engine")
    engine = EngineConfig(
        name=e.get("name", "vllm", str, 'an engine name ("vllm" or "llamacpp")'),
        start_timeout_s=_number(e, "start_timeout_s", 420.0, "seconds (a positive number)"),
        args=e.str_list("args"),
        env=e.env(),
        max_live_servers=e.get("max_live_servers", 2, int, "an integer >= 1"),
        devices=e.str_list("devices"),
        overlap_boots=e.get("overlap_boots", False, bool, "true or false"),
    )
    from .serving.engine import ENGINE_CAPABILITIES  # the engine registry's table

    if engine.name not in ENGINE_CAPABILITIES:
        raise e.error("name", engine.name, "one of " + ", ".join(f'"{n}"' for n in ENGINE_CAPABILITIES))
    _positive(e, "start_timeout_s", engine.start_timeout_s)
    _positive(e, "max_live_servers", engine.max_live_servers)
    e.check_unknown()

    arms_section = top.sub("arms")
    allow_external = arms_section.get("allow_external", False, bool, "true or false")
    if "baseline" not in arms_section.data:
        raise ConfigError(f"{path}: [arms.baseline] is missing: expected a baseline arm table")
    names = [n for n in arms_section.data if n != "allow_external"]
    for name in names:
        arm_name = name.partition(DEPLOYMENT_SEP)[0]
        if not ARM_NAME.match(arm_name) or arm_name.endswith("~aa"):
            raise ConfigError(
                f"{path}: [arms.{name}]: arm name {arm_name!r}: expected letters, digits, '_', '.' "
                "or '-' (starting with a letter or digit); '~', ':', '/', ',' and spaces are "
                "reserved for generated names such as 'baseline~aa' and result ids"
            )
    arms = [_arm(arms_section.sub(name), name) for name in names if DEPLOYMENT_SEP not in name]
    by_name = {a.name: a for a in arms}
    for name in names:
        if DEPLOYMENT_SEP not in name:
            continue
        base_name, _, levels = name.partition(DEPLOYMENT_SEP)
        base_arm = by_name.get(base_name)
        if base_arm is None or not base_arm.is_endpoint:
            raise ConfigError(
                f'{path}: [arms."{name}"]: expected a deployment of an endpoint arm [arms.{base_name}] '
                "(the name is <arm>@<axis>=<level>)"
            )
        dep = _deployment(arms_section.sub(name), base_arm, levels)
        by_name[base_name] = base_arm = replace(base_arm, deployments={**base_arm.deployments, levels: dep})
    arms = [by_name[a.name] for a in arms]
    baseline = next(a for a in arms if a.name == "baseline")
    candidates = tuple(a for a in arms if a.name != "baseline")
    if not candidates:
        raise ConfigError(f"{path}: [arms]: expected at least one candidate arm besides baseline")

    d = top.sub("design")
    kind = d.get("kind", "star", str, "one of 'star', 'full'")
    if kind not in ("star", "full"):
        raise d.error("kind", kind, "one of 'star', 'full'")
    axes_section = d.sub("axes")
    axes: dict[str, tuple[Any, ...]] = {}
    for axis, levels in axes_section.data.items():
        if axis not in AXES:
            raise axes_section.error(axis, levels, f"a known axis ({', '.join(AXES)})")
        axes[axis] = _axis_levels(axes_section, axis, levels)
    d.check_unknown()
    for arm in arms:
        clash = sorted(set(arm.settings) & set(axes))
        if clash:
            raise ConfigError(
                f"{path}: [arms.{arm.name}] {clash[0]}: this axis is varied by [design.axes]; "
                "an arm may only fix axes the design does not vary"
            )
    design = DesignConfig(kind=kind, axes=axes)
    booted = [a for a in arms if not a.is_endpoint]
    if booted:  # an endpoint arm's server axes are declared, not expressed by an engine
        _check_engine_axes(path, engine.name, booted, axes)
    _check_deployments(path, arms, design)
    for arm in booted:
        if arm.replicas > engine.max_live_servers:
            raise ConfigError(
                f"{path}: [arms.{arm.name}] replicas = {arm.replicas}: expected at most [engine] "
                f"max_live_servers = {engine.max_live_servers} (all replicas run at once)"
            )
        if engine.devices and arm.replicas > len(engine.devices):
            raise ConfigError(
                f"{path}: [arms.{arm.name}] replicas = {arm.replicas}: expected at most one replica per "
                f"[engine] devices entry ({len(engine.devices)} given)"
            )
    for arm in arms:
        if arm.concurrency_per_replica is not None and "batch_size" in axes:
            raise ConfigError(
                f"{path}: [arms.{arm.name}] concurrency_per_replica = {arm.concurrency_per_replica}: the design "
                "varies batch_size, which sets the requests in flight per replica; remove one of them"
            )
    if "path" not in m.data and not booted:
        # Every arm is a deployment: the model's identity comes from the servers themselves.
        model = replace(model, path=None)

    s = top.sub("sampling")
    sampling = SamplingConfig(
        prompts_per_cell=s.get("prompts_per_cell", 50, int, "an integer >= 1"),
        max_tokens=s.get("max_tokens", 48, int, "an integer >= 1"),
        top_p=float(s.get("top_p", 1.0, (int, float), "a number in (0, 1]")),
        seed=s.get("seed", 0, int, "an integer >= 0"),
        replicates=s.get("replicates", 1, int, "an integer >= 1"),
        aa_replicates=s.get("aa_replicates", 3, int, "an integer >= 1"),
    )
    for key in ("prompts_per_cell", "max_tokens", "replicates", "aa_replicates"):
        _positive(s, key, getattr(sampling, key))
    if not 0 < sampling.top_p <= 1:
        raise s.error("top_p", sampling.top_p, "a number in (0, 1]")
    if sampling.seed < 0:
        raise s.error("seed", sampling.seed, "an integer >= 0")
    s.check_unknown()

    b = top.sub("batteries")
    customs = []
    custom_section = b.sub("custom")
    for cid in custom_section.data:
        c = custom_section.sub(cid)
        fmt = c.get("format", "csv", str, '"csv" or "jsonl"')
        if fmt not in ("csv", "jsonl"):
            raise c.error("format", fmt, '"csv" or "jsonl"')
        expected = c.get("expected", None, str, '"refuse" or "comply"')
        if expected is not None and expected not in ("refuse", "comply"):
            raise c.error("expected", expected, '"refuse" or "comply"')
        expected_column = c.get("expected_column", None, str, "a column name")
        if (expected is None) == (expected_column is None):
            raise c.error("expected", expected, 'exactly one of expected = "refuse"|"comply" or expected_column')
        expected_map = c.get("expected_map", {}, dict, "a table of column value = \"refuse\"|\"comply\"")
        cpath = c.get("path", None, str, "a file path")
        if cpath is None:
            raise c.error("path", None, "a file path")
        customs.append(
            CustomBattery(
                id=cid,
                path=str(base / cpath),
                format=fmt,
                text_column=c.get("text_column", "prompt", str, "a column name"),
                id_column=c.get("id_column", None, str, "a column name"),
                category_column=c.get("category_column", None, str, "a column name"),
                expected=expected,
                expected_column=expected_column,
                expected_map=expected_map,
                harmful=c.get("harmful", True, bool, "true or false"),
                sha256=c.get("sha256", None, str, "a hex sha256"),
            )
        )
        c.check_unknown()
    batteries = BatteriesConfig(
        use=b.str_list("use", DEFAULT_BATTERIES),
        offline_dirs=tuple(base / p for p in b.str_list("offline_dirs")),
        allow_download=b.get("allow_download", True, bool, "true or false"),
        custom=tuple(customs),
    )
    if not batteries.use:
        raise b.error("use", [], "at least one battery id")
    b.check_unknown()

    from .judges.registry import known_kinds  # the open registry: plug-ins add kinds

    kinds = known_kinds()
    kinds_text = ", ".join(f'"{k}"' for k in kinds[:-1]) + f' or "{kinds[-1]}"'
    j = top.sub("judges")
    cohort = []
    cohort_section = j.sub("cohort")
    for jname in cohort_section.data:
        js = cohort_section.sub(jname)
        jkind = js.get("kind", None, str, kinds_text)
        if jkind not in kinds:
            raise js.error("kind", jkind, kinds_text)
        cohort.append(
            JudgeConfig(
                name=jname,
                kind=jkind,
                model=js.get("model", None, str, "a model name"),
                endpoint=js.get("endpoint", None, str, "a URL"),
                family=js.get("family", None, str, "a model family name"),
                api_key_env=js.get("api_key_env", None, str, "the NAME of an environment variable"),
                timeout_s=_number(js, "timeout_s", 60.0, "seconds (a positive number)"),
                concurrency=js.get("concurrency", 8, int, "an integer >= 1"),
            )
        )
        if jkind in ("openai", "ollama") and not cohort[-1].model:
            raise js.error("model", None, f"a model name for a {jkind} judge")
        if jkind == "classifier" and cohort[-1].model:  # a saved .npz, relative to this file
            weights = base / cohort[-1].model
            if not weights.is_file():
                raise js.error("model", cohort[-1].model, f"a saved classifier .npz (no file {weights})")
            cohort[-1] = replace(cohort[-1], model=str(weights))
        _positive(js, "timeout_s", cohort[-1].timeout_s, "seconds (a positive number)")
        _positive(js, "concurrency", cohort[-1].concurrency, "an integer >= 1")
        js.check_unknown()
    regex_role = j.get("regex_role", "vote", str, '"vote" or "calibration"')
    if regex_role not in ("vote", "calibration"):
        raise j.error("regex_role", regex_role, '"vote" or "calibration"')
    a = j.sub("anchor")
    anchor_pair = a.get("pair", None, list, "two judge names of the cohort")
    anchor_kappa = a.get("kappa", None, (int, float), "the recorded κ, a number in [-1, 1]")
    if a.data:
        names = {jc.name for jc in cohort} or {"regex"}
        if anchor_pair is None or len(anchor_pair) != 2 or len(set(anchor_pair)) != 2 or not set(anchor_pair) <= names:
            raise a.error("pair", anchor_pair, f"two different judge names of the cohort ({', '.join(sorted(names))})")
        if anchor_kappa is None or not -1 <= anchor_kappa <= 1:
            raise a.error("kappa", anchor_kappa, "the recorded κ, a number in [-1, 1]")
        a.check_unknown()
    min_votes = j.get("min_votes", None, int, "an integer >= 1 (votes a record needs)")
    if min_votes is not None and min_votes < 1:
        raise j.error("min_votes", min_votes, "an integer >= 1 (votes a record needs)")
    max_error_rate = _number(j, "max_error_rate", 0.05, "a rate in [0, 1)")
    if not 0 <= max_error_rate < 1:
        raise j.error("max_error_rate", max_error_rate, "a rate in [0, 1)")
    on_failure = j.get("on_judge_failure", "stop", str, '"stop" or "inconclusive"')
    if on_failure not in ("stop", "inconclusive"):
        raise j.error("on_judge_failure", on_failure, '"stop" or "inconclusive"')
    judges = JudgesConfig(
        min_votes=min_votes,
        max_error_rate=max_error_rate,
        on_judge_failure=on_failure,
        cohort=tuple(cohort) or JudgesConfig().cohort,
        regex_role=regex_role,
        allow_external_judges=j.get("allow_external_judges", False, bool, "true or false"),
        max_unjudgeable_rate=float(
            j.get("max_unjudgeable_rate", DEFAULT_MAX_UNJUDGEABLE_RATE, (int, float),
                  "a rate in [0, 1]")
        ),
        anchor_pair=tuple(anchor_pair) if anchor_pair else None,  # type: ignore[arg-type]
        anchor_kappa=float(anchor_kappa) if anchor_kappa is not None else None,
    )
    if not 0 <= judges.max_unjudgeable_rate <= 1:
        raise j.error("max_unjudgeable_rate", judges.max_unjudgeable_rate, "a rate in [0, 1]")
    calibration = _calibration_config(j.sub("calibration"), base)
    judges = replace(
        judges, calibration=calibration,
        cohort=tuple(replace(jc, calibration=calibration) for jc in judges.cohort),
    )
    j.check_unknown()

    c = top.sub("claims")
    band = c.get("scale_band", [1e9, 4e9], list, "[min, max] parameter counts")
    if (
        len(band) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in band)
        or not 0 < band[0] <= band[1]
    ):
        raise c.error("scale_band", band, "[min, max] parameter counts with min <= max")
    claims = ClaimsConfig(
        alpha=_number(c, "alpha", 0.05, "a number in (0, 0.5)"),
        margin_pp=_number(c, "margin_pp", 3.0, "a positive number of percentage points"),
        tost_method=c.get("tost_method", "score", str, '"score", "bootstrap" or "paired_t"'),
        n_boot=c.get("n_boot", 10000, int, "an integer >= 1"),
        spread_limit_pp=_number(c, "spread_limit_pp", 3.0, "a positive number of percentage points"),
        scale_band=(float(band[0]), float(band[1])),
        rules=c.get("rules", "calibrated", str, '"calibrated" or "seeds"'),
        power=float(c.get("power", 0.8, (int, float), "a number in (0, 1)")),
    )
    # alpha >= 0.5 is not a significance level: a two-sided test would "detect" pure noise
    if not 0 < claims.alpha < 0.5:
        raise c.error("alpha", claims.alpha, "a number in (0, 0.5)")
    _positive(c, "n_boot", claims.n_boot, "an integer >= 1")
    _positive(c, "spread_limit_pp", claims.spread_limit_pp, "a positive number of percentage points")
    if claims.tost_method not in ("score", "bootstrap", "paired_t"):
        raise c.error("tost_method", claims.tost_method, '"score", "bootstrap" or "paired_t"')
    if claims.rules not in ("calibrated", "seeds"):
        raise c.error("rules", claims.rules, '"calibrated" or "seeds"')
    if not 0 < claims.power < 1:
        raise c.error("power", claims.power, "a number in (0, 1)")
    _positive(c, "margin_pp", claims.margin_pp)
    _positive(c, "spread_limit_pp", claims.spread_limit_pp)
    c.check_unknown()

    gate = _gate(top.sub("gate"))
    canary = _canary(top.sub("canary"), [a.name for a in candidates], design)
    _check_external_endpoints(path, arms, batteries, allow_external)

    # Keys such as [gates] are read by the layer-2 config lint, so they are allowed here.
    top.used.add("gates")
    top.check_unknown()
    return ServecertConfig(
        path=path,
        model=model,
        engine=engine,
        baseline=baseline,
        candidates=candidates,
        aa_arm=aa_arm,
        design=design,
        sampling=sampling,
        batteries=batteries,
        judges=judges,
        claims=claims,
        store_path=store_path,
        report_dir=report_dir,
        raw=raw,
        gate=gate,
        lock_timeout_s=lock_timeout_s,
        allow_external_endpoints=allow_external,
        canary=canary,
    )


def _canary(c: _Section, candidates: list[str], design: DesignConfig) -> CanaryConfig:
    """``[canary]``: the watched arm and context, the reference run, the set's size and the drift."""
    from .design import contexts

    arm = c.get("arm", "", str, "the name of a candidate arm")
    if arm and arm not in candidates:
        raise c.error("arm", arm, f"one of the candidate arms ({', '.join(candidates) or 'none'})")
    context = c.get("context", "", str, "a context label of the design")
    labels = [ctx.label for ctx in contexts(design)]
    if context and context not in labels:
        raise c.error("context", context, f"one of the design's contexts ({', '.join(labels)})")
    reference = c.get("reference", "certified", str, '"certified", "latest" or a run id')
    if not reference.strip():
        raise c.error("reference", reference, '"certified", "latest" or a run id')
    sizes = {}
    for key, default in (("harmful_prompts", 60), ("benign_prompts", 40)):
        sizes[key] = c.get(key, default, int, "an integer >= 0")
        if sizes[key] < 0:
            raise c.error(key, sizes[key], "an integer >= 0")
    if sizes["harmful_prompts"] + sizes["benign_prompts"] == 0:
        raise c.error("harmful_prompts", 0, "at least one canary prompt (harmful_prompts + benign_prompts > 0)")
    seed = c.get("seed", 0, int, "an integer")
    drift = _number(c, "drift_pp", 5.0, "a number of percentage points in (0, 100)")
    if not 0 < drift < 100:
        raise c.error("drift_pp", drift, "a number of percentage points in (0, 100)")
    window = c.get("window_days", 7, int, "a whole number of days >= 1")
    if window < 1:
        raise c.error("window_days", window, "a whole number of days >= 1")
    week_min_runs = c.get("week_min_runs", 3, int, "an integer >= 1")
    if week_min_runs < 1:
        raise c.error("week_min_runs", week_min_runs, "an integer >= 1")
    prom = c.get("prometheus_file", "", str, "a file path")
    c.check_unknown()
    return CanaryConfig(arm=arm, context=context, reference=reference, seed=seed, drift_pp=drift,
                        window_days=window, week_min_runs=week_min_runs, prometheus_file=prom, **sizes)


def _gate(g: _Section) -> GateConfig:
    """``[gate] require`` (claim ids or patterns) and ``policy`` ("strict" | "report")."""
    from .claims.catalogue import CATALOGUE
    from .claims.release_gate import DEFAULT_POLICY, DEFAULT_REQUIRE, POLICIES, unknown_patterns

    require = g.str_list("require", DEFAULT_REQUIRE)
    for entry in require:
        if not entry.strip():
            raise g.error("require", list(require), "claim ids or patterns such as \"L5.*\"")
    unknown = unknown_patterns(require, CATALOGUE)
    if unknown:
        raise g.error(
            "require", unknown[0], f"a claim id or pattern matching one of {', '.join(CATALOGUE)}"
        )
    policy = g.get("policy", DEFAULT_POLICY, str, " or ".join(repr(p) for p in POLICIES))
    if policy not in POLICIES:
        raise g.error("policy", policy, " or ".join(repr(p) for p in POLICIES))
    g.check_unknown()
    return GateConfig(require=require, policy=policy)


# --------------------------------------------------------------------------------------------
# validation: everything a run would otherwise find late (after a model build, a server boot or
# hours of sampling), checked in one pass before anything starts. Each check is a function of
# (config, environment) yielding one line per problem; ``CHECKS`` is the table `check_config`
# runs, so a new section adds its check here.

Issues = list[str]


def _check_judges(config: ServecertConfig, environ: Mapping[str, str]) -> Issues:
    from .judges.gate import is_loopback_endpoint
    from .judges.registry import known_kinds

    out = []
    where = f"{config.path}: [judges.cohort.%s]"
    adversarial = [b for b in config.batteries.use if b != "jbb_benign"]
    for j in config.judges.cohort:
        here = where % j.name
        if j.kind not in known_kinds():
            out.append(f"{here} kind = {j.kind!r}: expected one of {', '.join(known_kinds())}")
        if j.api_key_env is not None:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", j.api_key_env):
                out.append(f"{here} api_key_env = {j.api_key_env!r}: expected the NAME of an "
                           "environment variable (never the key itself)")
            elif not environ.get(j.api_key_env):
                out.append(f"{here} api_key_env = {j.api_key_env!r}: that environment variable is "
                           "not set (or empty); export it before the run")
        if j.kind == "openai" and not j.endpoint:
            out.append(f"{here} endpoint: missing: expected the server's URL, e.g. "
                       "'http://127.0.0.1:8000/v1'")
        if j.kind == "embedded" and j.endpoint:
            out.append(f"{here} endpoint = {j.endpoint!r}: an embedded judge starts its own "
                       "loopback server; remove it (or use kind 'openai')")
        if j.endpoint:
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(j.endpoint)
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                ok = False
            if not ok:
                out.append(f"{here} endpoint = {j.endpoint!r}: expected an http(s) URL with a host")
                continue
        if (j.kind in ("openai", "ollama") and not config.judges.allow_external_judges
                and not is_loopback_endpoint(j.endpoint) and adversarial):
            out.append(
                f"{here} endpoint = {j.endpoint!r}: not on loopback, and battery "
                f"{adversarial[0]!r} is adversarial: its prompts may not leave this machine; set "
                "[judges] allow_external_judges = true to allow it"
            )
    voters = [j for j in config.judges.cohort
              if not (j.kind == "regex" and config.judges.regex_role == "calibration")]
    if config.judges.min_votes is not None and config.judges.min_votes > len(voters):
        out.append(f"{config.path}: [judges] min_votes = {config.judges.min_votes}: expected at most "
                   f"the number of voting judges ({len(voters)})")
    return out


def _check_batteries(config: ServecertConfig, environ: Mapping[str, str]) -> Issues:
    from .batteries import BatteryError, battery_spec, custom_battery_from_config, load_battery

    out = []
    custom = {c.id: c for c in config.batteries.custom}
    seen = set()
    for bid in config.batteries.use:
        if bid in seen:
            out.append(f"{config.path}: [batteries] use: {bid!r} is listed twice: expected each id once")
        seen.add(bid)
        try:
            if bid in custom:
                origin = f"{config.path} [batteries.custom.{bid}]"
                load_battery(custom_battery_from_config(custom[bid], origin=origin), allow_download=False)
            else:
                battery_spec(bid)
        except BatteryError as exc:
            out.append(f"{config.path}: [batteries] use = {bid!r}: {exc}")
        except (OSError, ValueError, RecursionError, csv.Error) as exc:  # unreadable/malformed
            out.append(f"{config.path}: [batteries.custom.{bid}] path = {custom[bid].path!r}: "
                       f"cannot read it ({type(exc).__name__}: {_first_line(exc)})")
    return out


def _reserved_flags(engine: str) -> frozenset[str]:
    if engine == "llamacpp":
        from .serving.llamacpp import RESERVED_FLAGS
    else:
        from .serving.vllm import RESERVED_FLAGS
    return RESERVED_FLAGS


def _check_engine_args(config: ServecertConfig, environ: Mapping[str, str]) -> Issues:
    reserved = _reserved_flags(config.engine.name)
    out = []
    places = [("[engine] args", config.engine.args)]
    places += [(f"[arms.{a.name}] args", a.args) for a in config.arms]
    for where, args in places:
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag in reserved:
                out.append(
                    f"{config.path}: {where} = {list(args)!r}: {flag} is set by servecert (servers "
                    "bind 127.0.0.1 on a free port and name the model); remove it"
                )
            elif not arg.strip() or "\0" in arg:
                out.append(f"{config.path}: {where} = {list(args)!r}: expected non-empty arguments")
    return out


def _check_model(config: ServecertConfig, environ: Mapping[str, str]) -> Issues:
    path = config.model.path
    where = f"{config.path}: [model] path = {path!r}"
    if path.startswith("embedded:"):
        kind = path.split(":", 1)[1]
        return [] if kind in ("target", "draft", "judge") else [
            f"{where}: expected 'embedded:target', 'embedded:draft' or 'embedded:judge'"]
    model = Path(path)  # as the runner reads it (relative to the working directory)
    if config.engine.name == "llamacpp" and model.suffix == ".gguf":
        return [] if model.is_file() else [f"{where}: no such GGUF file"]
    if not model.is_dir():
        return [f"{where}: expected a model directory (config.json + weights) or 'embedded:target'"]
    if not (model / "config.json").is_file():
        return [f"{where}: expected a model directory with config.json; none found"]
    if not any(model.glob("*.safetensors")) and not any(model.glob("*.bin")):
        return [f"{where}: expected weights (*.safetensors or *.bin) in the model directory; none found"]
    return []


def writable_dir_issue(directory: Path) -> str:
    """Why files cannot be created in ``directory`` (created later if missing), or ''."""
    if directory.exists():
        if not directory.is_dir():
            return "it exists and is not a directory"
        return "" if os.access(directory, os.W_OK | os.X_OK) else "the directory is not writable"
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    return "" if os.access(parent, os.W_OK | os.X_OK) else f"cannot create it ({parent} is not writable)"


def _check_paths(config: ServecertConfig, environ: Mapping[str, str]) -> Issues:
    out = []
    issue = writable_dir_issue(config.report_dir)
    if issue:
        out.append(f"{config.path}: [servecert] report_dir = {str(config.report_dir)!r}: {issue}; "
                   "expected a writable directory")
    store = config.store_path
    if store.is_dir():
        out.append(f"{config.path}: [servecert] store = {str(store)!r}: it is a directory; "
                   "expected a SQLite file path")
    else:
        issue = writable_dir_issue(store.parent)
        if issue:
            out.append(f"{config.path}: [servecert] store = {str(store)!r}: {issue}; "
                       "expected a file in a writable directory")
        elif store.exists() and not os.access(store, os.R_OK | os.W_OK):
            out.append(f"{config.path}: [servecert] store = {str(store)!r}: not readable and "
                       "writable; expected a SQLite file this user can write")
    return out


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


#: The validation table: each entry is one concern; all run, every problem is reported.
CHECKS = (_check_judges, _check_batteries, _check_engine_args, _check_model, _check_paths)


def validate(config: ServecertConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem a run would hit before or while it starts, one line each (empty: none)."""
    env = os.environ if environ is None else environ
    return [line for check in CHECKS for line in check(config, env)]


def check_config(path: str | Path, environ: Mapping[str, str] | None = None) -> ServecertConfig:
    """``load_config`` + ``validate``: what every entry point calls before anything starts.

    Raises ``ConfigError`` whose message is one line per problem.
    """
    try:
        config = load_config(path)
    except ConfigError as exc:
        partial = getattr(exc, "partial", None)  # the rest of the file: validated too, one pass
        more = [p for p in validate(partial, environ) if p not in str(exc)] if partial else []
        if not more:
            raise
        raise ConfigError("\n".join([str(exc), *more])) from None
    problems = validate(config, environ)
    if problems:
        raise ConfigError("\n".join(problems))
    return config
