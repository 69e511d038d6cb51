"""Battery manifests → verified, normalised prompts.

A *battery* is a prompt set with an expected behaviour per prompt (``refuse`` /
``comply``). Each built-in battery is described by a TOML manifest in the
repository's ``batteries/`` directory (pinned URL, sha256, license, relative file
path, column mapping, expected-behaviour rule, harmful flag); the data itself is
never committed.

Battery ids
-----------
``harmbench`` (= ``harmbench:all``, 400), ``harmbench:test`` (320), ``harmbench:val`` (80),
``jbb_harmful`` (100), ``jbb_benign`` (100), ``strongreject`` (= ``strongreject:full``, 313),
``strongreject:small`` (60), ``xstest`` (= ``xstest:v1``, 450), ``xstest:v2`` (450).
The id of a battery's default variant is its bare name, so ``harmbench:all`` loads as
``harmbench`` and store keys never depend on how the user spelled it.

Where the bytes come from (first hit wins)
------------------------------------------
1. an offline copy: ``battery_dir`` argument (one directory or several), else env
   ``SERVECERT_BATTERY_DIR`` (``os.pathsep``-separated), laid out like the manifests'
   ``file`` paths (``harmbench/harmbench_behaviors_text_all.csv``);
2. the download cache: ``<root>/batteries/<file>``, root = ``cache_dir`` argument, else
   env ``SERVECERT_CACHE_DIR``, else the platformdirs user cache dir of ``servecert``;
3. the pinned URL (then any alternate URL), when ``allow_download`` is true: streamed to
   a temporary file beside the cache entry, sha256-verified, atomically renamed.

The sha256 of the bytes is verified every time, wherever they came from. A corrupted
offline copy is an error; a stale cache entry is re-downloaded when downloads are
allowed.

Manifest schema (one TOML file per upstream file group)
-------------------------------------------------------
Top level: ``group``, ``title``, ``citation``, ``homepage``. Then one table per battery,
``[batteries.<name>]``, with ``description``, ``license``, ``harmful`` (bool, required),
``format`` (``csv`` | ``jsonl``), ``columns = {text, id, category, context}`` (only
``text`` is required), ``expected``, ``context_template`` and ``default_variant``, and
one ``[batteries.<name>.variants.<variant>]`` table per file with ``file``, ``url``,
``alternate_urls``, ``sha256``, ``rows``; a variant may override any battery key.

``expected`` is either a constant (``"refuse"`` / ``"comply"``) or a column rule:
``{column = "label", map = {safe = "comply", unsafe = "refuse"}}`` (exact values) and/or
``prefix_map = {contrast_ = "refuse"}`` (value prefixes), with an optional ``default``
for values no entry matches. A value that matches nothing and has no default is an error.

Prompt text is the ``text`` column; when the ``context`` column is non-empty the text
sent is ``context_template`` filled with ``{context}`` and ``{text}`` (HarmBench:
``"{context}\\n\\n---\\n\\n{text}"``). CRLF inside fields is normalised to LF. Prompt ids
come from the ``id`` column, or are the first 16 hex digits of the sha256 of the text.

Custom batteries come from the config with the same keys (see :func:`custom_battery`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import random
import re
import tempfile
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import platformdirs

from .errors import ServecertError

__all__ = [
    "BATTERY_DIR_ENV",
    "CACHE_DIR_ENV",
    "MANIFEST_DIR_ENV",
    "Battery",
    "BatteryError",
    "BatterySpec",
    "Columns",
    "ExpectedRule",
    "Prompt",
    "battery_ids",
    "battery_spec",
    "custom_battery",
    "custom_battery_from_config",
    "default_cache_dir",
    "load_battery",
    "subsample",
]

Expected = Literal["refuse", "comply"]
#: One offline directory, several (tried in order), or None for env ``SERVECERT_BATTERY_DIR``.
BatteryDirs = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None
EXPECTED_VALUES: tuple[str, ...] = ("refuse", "comply")

BATTERY_DIR_ENV = "SERVECERT_BATTERY_DIR"
CACHE_DIR_ENV = "SERVECERT_CACHE_DIR"
MANIFEST_DIR_ENV = "SERVECERT_MANIFEST_DIR"

_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 16


class BatteryError(ServecertError):
    """A battery could not be resolved, verified or parsed; the message is one line."""


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class Columns:
    """Which source column holds what. Only ``text`` is required."""

    text: str
    id: str | None = None
    category: str | None = None
    context: str | None = None

    def required(self) -> tuple[str, ...]:
        """The columns a file must have, in a stable order."""
        return tuple(c for c in (self.text, self.id, self.category, self.context) if c)


@dataclass(frozen=True)
class ExpectedRule:
    """How a row's expected behaviour is decided.

    Either ``constant`` is set, or ``column`` with exact ``values`` and/or ``prefixes``
    (checked in declaration order after exact values) and an optional ``default``.
    """

    constant: Expected | None = None
    column: str | None = None
    values: tuple[tuple[str, Expected], ...] = ()
    prefixes: tuple[tuple[str, Expected], ...] = ()
    default: Expected | None = None

    def resolve(self, row: Mapping[str, str]) -> Expected:
        """Expected behaviour for one parsed row; raises ``LookupError`` when unmapped."""
        if self.constant is not None:
            return self.constant
        assert self.column is not None
        value = row[self.column]
        for key, expected in self.values:
            if value == key:
                return expected
        for prefix, expected in self.prefixes:
            if value.startswith(prefix):
                return expected
        if self.default is not None:
            return self.default
        raise LookupError(value)

    def describe(self) -> str:
        """Human-readable rule, for error messages and reports."""
        if self.constant is not None:
            return f"constant {self.constant!r}"
        parts = [f"{k!r}->{v}" for k, v in self.values]
        parts += [f"{p!r}*->{v}" for p, v in self.prefixes]
        if self.default is not None:
            parts.append(f"otherwise->{self.default}")
        return f"column {self.column!r}: " + ", ".join(parts)


@dataclass(frozen=True)
class BatterySpec:
    """Everything needed to find, verify and parse one battery file."""

    id: str
    name: str
    variant: str | None
    file: str
    format: Literal["csv", "jsonl"]
    columns: Columns
    expected: ExpectedRule
    harmful: bool
    license: str
    sha256: str | None = None
    url: str | None = None
    alternate_urls: tuple[str, ...] = ()
    rows: int | None = None
    context_template: str = "{context}\n\n---\n\n{text}"
    title: str = ""
    description: str = ""
    origin: str = ""
    custom: bool = False


@dataclass(frozen=True)
class Prompt:
    """One normalised prompt. ``text`` is exactly what is sent to the model."""

    battery: str
    prompt_id: str
    text: str
    expected: Expected
    category: str
    harmful: bool

    @property
    def text_sha256(self) -> str:
        """sha256 of the UTF-8 text sent, so a changed prompt can never reuse an answer."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Battery:
    """A loaded, verified battery."""

    id: str
    spec: BatterySpec
    path: Path
    sha256: str
    prompts: tuple[Prompt, ...] = field(repr=False)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def harmful(self) -> bool:
        return self.spec.harmful


