"""The stack identity of a layer-3 latency run, written into pytest-benchmark's saved JSON.

pytest-benchmark saves one JSON file per run (``--benchmark-save``); :mod:`pytest_servecert.cri`
reads them back and groups them by stack. This module decides what "the stack" is: device and
ISA, torch, Triton, transformers, vLLM, the compile backend and mode, the KV-cache
implementation, an optional user label, and the code SHA (recorded, not fingerprinted:
re-committing does not make a new stack point). The plugin registers :class:`BenchmarkStackRecorder`,
whose implementations of pytest-benchmark's ``update`` hooks add:

* ``output_json["servecert"] = {"schema": 1, "stack_id": ..., "stack": {...}}``, and the raw
  samples of every layer-3 benchmark (``stats.data``) even without ``--benchmark-save-data``:
  CRI needs samples, not summaries;
* ``machine_info["servecert_stack_id"]``, so ``--benchmark-compare`` warns when it compares
  runs of two stacks.

Every implementation of ``pytest_servecert_stack_info`` (arm ``"layer3"``) may add fields.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ARM",
    "CACHE_IMPLEMENTATION",
    "EXTRA_INFO_KEY",
    "JSON_KEY",
    "SCHEMA",
    "BenchmarkStackRecorder",
    "LatencyStack",
    "collect_latency_stack",
]

#: ``pytest_servecert_stack_info`` is called with this arm name for layer-3 runs.
ARM = "layer3"
#: Top-level key of the saved JSON, and the key in a benchmark's ``extra_info`` that marks it
#: as a layer-3 measurement (``{"measure": "prefill", "path": "compiled"}``).
JSON_KEY = "servecert"
EXTRA_INFO_KEY = "servecert"
SCHEMA = 1
#: The transformers KV cache the compiled/eager benchmarks decode with.
CACHE_IMPLEMENTATION = "DynamicCache"


@dataclass(frozen=True)
class LatencyStack:
    """What a latency number depends on besides the benchmark code (see the module docstring).

    The layer-3 view of a stack: the host fields of :class:`serving.stack.StackIdentity`
    (versions, device, ISA, code revision) plus the compile settings instead of a server's
    argv and model; fingerprinted the same way (:func:`serving.stack.stack_fingerprint`).
    Versions are ``"absent"`` when a library is not installed.
    """

    device_kind: str
    device: str
    isa: tuple[str, ...]
    python: str
    torch: str
    triton: str
    transformers: str
    vllm: str
    compile_backend: str
    compile_mode: str
    cache_implementation: str
    label: str
    code_sha: str
    code_dirty: bool
    extra: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["isa"] = list(self.isa)
        data["extra"] = dict(self.extra)
        return data

    @property
    def stack_id(self) -> str:
        """sha256 of the canonical JSON without the provenance fields (code SHA)."""
        return stack_id(self.to_dict())


def stack_id(stack: Mapping[str, Any]) -> str:
    """The fingerprint of a stack dictionary: :func:`serving.stack.stack_fingerprint`."""
    from .serving.stack import stack_fingerprint

    return stack_fingerprint(stack)


def collect_latency_stack(
    *,
    compile_backend: str,
    compile_mode: str,
    label: str = "",
    cache_implementation: str = CACHE_IMPLEMENTATION,
    extra: Mapping[str, Any] | None = None,
    project_dir: Path | str | None = None,
) -> LatencyStack:
    """The stack of this process (versions from package metadata: nothing heavy is imported)."""
    # imported here: the plugin registers the recorder at configure time, for every run
    from .serving.stack import (
        canonical_extra,
        code_revision,
        device_info,
        dist_version,
        engine_dist_version,
    )

    device_kind, device, isa = device_info()
    sha, dirty = code_revision(Path(project_dir) if project_dir is not None else Path.cwd())
    return LatencyStack(
        device_kind=device_kind,
        device=device,
        isa=isa,
        python=platform.python_version(),
        torch=dist_version("torch"),
        triton=dist_version("triton"),
        transformers=dist_version("transformers"),
        vllm=engine_dist_version("vllm"),
        compile_backend=compile_backend,
        compile_mode=compile_mode,
        cache_implementation=cache_implementation,
        label=label,
        code_sha=sha,
        code_dirty=dirty,
        extra=canonical_extra(extra or {}),
    )


def compile_options(config: pytest.Config) -> tuple[str, str, str]:
    """(backend, mode, stack label) from the command line."""
    return (
        config.getoption("servecert_compile_backend"),
        config.getoption("servecert_compile_mode"),
        config.getoption("servecert_stack_label"),
    )


class BenchmarkStackRecorder:
    """pytest-benchmark hook implementations (optional: pytest-benchmark may be absent)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._stack: LatencyStack | None = None

    @property
    def stack(self) -> LatencyStack:
        if self._stack is None:
            extra: dict[str, Any] = {}
            self.config.hook.pytest_servecert_stack_info(config=self.config, arm=ARM, stack=extra)
            backend, mode, label = compile_options(self.config)
            self._stack = collect_latency_stack(
                compile_backend=backend, compile_mode=mode, label=label, extra=extra,
                project_dir=self.config.rootpath,
            )
        return self._stack

    @pytest.hookimpl(optionalhook=True)
    def pytest_benchmark_update_machine_info(
        self, config: pytest.Config, machine_info: dict[str, Any]
    ) -> None:
        machine_info["servecert_stack_id"] = self.stack.stack_id

    @pytest.hookimpl(optionalhook=True)
    def pytest_benchmark_update_json(
        self, config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]
    ) -> None:
        stack = self.stack
        output_json[JSON_KEY] = {"schema": SCHEMA, "stack_id": stack.stack_id,
                                 "stack": stack.to_dict()}
        samples = {bench.fullname: list(bench.stats.data) for bench in benchmarks
                   if EXTRA_INFO_KEY in (bench.extra_info or {})}
        for entry in output_json.get("benchmarks", ()):
            data = samples.get(entry.get("fullname"))
            if data is not None and "data" not in entry.get("stats", {}):
                entry.setdefault("stats", {})["data"] = data
