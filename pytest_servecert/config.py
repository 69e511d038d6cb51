"""``servecert.toml`` → frozen dataclasses.

Every error is one ``ConfigError`` line naming the file, the key, the value found and what was
expected, e.g.::

    servecert.toml: [design] kind = 'stars': expected one of 'star', 'full'

The file layout is documented in the README ("Configuration") and in the default
``servecert.toml`` at the repository root.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

# The knobs the design understands (design.py maps each to server flags or request params).
SERVER_AXES = ("kv_cache_dtype", "prefix_caching", "speculative")
CLIENT_AXES = ("batch_size", "temperature")
AXES = SERVER_AXES + CLIENT_AXES

DEFAULT_BATTERIES = ("harmbench", "jbb_harmful", "jbb_benign", "strongreject", "xstest")


class ConfigError(ValueError):
    """A user error in the certification config (printed as one line, no traceback)."""


@dataclass(frozen=True)
class ModelConfig:
    """The model under certification. ``path`` is a directory or ``embedded:<kind>``."""

    name: str
    path: str
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


@dataclass(frozen=True)
class ArmConfig:
    """One serving configuration: axis settings fixed for the arm plus extra flags/env."""

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


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
    max_unjudgeable_rate: float = 0.10
    # integrity anchor: a judge pair's recorded pooled κ, to be reproduced within ±0.10
    anchor_pair: tuple[str, str] | None = None
    anchor_kappa: float | None = None
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
    tost_method: str = "bootstrap"
    n_boot: int = 10000
    spread_limit_pp: float = 3.0
    scale_band: tuple[float, float] = (1e9, 4e9)


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

    @property
    def arms(self) -> tuple[ArmConfig, ...]:
        return (self.baseline, *self.candidates)


# --------------------------------------------------------------------------------------------
# parsing


class _Section:
    """A TOML table with its dotted name, so every error can say where it came from."""

    def __init__(self, path: Path, name: str, data: Any) -> None:
        self.path, self.name = path, name
        if not isinstance(data, dict):
            raise self.error(None, data, "a table")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def error(self, key: str | None, value: Any, expected: str) -> ConfigError:
        where = f"[{self.name}]" if self.name else "top level"
        if key is None:
            return ConfigError(f"{self.path}: {where}: expected {expected}, got {value!r}")
        return ConfigError(f"{self.path}: {where} {key} = {value!r}: expected {expected}")

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

    def sub(self, key: str) -> "_Section":
        self.used.add(key)
        return _Section(self.path, f"{self.name}.{key}" if self.name else key, self.data.get(key, {}))

    def check_unknown(self, allowed: tuple[str, ...] | None = None) -> None:
        known = set(allowed) if allowed is not None else self.used
        for key in self.data:
            if key not in known:
                raise self.error(key, self.data[key], f"no such key (known: {', '.join(sorted(known))})")


def _positive(section: _Section, key: str, value: float | int) -> None:
    if value <= 0:
        raise section.error(key, value, "a positive number")


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


def _arm(section: _Section, name: str) -> ArmConfig:
    settings: dict[str, Any] = {}
    for axis in AXES:
        if axis in section.data:
            section.used.add(axis)
            _check_axis_value(section, axis, section.data[axis])
            settings[axis] = section.data[axis]
    arm = ArmConfig(name=name, settings=settings, args=section.str_list("args"), env=section.env())
    section.check_unknown()
    return arm


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
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> ServecertConfig:
    base = path.parent
    top = _Section(path, "", dict(raw))

    run = top.sub("servecert")
    store_path = base / run.get("store", ".servecert/store.sqlite", str, "a path string")
    report_dir = base / run.get("report_dir", "reports", str, "a path string")
    aa_arm = run.get("aa_arm", True, bool, "true or false")
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
        start_timeout_s=float(e.get("start_timeout_s", 420.0, (int, float), "seconds")),
        args=e.str_list("args"),
        env=e.env(),
        max_live_servers=e.get("max_live_servers", 2, int, "an integer >= 1"),
    )
    from .serving.engine import ENGINE_CAPABILITIES  # the engine registry's table

    if engine.name not in ENGINE_CAPABILITIES:
        raise e.error("name", engine.name, "one of " + ", ".join(f'"{n}"' for n in ENGINE_CAPABILITIES))
    _positive(e, "start_timeout_s", engine.start_timeout_s)
    _positive(e, "max_live_servers", engine.max_live_servers)
    e.check_unknown()

    arms_section = top.sub("arms")
    if "baseline" not in arms_section.data:
        raise ConfigError(f"{path}: [arms.baseline] is missing: expected a baseline arm table")
    arms = [_arm(arms_section.sub(name), name) for name in arms_section.data]
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
    _check_engine_axes(path, engine.name, arms, axes)

    s = top.sub("sampling")
    sampling = SamplingConfig(
        prompts_per_cell=s.get("prompts_per_cell", 50, int, "an integer >= 1"),
        max_tokens=s.get("max_tokens", 48, int, "an integer >= 1"),
        top_p=float(s.get("top_p", 1.0, (int, float), "a number in (0, 1]")),
        seed=s.get("seed", 0, int, "an integer"),
        replicates=s.get("replicates", 1, int, "an integer >= 1"),
    )
    for key in ("prompts_per_cell", "max_tokens", "replicates"):
        _positive(s, key, getattr(sampling, key))
    if not 0 < sampling.top_p <= 1:
        raise s.error("top_p", sampling.top_p, "a number in (0, 1]")
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

    j = top.sub("judges")
    cohort = []
    cohort_section = j.sub("cohort")
    for jname in cohort_section.data:
        js = cohort_section.sub(jname)
        kinds = '"regex", "openai", "ollama", "embedded" or "classifier"'
        jkind = js.get("kind", None, str, kinds)
        if jkind not in ("regex", "openai", "ollama", "embedded", "classifier"):
            raise js.error("kind", jkind, kinds)
        cohort.append(
            JudgeConfig(
                name=jname,
                kind=jkind,
                model=js.get("model", None, str, "a model name"),
                endpoint=js.get("endpoint", None, str, "a URL"),
                family=js.get("family", None, str, "a model family name"),
                api_key_env=js.get("api_key_env", None, str, "the NAME of an environment variable"),
                timeout_s=float(js.get("timeout_s", 60.0, (int, float), "seconds")),
                concurrency=js.get("concurrency", 8, int, "an integer >= 1"),
            )
        )
        if jkind in ("openai", "ollama") and not cohort[-1].model:
            raise js.error("model", None, f"a model name for a {jkind} judge")
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
    judges = JudgesConfig(
        cohort=tuple(cohort) or JudgesConfig().cohort,
        regex_role=regex_role,
        allow_external_judges=j.get("allow_external_judges", False, bool, "true or false"),
        max_unjudgeable_rate=float(j.get("max_unjudgeable_rate", 0.10, (int, float), "a rate in [0, 1]")),
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
    if len(band) != 2 or not all(isinstance(v, (int, float)) for v in band) or band[0] > band[1]:
        raise c.error("scale_band", band, "[min, max] parameter counts with min <= max")
    claims = ClaimsConfig(
        alpha=float(c.get("alpha", 0.05, (int, float), "a number in (0, 1)")),
        margin_pp=float(c.get("margin_pp", 3.0, (int, float), "a positive number of percentage points")),
        tost_method=c.get("tost_method", "bootstrap", str, '"bootstrap" or "paired_t"'),
        n_boot=c.get("n_boot", 10000, int, "an integer >= 100"),
        spread_limit_pp=float(c.get("spread_limit_pp", 3.0, (int, float), "percentage points")),
        scale_band=(float(band[0]), float(band[1])),
    )
    if not 0 < claims.alpha < 1:
        raise c.error("alpha", claims.alpha, "a number in (0, 1)")
    if claims.tost_method not in ("bootstrap", "paired_t"):
        raise c.error("tost_method", claims.tost_method, '"bootstrap" or "paired_t"')
    _positive(c, "margin_pp", claims.margin_pp)
    c.check_unknown()

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
    )
