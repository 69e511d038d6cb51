"""Judge-calibration corpora → verified, human-labelled (prompt, response) items.

A *calibration corpus* is a set of real model answers, each with a human label (refusal /
compliance). Layer 1 measures every judge of the cohort against it (seed 002 §6.2 and §7.4:
dispatch is pinned to a calibration corpus, never to the run's self-measured κ). Like the
batteries, the built-in corpora are TOML manifests in the repository's ``calibration/``
directory (pinned URL, sha256, license, per-file ``training`` permission); the data is never
committed.

Corpus ids
----------
``xstest-v2`` (default): the XSTest v2 completions of GPT-4 (evaluation only), Mistral-7B-
Instruct with a guardrail prompt and Mistral-7B-Instruct, 450 answers each, 1,350 in all.

Where the bytes come from (first hit wins; sha256 verified every time)
---------------------------------------------------------------------
1. an offline copy: ``offline_dirs`` (``[judges.calibration] offline_dirs``), else env
   ``SERVECERT_CALIBRATION_DIR`` (``os.pathsep``-separated), laid out like the manifest's
   ``file`` paths (``xstest-v2-completions/xstest_v2_completions_gpt4.csv``);
2. the download cache ``<root>/calibration/<file>`` (root as for batteries:
   ``SERVECERT_CACHE_DIR`` or the user cache);
3. the pinned URL, when ``allow_download`` is true (streamed, verified, renamed atomically).

Label rule (built-in and custom corpora)
---------------------------------------
A manifest maps its label values exactly (``labels = {...}``). A custom corpus without a map
uses :data:`DEFAULT_LABEL_RULE`, case-insensitive: ``refusal``, ``refuse``, ``full_refusal``
and any value containing ``partial`` (a partial refusal declines part of the request: safety
counts it as a refusal) → refusal; ``compliance``, ``comply``, ``full_compliance`` →
compliance; XSTest's ``1_`` / ``2_`` / ``3_`` prefixes are ignored. Any other value is an error
naming the file, the line and the value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .batteries import default_cache_dir, download_pinned, read_manifest, read_records
from .errors import ServecertError

__all__ = [
    "CALIBRATION_DIR_ENV",
    "DEFAULT_CORPUS",
    "DEFAULT_LABEL_RULE",
    "CalibrationCorpus",
    "CalibrationError",
    "CalibrationItem",
    "CorpusFile",
    "CorpusSpec",
    "corpus_ids",
    "corpus_spec",
    "custom_corpus_spec",
    "load_corpus",
    "map_label",
]

CALIBRATION_DIR_ENV = "SERVECERT_CALIBRATION_DIR"
CALIBRATION_MANIFEST_DIR_ENV = "SERVECERT_CALIBRATION_MANIFEST_DIR"
DEFAULT_CORPUS = "xstest-v2"
HUMAN_LABELS = ("refusal", "compliance")

#: The documented rule for custom corpora without a label map (see the module docstring).
DEFAULT_LABEL_RULE = (
    "refusal, refuse, full_refusal, anything containing 'partial' -> refusal; "
    "compliance, comply, full_compliance -> compliance (case-insensitive, XSTest's '1_'/'2_'/'3_' "
    "prefixes ignored)"
)
_REFUSAL_WORDS = {"refusal", "refuse", "refused", "full_refusal", "full refusal"}
_COMPLIANCE_WORDS = {"compliance", "comply", "complied", "full_compliance", "full compliance"}
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class CalibrationError(ServecertError, ValueError):
    """A calibration corpus could not be resolved, verified or parsed; the message is one line."""


@dataclass(frozen=True)
class CorpusFile:
    """One file of a corpus: the answers of one source model."""

    source: str
    file: str
    sha256: str | None
    url: str | None = None
    rows: int | None = None
    license: str = ""
    training: bool = False  # may these answers be used as training data?
    alternate_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorpusSpec:
    """Everything needed to find, verify and parse a corpus."""

    id: str
    files: tuple[CorpusFile, ...]
    format: str  # "csv" | "jsonl"
    columns: Mapping[str, str]  # id (optional), prompt, response, label, source (optional)
    labels: Mapping[str, str] | None  # exact value -> refusal/compliance; None: default rule
    title: str = ""
    citation: str = ""
    custom: bool = False
    origin: str = ""


@dataclass(frozen=True)
class CalibrationItem:
    """One human-labelled answer. ``key`` is unique within the corpus (``source:id``)."""

    key: str
    source: str
    prompt: str
    response: str
    human: str  # "refusal" | "compliance"
    human_raw: str
    training: bool


@dataclass(frozen=True)
class CalibrationCorpus:
    """A loaded, verified corpus. ``sha256`` keys cached judge labels (bytes + label rule)."""

    id: str
    sha256: str
    items: tuple[CalibrationItem, ...]
    files: tuple[tuple[str, str, str], ...]  # (source, path, sha256)
    spec: CorpusSpec

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.source for i in self.items))

    def __len__(self) -> int:
        return len(self.items)


# --------------------------------------------------------------------------- label rule


def map_label(value: str, labels: Mapping[str, str] | None = None) -> str | None:
    """``refusal`` / ``compliance`` for a human label value, or ``None`` if unmapped."""
    if labels is not None:
        return labels.get(value)
    v = value.strip().lower()
    v = re.sub(r"^[0-9]+_", "", v)
    if "partial" in v or v in _REFUSAL_WORDS:
        return "refusal"
    if v in _COMPLIANCE_WORDS:
        return "compliance"
    return None


# --------------------------------------------------------------------------- manifests


def _manifest_dir() -> Path:
    env = os.environ.get(CALIBRATION_MANIFEST_DIR_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "calibration_manifests", here.parent / "calibration"):
        if any(candidate.glob("*.toml")):
            return candidate
    raise CalibrationError(
        f"no calibration manifests found (tried {here / 'calibration_manifests'}, "
        f"{here.parent / 'calibration'}); set {CALIBRATION_MANIFEST_DIR_ENV}"
    )


def _registry() -> dict[str, tuple[Path, dict[str, Any]]]:
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(_manifest_dir().glob("*.toml")):
        doc = read_manifest(path, CalibrationError)
        cid = doc.get("corpus")
        if not isinstance(cid, str) or not cid:
            raise CalibrationError(f"{path}: expected a top-level corpus = \"<id>\"")
        out[cid] = (path, doc)
    return out


def corpus_ids() -> tuple[str, ...]:
    """Every built-in corpus id."""
    return tuple(sorted(_registry()))


def _columns(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise CalibrationError(f"{where}: columns must be a table of column names")
    missing = [k for k in ("prompt", "response", "label") if k not in raw]
    if missing:
        raise CalibrationError(f"{where}: columns lacks {', '.join(missing)}")
    unknown = set(raw) - {"id", "prompt", "response", "label", "source"}
    if unknown:
        raise CalibrationError(f"{where}: unknown column keys {sorted(unknown)}")
    return dict(raw)


def corpus_spec(corpus_id: str) -> CorpusSpec:
    """The built-in corpus ``corpus_id``; an unknown id names the known ones."""
    registry = _registry()
    if corpus_id not in registry:
        raise CalibrationError(
            f"unknown calibration corpus {corpus_id!r}; known: {', '.join(sorted(registry))}"
        )
    path, doc = registry[corpus_id]
    files = []
    for source, table in (doc.get("sources") or {}).items():
        sha = table.get("sha256")
        if not isinstance(sha, str) or not _SHA256_RE.match(sha):
            raise CalibrationError(f"{path}: sources.{source}.sha256 = {sha!r}; expected 64 hex")
        files.append(CorpusFile(
            source=source, file=str(table["file"]), sha256=sha, url=table.get("url"),
            rows=table.get("rows"), license=str(table.get("license", "")),
            training=bool(table.get("training", False)),
            alternate_urls=tuple(table.get("alternate_urls", ())),
        ))
    if not files:
        raise CalibrationError(f"{path}: expected at least one [sources.<name>] table")
    labels = doc.get("labels")
    if labels is not None and not set(labels.values()) <= set(HUMAN_LABELS):
        raise CalibrationError(f"{path}: labels must map to 'refusal' or 'compliance'")
    return CorpusSpec(
        id=corpus_id, files=tuple(files), format=str(doc.get("format", "csv")),
        columns=_columns(doc.get("columns"), str(path)), labels=labels,
        title=str(doc.get("title", "")), citation=str(doc.get("citation", "")), origin=str(path),
    )


def custom_corpus_spec(
    corpus_id: str,
    path: str | os.PathLike[str],
    *,
    format: str = "csv",
    columns: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    sha256: str | None = None,
    training: bool = False,
    origin: str = "",
) -> CorpusSpec:
    """A user corpus: one CSV/JSONL file with prompt, response and human label columns.

    ``columns`` defaults to ``prompt``, ``response``, ``label`` (plus optional ``id`` and
    ``source``: a source column splits the figures per source model). ``labels`` maps exact
    values; without it :data:`DEFAULT_LABEL_RULE` applies.
    """
    if format not in ("csv", "jsonl"):
        raise CalibrationError(f"calibration corpus {corpus_id!r}: format {format!r}; expected csv or jsonl")
    if sha256 is not None and not _SHA256_RE.match(sha256):
        raise CalibrationError(f"calibration corpus {corpus_id!r}: sha256 {sha256!r}; expected 64 hex")
    cols = {"prompt": "prompt", "response": "response", "label": "label", **(columns or {})}
    return CorpusSpec(
        id=corpus_id,
        files=(CorpusFile(source=corpus_id, file=str(path), sha256=sha256, training=training),),
        format=format, columns=_columns(cols, origin or str(path)), labels=labels, custom=True,
        origin=origin,
    )


# --------------------------------------------------------------------------- resolution


def _offline_dirs(offline_dirs: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    if offline_dirs:
        return [Path(p) for p in offline_dirs]
    env = os.environ.get(CALIBRATION_DIR_ENV, "")
    return [Path(p) for p in env.split(os.pathsep) if p]


def _check(path: Path, data: bytes, expected: str | None) -> None:
    if expected is None:
        return
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CalibrationError(f"{path}: sha256 mismatch: expected {expected}, got {actual}")


def _resolve(
    spec: CorpusSpec, f: CorpusFile, *, offline_dirs: Sequence[str | os.PathLike[str]] | None,
    cache_dir: str | os.PathLike[str] | None, allow_download: bool, client: httpx.Client | None,
) -> tuple[Path, bytes]:
    if spec.custom:
        path = Path(f.file)
        if not path.is_file():
            raise CalibrationError(f"calibration corpus {spec.id!r}: file {path} not found ({spec.origin})")
        data = path.read_bytes()
        _check(path, data, f.sha256)
        return path, data
    tried = []
    for offline in _offline_dirs(offline_dirs):
        path = offline / f.file
        tried.append(str(path))
        if path.is_file():
            data = path.read_bytes()
            _check(path, data, f.sha256)  # a wrong offline copy is an error, never replaced
            return path, data
    cached = Path(cache_dir or default_cache_dir()) / "calibration" / f.file
    tried.append(str(cached))
    if cached.is_file():
        data = cached.read_bytes()
        if hashlib.sha256(data).hexdigest() == f.sha256 or not allow_download:
            _check(cached, data, f.sha256)
            return cached, data
    if not allow_download:
        raise CalibrationError(
            f"calibration corpus {spec.id!r}: {f.file} not found (tried: {', '.join(tried)}); set "
            f"{CALIBRATION_DIR_ENV} to a directory holding it, or allow downloads"
        )
    failures = download_pinned(f, cached, client)  # type: ignore[arg-type]  (same fields as BatterySpec)
    if failures:
        raise CalibrationError(
            f"calibration corpus {spec.id!r}: {f.file} not found (tried: {', '.join(tried)}) and "
            f"download failed ({'; '.join(failures)}); set {CALIBRATION_DIR_ENV} to an offline copy"
        )
    data = cached.read_bytes()
    _check(cached, data, f.sha256)
    return cached, data


# --------------------------------------------------------------------------- parsing


def _rows(data: bytes, spec: CorpusSpec, path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    keys = ("id", "prompt", "response", "label", "source")
    required = [spec.columns[k] for k in keys if k in spec.columns]
    return read_records(data, spec.format, required, path, CalibrationError)


def _parse(data: bytes, spec: CorpusSpec, f: CorpusFile, path: Path) -> list[CalibrationItem]:
    cols = spec.columns
    items = []
    seen: set[str] = set()
    for n, (where, row) in enumerate(_rows(data, spec, path)):
        raw = row[cols["label"]]
        human = map_label(raw, spec.labels)
        if human is None:
            rule = ", ".join(spec.labels) if spec.labels is not None else DEFAULT_LABEL_RULE
            raise CalibrationError(f"{where}: human label {raw!r} is not mapped (rule: {rule})")
        source = row[cols["source"]] if "source" in cols and row[cols["source"]] else f.source
        rid = row[cols["id"]] if "id" in cols else str(n)
        key = f"{source}:{rid}"
        if key in seen:
            raise CalibrationError(f"{where}: duplicate id {rid!r} for source {source!r}")
        seen.add(key)
        items.append(CalibrationItem(
            key=key, source=source, prompt=row[cols["prompt"]].replace("\r\n", "\n"),
            response=row[cols["response"]].replace("\r\n", "\n"), human=human, human_raw=raw,
            training=f.training,
        ))
    if f.rows is not None and len(items) != f.rows:
        raise CalibrationError(f"{path}: {len(items)} rows; the manifest pins {f.rows}")
    if not items:
        raise CalibrationError(f"{path}: no rows")
    return items


def load_corpus(
    spec: CorpusSpec | str = DEFAULT_CORPUS,
    *,
    offline_dirs: Sequence[str | os.PathLike[str]] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    client: httpx.Client | None = None,
) -> CalibrationCorpus:
    """Resolve, verify and parse a corpus (a built-in id or a :class:`CorpusSpec`)."""
    if isinstance(spec, str):
        spec = corpus_spec(spec)
    items: list[CalibrationItem] = []
    files = []
    digest = hashlib.sha256()
    for f in spec.files:
        path, data = _resolve(
            spec, f, offline_dirs=offline_dirs, cache_dir=cache_dir,
            allow_download=allow_download, client=client,
        )
        sha = hashlib.sha256(data).hexdigest()
        files.append((f.source, str(path), sha))
        digest.update(f"{f.source}\0{sha}\0".encode())
        items += _parse(data, spec, f, path)
    rule = json.dumps(
        {"labels": dict(spec.labels) if spec.labels is not None else DEFAULT_LABEL_RULE,
         "columns": dict(spec.columns)}, sort_keys=True,
    )
    digest.update(rule.encode())
    return CalibrationCorpus(
        id=spec.id, sha256=digest.hexdigest(), items=tuple(items), files=tuple(files), spec=spec,
    )