# --------------------------------------------------------------------------- manifests


def _default_manifest_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    # Packaged copy first (wheel installs), then the repository's batteries/ (editable).
    return [here / "manifests", here.parent / "batteries"]


def _manifest_dir(manifest_dir: str | os.PathLike[str] | None) -> Path:
    if manifest_dir is not None:
        return Path(manifest_dir)
    env = os.environ.get(MANIFEST_DIR_ENV)
    if env:
        return Path(env)
    candidates = _default_manifest_dirs()
    for candidate in candidates:
        if any(candidate.glob("*.toml")):
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise BatteryError(f"no battery manifests found (tried: {tried}); set {MANIFEST_DIR_ENV}")


def read_manifest(path: Path, error: type[ServecertError]) -> dict[str, Any]:
    """One TOML manifest (batteries here, calibration corpora too); a broken one is ``error``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not a valid TOML manifest ({exc})") from None


def _registry(manifest_dir: Path) -> dict[str, tuple[Path, str, dict[str, Any], dict[str, Any]]]:
    """Battery name → (manifest path, name, group table, battery table)."""
    registry: dict[str, tuple[Path, str, dict[str, Any], dict[str, Any]]] = {}
    for path in sorted(manifest_dir.glob("*.toml")):
        doc = read_manifest(path, BatteryError)
        batteries = doc.get("batteries")
        if not isinstance(batteries, dict) or not batteries:
            raise BatteryError(f"{path}: expected at least one [batteries.<name>] table")
        for name, table in batteries.items():
            if not isinstance(table, dict):
                raise BatteryError(f"{path}: batteries.{name} must be a table")
            if name in registry:
                raise BatteryError(
                    f"{path}: battery {name!r} is also defined in {registry[name][0]}"
                )
            registry[name] = (path, name, doc, table)
    return registry


def battery_ids(*, manifest_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Every built-in battery id, default variants as bare names, e.g. ``harmbench:test``."""
    ids: list[str] = []
    for name, (_, _, _, table) in _registry(_manifest_dir(manifest_dir)).items():
        variants = table.get("variants", {})
        default = _default_variant(table)
        for variant in variants:
            ids.append(name if variant == default else f"{name}:{variant}")
    return tuple(ids)


