"""Compile-latency reproducibility (layer 3) from saved pytest-benchmark runs.

``pytest certifications -m layer3 --benchmark-save=NAME`` saves one JSON file per run; our
pytest-benchmark hook (:mod:`.latency_stack`) writes the run's stack identity and every layer-3
benchmark's raw samples into it. This module reads a storage directory of such files, groups
the runs by stack identity, and for each measure (``prefill``, ``decode``, ``vllm_ttft`` ...)
computes the CRI (:func:`pytest_servecert.stats.cri`) on the compiled (or served) path and on
the eager control, then hands both to the pure claim rule
:func:`pytest_servecert.claims.rules.latency_reproducibility`.

Each stack point is represented by its most recent run that measured the benchmark (runs
sorted by their ``datetime``): re-running a stack replaces its samples, it does not pool
sessions taken hours apart. Files without a ``servecert`` key (other benchmarks sharing the
storage) are ignored; a layer-3 file that is malformed raises :class:`CriDataError` naming the
file, the key and what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import stats
from .claims.model import ClaimResult
from .claims.rules import latency_reproducibility
from .errors import ServecertError
from .latency_stack import EXTRA_INFO_KEY, JSON_KEY, SCHEMA

__all__ = [
    "COMPILED",
    "EAGER",
    "SERVED",
    "CriDataError",
    "SavedBenchmark",
    "SavedRun",
    "evaluate",
    "evaluate_measure",
    "load_runs",
    "run_from_json",
    "stack_samples",
]

#: Paths a layer-3 benchmark measures: the compiled path, its eager control, and a served
#: engine (vLLM, whose CPU build runs eager: it has no separate control).
COMPILED = "compiled"
EAGER = "eager"
SERVED = "served"
PATHS = (COMPILED, EAGER, SERVED)


class CriDataError(ServecertError, ValueError):
    """A saved layer-3 run that cannot be read (the message names file, key and expectation)."""


@dataclass(frozen=True)
class SavedBenchmark:
    """One benchmark of one run: which measure, on which path, and its per-round seconds."""

    measure: str
    path: str
    name: str
    samples: tuple[float, ...]


@dataclass(frozen=True)
class SavedRun:
    """One saved pytest-benchmark run of the layer-3 suite."""

    source: str
    datetime: str
    stack_id: str
    stack: Mapping[str, Any]
    benchmarks: tuple[SavedBenchmark, ...]

    @property
    def summary(self) -> str:
        """A short human name for the stack: its label, else its main versions."""
        label = self.stack.get("label") or ""
        if label:
            return str(label)
        parts = [f"torch {self.stack.get('torch', '?')}"]
        vllm = self.stack.get("vllm", "absent")
        if vllm != "absent":
            parts.append(vllm)
        triton = self.stack.get("triton", "absent")
        if triton != "absent":
            parts.append(f"triton {triton}")
        mode = self.stack.get("compile_mode", "")
        parts.append(f"{self.stack.get('compile_backend', '?')}"
                     + (f":{mode}" if mode and mode != "default" else ""))
        return ", ".join(parts)


def _require(mapping: Any, key: str, kind: type | tuple[type, ...], where: str, expected: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise CriDataError(f"{where}: key {key!r} missing, expected {expected}")
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise CriDataError(f"{where}: {key}={value!r}, expected {expected}")
    return value


def run_from_json(data: Any, source: str) -> SavedRun | None:
    """A :class:`SavedRun` from one saved JSON document; None if it is not a layer-3 run."""
    if not isinstance(data, Mapping):
        raise CriDataError(f"{source}: expected a pytest-benchmark JSON object, got "
                           f"{type(data).__name__}")
    if JSON_KEY not in data:
        return None
    meta = _require(data, JSON_KEY, Mapping, source, "the stack record written by pytest-servecert")
    schema = _require(meta, "schema", int, f"{source}: {JSON_KEY}", f"schema {SCHEMA}")
    if schema != SCHEMA:
        raise CriDataError(f"{source}: {JSON_KEY}.schema={schema!r}, expected {SCHEMA} "
                           "(written by another pytest-servecert version)")
    stack_id = _require(meta, "stack_id", str, f"{source}: {JSON_KEY}", "a fingerprint string")
    stack = _require(meta, "stack", Mapping, f"{source}: {JSON_KEY}", "the stack identity")
    when = _require(data, "datetime", str, source, "an ISO timestamp")
    entries = _require(data, "benchmarks", list, source, "a list of benchmarks")
    benchmarks = []
    for i, entry in enumerate(entries):
        where = f"{source}: benchmarks[{i}]"
        extra = entry.get("extra_info") if isinstance(entry, Mapping) else None
        if not isinstance(extra, Mapping) or EXTRA_INFO_KEY not in extra:
            continue  # not a layer-3 benchmark
        tag = _require(extra, EXTRA_INFO_KEY, Mapping, f"{where}.extra_info",
                       "{'measure': ..., 'path': ...}")
        measure = _require(tag, "measure", str, f"{where}.extra_info.{EXTRA_INFO_KEY}",
                           "a measure name")
        path = _require(tag, "path", str, f"{where}.extra_info.{EXTRA_INFO_KEY}",
                        f"one of {', '.join(PATHS)}")
        if path not in PATHS:
            raise CriDataError(f"{where}.extra_info.{EXTRA_INFO_KEY}: path={path!r}, expected "
                               f"one of {', '.join(PATHS)}")
        stats_entry = _require(entry, "stats", Mapping, where, "the benchmark statistics")
        data_values = _require(stats_entry, "data", list, f"{where}.stats",
                               "the raw per-round samples (save with pytest-servecert installed, "
                               "or with --benchmark-save-data)")
        samples = []
        for value in data_values:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise CriDataError(f"{where}.stats.data: {value!r}, expected non-negative "
                                   "seconds")
            samples.append(float(value))
        benchmarks.append(SavedBenchmark(measure, path, str(entry.get("name", "")),
                                         tuple(samples)))
    return SavedRun(source, when, stack_id, dict(stack), tuple(benchmarks))


def load_runs(storage: Path | str) -> list[SavedRun]:
    """Every layer-3 run saved under ``storage`` (recursively), oldest first."""
    root = Path(storage)
    if not root.exists():
        return []
    runs = []
    for file in sorted(root.rglob("*.json")):
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise CriDataError(f"{file}: not readable as JSON ({exc})") from None
        run = run_from_json(data, str(file))
        if run is not None:
            runs.append(run)
    return sorted(runs, key=lambda r: r.datetime)


def _labels(runs: Sequence[SavedRun]) -> dict[str, str]:
    """stack id -> a display label, unique among ``runs``."""
    first: dict[str, SavedRun] = {}
    for run in runs:
        first.setdefault(run.stack_id, run)
    names = {sid: run.summary for sid, run in first.items()}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {sid: name if counts[name] == 1 else f"{name} #{sid[:8]}" for sid, name in names.items()}


def stack_samples(runs: Sequence[SavedRun], measure: str, path: str) -> dict[str, tuple[float, ...]]:
    """Stack label -> samples of ``measure`` on ``path`` from that stack's latest run."""
    labels = _labels(runs)
    latest: dict[str, tuple[float, ...]] = {}
    for run in sorted(runs, key=lambda r: r.datetime):
        for bench in run.benchmarks:
            if bench.measure == measure and bench.path == path:
                latest[run.stack_id] = bench.samples
    return {labels[sid]: samples for sid, samples in latest.items()}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def evaluate_measure(runs: Sequence[SavedRun], measure: str) -> ClaimResult:
    """The ``L3.cri[measure]`` claim over ``runs``."""
    compiled = stack_samples(runs, measure, COMPILED)
    eager = stack_samples(runs, measure, EAGER)
    served = stack_samples(runs, measure, SERVED)
    if compiled or eager:
        speedups = {label: _mean(eager[label]) / _mean(samples)
                    for label, samples in compiled.items()
                    if label in eager and eager[label] and samples and _mean(samples) > 0}
        cri_compiled = stats.cri(compiled) if compiled else None
        return latency_reproducibility(cri_compiled, eager=stats.cri(eager), subject=measure,
                                       speedups=speedups)
    return latency_reproducibility(stats.cri(served) if served else None, subject=measure)


def measures(runs: Iterable[SavedRun]) -> list[str]:
    """Every measure recorded in ``runs``, in first-seen order."""
    seen: dict[str, None] = {}
    for run in runs:
        for bench in run.benchmarks:
            seen.setdefault(bench.measure, None)
    return list(seen)


def evaluate(runs: Sequence[SavedRun], wanted: Iterable[str] | None = None) -> tuple[ClaimResult, ...]:
    """One ``L3.cri`` result per measure (``wanted``, default every recorded measure)."""
    names = list(wanted) if wanted is not None else measures(runs)
    return tuple(evaluate_measure(runs, name) for name in names)