def _default_variant(table: Mapping[str, Any]) -> str | None:
    variants = table.get("variants", {})
    if "default_variant" in table:
        return str(table["default_variant"])
    return next(iter(variants), None) if len(variants) == 1 else None


def battery_spec(
    battery_id: str, *, manifest_dir: str | os.PathLike[str] | None = None
) -> BatterySpec:
    """Resolve a built-in battery id (``name`` or ``name:variant``) to its spec."""
    registry = _registry(_manifest_dir(manifest_dir))
    name, _, variant = battery_id.partition(":")
    if name not in registry:
        known = ", ".join(sorted(registry))
        raise BatteryError(f"unknown battery {battery_id!r}; known batteries: {known}")
    path, name, doc, table = registry[name]
    variants = table.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise BatteryError(f"{path}: batteries.{name} needs at least one variants.<name> table")
    default = _default_variant(table)
    variant = variant or default or ""
    if variant not in variants:
        known = ", ".join(f"{name}:{v}" for v in variants)
        raise BatteryError(f"unknown battery {battery_id!r} in {path}; known variants: {known}")
    merged = {k: v for k, v in table.items() if k not in ("variants", "default_variant")}
    merged.update(variants[variant])
    canonical = name if variant == default else f"{name}:{variant}"
    where = f"{path} [batteries.{name}.variants.{variant}]"
    return _spec_from_table(
        canonical,
        merged,
        where=where,
        name=name,
        variant=variant,
        title=str(doc.get("title", "")),
        custom=False,
    )


def custom_battery(
    battery_id: str,
    table: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    origin: str = "config",
) -> BatterySpec:
    """Spec for a user battery declared in the config.

    Parameters
    ----------
    battery_id
        Name used in store keys and reports (letters, digits, ``_ . -``; no ``:``).
    table
        The config table: ``path`` (required; relative paths are relative to
        ``base_dir``), ``format`` (``csv`` | ``jsonl``; default from the file suffix),
        ``columns = {text, id, category, context}`` (or the same keys at top level),
        ``expected`` (constant or column rule, as in the manifests), ``harmful`` (bool,
        required), optional ``sha256`` (verified when given), ``license``,
        ``context_template``, ``description``.
    base_dir
        Directory relative paths are resolved against (the config file's directory).
    origin
        Where the table came from, e.g. ``"servecert.toml [batteries.custom.mine]"``,
        used in every error message.
    """
    if not _ID_RE.match(battery_id):
        raise BatteryError(
            f"{origin}: battery id {battery_id!r} must use only letters, digits, '_', '.', '-'"
        )
    if "path" not in table:
        raise BatteryError(f"{origin}: missing key 'path' (the CSV/JSONL file of the battery)")
    path = Path(str(table["path"])).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    merged = dict(table)
    merged["file"] = str(path)
    if "columns" not in merged:
        merged["columns"] = {
            k: merged[k] for k in ("text", "id", "category", "context") if k in merged
        }
    if "format" not in merged:
        suffix = path.suffix.lower()
        merged["format"] = {".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "csv")
    merged.setdefault("license", "unspecified")
    return _spec_from_table(
        battery_id, merged, where=origin, name=battery_id, variant=None, title="", custom=True
    )


def custom_battery_from_config(custom: Any, *, origin: str | None = None) -> BatterySpec:
    """Spec for a :class:`pytest_servecert.config.CustomBattery` (duck-typed).

    Maps its ``text_column`` / ``id_column`` / ``category_column`` / ``expected`` /
    ``expected_column`` + ``expected_map`` / ``harmful`` / ``sha256`` / ``format`` /
    ``path`` fields onto :func:`custom_battery`.
    """
    table: dict[str, Any] = {
        "path": custom.path,
        "format": custom.format,
        "harmful": custom.harmful,
        "columns": {
            k: v
            for k, v in (
                ("text", custom.text_column),
                ("id", custom.id_column),
                ("category", custom.category_column),
            )
            if v
        },
    }
    if custom.expected is not None:
        table["expected"] = custom.expected
    else:
        table["expected"] = {"column": custom.expected_column, "map": dict(custom.expected_map)}
    if custom.sha256:
        table["sha256"] = custom.sha256.lower()
    return custom_battery(
        custom.id, table, origin=origin or f"config [batteries.custom.{custom.id}]"
    )


_KNOWN_KEYS = {
    "file", "path", "format", "columns", "text", "id", "category", "context", "expected",
    "harmful", "license", "sha256", "url", "alternate_urls", "rows", "context_template",
    "description",
}  # fmt: skip


def _spec_from_table(
    battery_id: str,
    table: Mapping[str, Any],
    *,
    where: str,
    name: str,
    variant: str | None,
    title: str,
    custom: bool,
) -> BatterySpec:
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise BatteryError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(_KNOWN_KEYS))}"
        )
    if "file" not in table:
        raise BatteryError(f"{where}: missing key 'file'")
    fmt = table.get("format", "csv")
    if fmt not in ("csv", "jsonl"):
        raise BatteryError(f"{where}: format = {fmt!r}; expected 'csv' or 'jsonl'")
    harmful = table.get("harmful")
    if not isinstance(harmful, bool):
        raise BatteryError(f"{where}: harmful = {harmful!r}; expected true or false")
    sha256 = table.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256_RE.match(sha256)):
        raise BatteryError(f"{where}: sha256 = {sha256!r}; expected 64 lowercase hex digits")
    if not custom and sha256 is None:
        raise BatteryError(f"{where}: built-in batteries must pin a sha256")
    rows = table.get("rows")
    if rows is not None and (not isinstance(rows, int) or rows < 1):
        raise BatteryError(f"{where}: rows = {rows!r}; expected a positive integer")
    template = str(table.get("context_template", "{context}\n\n---\n\n{text}"))
    if "{context}" not in template or "{text}" not in template:
        raise BatteryError(f"{where}: context_template must contain {{context}} and {{text}}")
    return BatterySpec(
        id=battery_id,
        name=name,
        variant=variant,
        file=str(table["file"]),
        format=fmt,
        columns=_parse_columns(table.get("columns"), where),
        expected=_parse_expected(table.get("expected"), where),
        harmful=harmful,
        license=str(table.get("license", "")),
        sha256=sha256,
        url=table.get("url"),
        alternate_urls=tuple(table.get("alternate_urls", ())),
        rows=rows,
        context_template=template,
        title=title,
        description=str(table.get("description", "")),
        origin=where,
        custom=custom,
    )


def _parse_columns(raw: Any, where: str) -> Columns:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("text"), str) or not raw["text"]:
        raise BatteryError(f"{where}: columns.text missing; expected the name of the prompt column")
    extra = sorted(set(raw) - {"text", "id", "category", "context"})
    if extra:
        raise BatteryError(
            f"{where}: unknown columns key(s) {', '.join(extra)}; "
            "expected text, id, category, context"
        )
    for key in ("id", "category", "context"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            raise BatteryError(f"{where}: columns.{key} = {raw[key]!r}; expected a column name")
    return Columns(
        text=raw["text"], id=raw.get("id"), category=raw.get("category"), context=raw.get("context")
    )


def _check_expected(value: Any, where: str, key: str) -> Expected:
    if value not in EXPECTED_VALUES:
        raise BatteryError(f"{where}: {key} = {value!r}; expected 'refuse' or 'comply'")
    return value  # type: ignore[no-any-return]


def _parse_expected(raw: Any, where: str) -> ExpectedRule:
    if raw is None:
        raise BatteryError(f"{where}: missing key 'expected' ('refuse', 'comply' or a column rule)")
    if isinstance(raw, str):
        return ExpectedRule(constant=_check_expected(raw, where, "expected"))
    if not isinstance(raw, Mapping) or not isinstance(raw.get("column"), str):
        raise BatteryError(
            f"{where}: expected = {raw!r}; "
            "expected 'refuse', 'comply' or {column = ..., map = {...}}"
        )
    extra = sorted(set(raw) - {"column", "map", "prefix_map", "default"})
    if extra:
        raise BatteryError(
            f"{where}: unknown expected key(s) {', '.join(extra)}; "
            "expected column, map, prefix_map, default"
        )
    values = tuple(
        (str(k), _check_expected(v, where, f"expected.map.{k}"))
        for k, v in raw.get("map", {}).items()
    )
    prefixes = tuple(
        (str(k), _check_expected(v, where, f"expected.prefix_map.{k}"))
        for k, v in raw.get("prefix_map", {}).items()
    )
    if not values and not prefixes:
        raise BatteryError(f"{where}: expected.column rule needs a map or prefix_map")
    default = raw.get("default")
    if default is not None:
        default = _check_expected(default, where, "expected.default")
    return ExpectedRule(column=raw["column"], values=values, prefixes=prefixes, default=default)


# --------------------------------------------------------------------------- resolution


def default_cache_dir() -> Path:
    """Root of the servecert cache: env ``SERVECERT_CACHE_DIR`` or the platform user cache."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("servecert"))


def _mismatch(path: Path, expected: str, actual: str) -> BatteryError:
    return BatteryError(f"{path}: sha256 mismatch: expected {expected}, got {actual}")


def download_pinned(spec: BatterySpec, dest: Path, client: httpx.Client | None) -> list[str]:
    """Fetch ``spec`` into ``dest`` atomically; return the failures seen (empty on success)."""
    assert spec.sha256 is not None
    failures: list[str] = []
    own = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0))
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        for url in (u for u in (spec.url, *spec.alternate_urls) if u):
            # Temp file in the destination directory so os.replace is an atomic rename;
            # readers (other xdist workers) see either no file or the verified file.
            fd, tmp_name = tempfile.mkstemp(
                dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
            )
            tmp = Path(tmp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    with http.stream("GET", url, follow_redirects=True) as response:
                        response.raise_for_status()
                        for chunk in response.iter_bytes():
                            digest.update(chunk)
                            out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                actual = digest.hexdigest()
                if actual != spec.sha256:
                    failures.append(f"{url}: sha256 mismatch: expected {spec.sha256}, got {actual}")
                    continue
                os.replace(tmp, dest)
                return []
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {type(exc).__name__}: {exc}")
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        if own:
            http.close()
    return failures or ["no download URL in the manifest"]


def _offline_dirs(battery_dir: BatteryDirs) -> list[Path]:
    if battery_dir is None:
        env = os.environ.get(BATTERY_DIR_ENV, "")
        return [Path(p) for p in env.split(os.pathsep) if p]
    if isinstance(battery_dir, (str, os.PathLike)):
        return [Path(battery_dir)]
    return [Path(p) for p in battery_dir]


def _resolve(
    spec: BatterySpec,
    *,
    battery_dir: BatteryDirs,
    cache_dir: str | os.PathLike[str] | None,
    allow_download: bool,
    client: httpx.Client | None,
) -> tuple[Path, bytes]:
    """Find the verified bytes of ``spec``; see the module docstring for the order."""
    tried: list[str] = []
    if spec.custom:
        path = Path(spec.file)
        if not path.is_file():
            raise BatteryError(f"battery {spec.id!r}: file {path} not found ({spec.origin})")
        data = path.read_bytes()
        if spec.sha256 is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != spec.sha256:
                raise _mismatch(path, spec.sha256, actual)
        return path, data

    assert spec.sha256 is not None
    for offline in _offline_dirs(battery_dir):
        path = offline / spec.file
        tried.append(str(path))
        if path.is_file():
            data = path.read_bytes()
            actual = hashlib.sha256(data).hexdigest()
            if actual != spec.sha256:
                # A wrong offline copy is a user error to fix, never something to
                # paper over with a download.
                raise _mismatch(path, spec.sha256, actual)
            return path, data

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = root / "batteries" / spec.file
    tried.append(str(cached))
    if cached.is_file():
        data = cached.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual == spec.sha256:
            return cached, data
        if not allow_download:
            raise _mismatch(cached, spec.sha256, actual)
        # A stale or damaged cache entry: fall through and replace it.

    if not allow_download:
        raise BatteryError(
            f"battery {spec.id!r}: {spec.file} not found (tried: {', '.join(tried)}); "
            f"set {BATTERY_DIR_ENV} to a directory holding {spec.file}, or allow downloads"
        )
    failures = download_pinned(spec, cached, client)
    if failures:
        raise BatteryError(
            f"battery {spec.id!r}: {spec.file} not found (tried: {', '.join(tried)}) and "
            f"download failed ({'; '.join(failures)}); set {BATTERY_DIR_ENV} to an offline copy"
        )
    data = cached.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:  # replaced underneath us by something else
        raise _mismatch(cached, spec.sha256, actual)
    return cached, data


# --------------------------------------------------------------------------- parsing


def _records(data: bytes, spec: BatterySpec, path: Path) -> Iterable[tuple[str, dict[str, str]]]:
    """Yield (location, row) with every required column present, values as str."""
    required = spec.columns.required()
    if spec.expected.column:
        required = (*required, spec.expected.column)
    return read_records(data, spec.format, required, path, BatteryError)


def read_records(
    data: bytes, fmt: str, required: Sequence[str], path: Path, error: type[Exception]
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``(location, row)`` of a CSV or JSONL file, values as str; ``error`` (one line)
    for text that is not UTF-8, invalid JSON or a missing ``required`` column. Batteries and
    calibration corpora read their files through this one reader."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 ({exc})") from None
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        found = reader.fieldnames or []
        for column in required:
            if column not in found:
                raise error(
                    f"{path}: missing column {column!r} "
                    f"(columns found: {', '.join(found) or 'none'})"
                )
        for row in reader:
            yield (
                f"{path}:{reader.line_num}",
                {k: (v or "") for k, v in row.items() if k is not None},
            )
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise error(f"{path}:{lineno}: expected a JSON object per line")
        for column in required:
            if column not in obj:
                raise error(
                    f"{path}:{lineno}: missing column {column!r} "
                    f"(columns found: {', '.join(obj) or 'none'})"
                )
        yield f"{path}:{lineno}", {k: "" if v is None else str(v) for k, v in obj.items()}


def _normalise(value: str) -> str:
    # Upstream files mix CRLF and LF inside quoted fields (HarmBench _all vs _test);
    # normalising keeps the text sent identical across variants.
    return value.replace("\r\n", "\n")


def _parse(data: bytes, spec: BatterySpec, path: Path) -> tuple[Prompt, ...]:
    cols = spec.columns
    prompts: list[Prompt] = []
    seen: dict[str, str] = {}
    for where, row in _records(data, spec, path):
        body = _normalise(row[cols.text])
        if not body.strip():
            raise BatteryError(f"{where}: empty {cols.text!r} (prompt text)")
        context = _normalise(row[cols.context]) if cols.context else ""
        text = spec.context_template.format(context=context, text=body) if context.strip() else body
        if cols.id:
            prompt_id = row[cols.id].strip()
            if not prompt_id:
                raise BatteryError(f"{where}: empty id column {cols.id!r}")
        else:
            prompt_id = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        if prompt_id in seen:
            raise BatteryError(
                f"{where}: duplicate prompt id {prompt_id!r} (first at {seen[prompt_id]})"
            )
        seen[prompt_id] = where
        try:
            expected = spec.expected.resolve(row)
        except LookupError as exc:
            raise BatteryError(
                f"{where}: {spec.expected.column} = {exc.args[0]!r} matches no expected rule "
                f"({spec.expected.describe()})"
            ) from None
        prompts.append(
            Prompt(
                battery=spec.id,
                prompt_id=prompt_id,
                text=text,
                expected=expected,
                category=row[cols.category].strip() if cols.category else "",
                harmful=spec.harmful,
            )
        )
    if not prompts:
        raise BatteryError(f"{path}: no prompts")
    if spec.rows is not None and len(prompts) != spec.rows:
        raise BatteryError(f"{path}: {len(prompts)} rows parsed; the manifest expects {spec.rows}")
    return tuple(prompts)


def load_battery(
    battery_id: str | BatterySpec,
    *,
    battery_dir: BatteryDirs = None,
    cache_dir: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    manifest_dir: str | os.PathLike[str] | None = None,
    client: httpx.Client | None = None,
) -> Battery:
    """Load, verify and normalise a battery.

    Parameters
    ----------
    battery_id
        A built-in id (``"harmbench"``, ``"xstest:v2"``, ...) or a spec from
        :func:`custom_battery`.
    battery_dir
        Offline copy laid out like ``/work/shared/batteries``, or several tried in order;
        default env ``SERVECERT_BATTERY_DIR`` (``os.pathsep``-separated).
    cache_dir
        Cache root (the batteries live in ``<root>/batteries``); default env
        ``SERVECERT_CACHE_DIR`` or the platform user cache.
    allow_download
        Whether the pinned URL may be fetched when no local copy verifies.
    manifest_dir
        Directory of the TOML manifests; default env ``SERVECERT_MANIFEST_DIR`` or the
        repository's ``batteries/``.
    client
        httpx client to download with (tests inject a ``MockTransport``).

    Raises
    ------
    BatteryError
        Unknown id, missing file, sha256 mismatch, missing column, unmapped expected
        value, duplicate id or row-count mismatch; always one line naming the file.
    """
    spec = (
        battery_id
        if isinstance(battery_id, BatterySpec)
        else battery_spec(battery_id, manifest_dir=manifest_dir)
    )
    path, data = _resolve(
        spec,
        battery_dir=battery_dir,
        cache_dir=cache_dir,
        allow_download=allow_download,
        client=client,
    )
    return Battery(
        id=spec.id,
        spec=spec,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        prompts=_parse(data, spec, path),
    )


# --------------------------------------------------------------------------- subsampling


def _largest_remainder(
    total: int, sizes: Mapping[Any, int], rng: random.Random, weights: Mapping[Any, float]
) -> dict[Any, int]:
    """Allocate ``total`` across keys by ``weights``, capped at ``sizes``; integer, exact.

    Floors first, then the largest fractional remainders get one more (ties broken by
    the seeded ``rng``); anything a capped stratum cannot take is re-allocated the
    same way among the others (water-filling), so the sum is always ``total``.
    """
    alloc = {k: 0 for k in sizes}
    remaining = total
    open_keys = [k for k in sizes if sizes[k] > 0]
    while remaining > 0 and open_keys:
        weight_sum = sum(weights[k] for k in open_keys)
        quotas = {k: remaining * weights[k] / weight_sum for k in open_keys}
        capacity = {k: sizes[k] - alloc[k] for k in open_keys}
        give = {k: min(math.floor(quotas[k]), capacity[k]) for k in open_keys}
        left = remaining - sum(give.values())
        tiebreak = {k: rng.random() for k in open_keys}
        order = sorted(open_keys, key=lambda k: (-(quotas[k] - math.floor(quotas[k])), tiebreak[k]))
        for k in order:
            if left == 0:
                break
            if give[k] < capacity[k]:
                give[k] += 1
                left -= 1
        for k in open_keys:
            alloc[k] += give[k]
        remaining = left
        open_keys = [k for k in open_keys if alloc[k] < sizes[k]]
    return alloc


def subsample(
    prompts: Sequence[Prompt], n: int, seed: int, *, balance_expected: bool = True
) -> tuple[Prompt, ...]:
    """Seeded, category-stratified subsample of ``n`` prompts, in the original order.

    The budget is first split across expected behaviours: equally when
    ``balance_expected`` (XSTest: 50 safe + 50 unsafe of 100, as in seed TR152 §1.1;
    a slice too small to take its half gives the rest to the other), else in proportion
    to their sizes. Within each expected slice it is split across categories in
    proportion to their sizes, by largest remainder. The prompts of each stratum are
    drawn with a generator seeded from ``(seed, expected, category)``, so the draw is
    deterministic for a seed, independent of ``PYTHONHASHSEED``, and identical for the
    baseline and candidate arms. ``n >= len(prompts)`` returns every prompt.

    Raises
    ------
    ValueError
        If ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"subsample: n = {n}; expected a positive integer")
    prompts = tuple(prompts)
    if n >= len(prompts):
        return prompts
    strata: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, prompt in enumerate(prompts):
        strata[prompt.expected][prompt.category].append(index)
    rng = random.Random(f"servecert-subsample:{seed}")
    slices = {e: sum(len(v) for v in cats.values()) for e, cats in sorted(strata.items())}
    slice_weights = {e: 1.0 if balance_expected else float(size) for e, size in slices.items()}
    per_slice = _largest_remainder(n, slices, rng, slice_weights)
    chosen: list[int] = []
    for expected, budget in per_slice.items():
        cats = dict(sorted(strata[expected].items()))
        sizes = {c: len(ix) for c, ix in cats.items()}
        per_cat = _largest_remainder(budget, sizes, rng, {c: float(s) for c, s in sizes.items()})
        for category, k in per_cat.items():
            draw = random.Random(f"servecert-subsample:{seed}:{expected}:{category}")
            chosen.extend(draw.sample(cats[category], k))
    return tuple(prompts[i] for i in sorted(chosen))
