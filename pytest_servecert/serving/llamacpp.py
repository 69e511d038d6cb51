"""llama.cpp's OpenAI-compatible server (llama-cpp-python) as a child process.

``python -m llama_cpp.server`` is started with the interpreter running this code on one GGUF
file (:mod:`.gguf` converts a Hugging Face model directory offline). Defaults are added unless
the spec sets the flag itself:

=========================  =======  ===============================================================
flag                       value    why
=========================  =======  ===============================================================
``--n_ctx``                2048     room for HarmBench's contextual behaviors, like the vLLM default
``--n_threads``            1        a fixed thread count: the same kernels split on every machine,
``--n_threads_batch``      1        and one core left for the client and other servers
``--seed``                 0        reproducible seeded sampling (requests carry their own seed)
``--flash_attn``           true     quantized V caches need it; on for every arm, so an f16 vs
                                    q4_0 contrast changes the cache type and nothing else
``--interrupt_requests``   false    a queued request never cuts another one short
=========================  =======  ===============================================================

**One request at a time.** llama-cpp-python's server holds one model context behind a lock:
concurrent requests queue and are computed one after another. The design's ``batch_size`` axis
stays *client concurrency* (how many requests are in flight), which on this engine exercises
the queue, not batched kernels; every stack identity says so (``llamacpp.requests``).

KV-cache types are ggml type ids (``--type_k``/``--type_v``): :data:`KV_CACHE_TYPES`.

Usage::

    from pytest_servecert.serving import ServerSpec
    from pytest_servecert.serving.llamacpp import LlamaCppServer

    with LlamaCppServer(ServerSpec("llamacpp", "model.gguf", args=("--type_k", "2"))) as server:
        print(server.base_url, server.served_model_name, server.start_seconds)
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .engine import LOOPBACK, ProcessServer, ServerSpec, reason_from_log

if TYPE_CHECKING:
    from .stack import StackIdentity

__all__ = [
    "DEFAULT_ARGS",
    "KV_CACHE_TYPES",
    "REQUEST_HANDLING",
    "RESERVED_FLAGS",
    "LlamaCppServer",
    "llamacpp_argv",
    "llamacpp_env",
    "llamacpp_reason",
]

ENTRYPOINT = "llama_cpp.server"

#: ``kv_cache_dtype`` level -> ggml type id (``enum ggml_type`` in ggml.h, a stable ABI).
KV_CACHE_TYPES: dict[str, int] = {"f16": 1, "q8_0": 8, "q4_0": 2}

#: Added unless the spec sets the flag (``(flag, values)``).
DEFAULT_ARGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("--n_ctx", ("2048",)),
    ("--n_threads", ("1",)),
    ("--n_threads_batch", ("1",)),
    ("--seed", ("0",)),
    ("--flash_attn", ("true",)),
    ("--interrupt_requests", ("false",)),
)
#: The server owns these: a spec that sets them is rejected.
RESERVED_FLAGS = frozenset(
    {"--host", "--port", "--model", "--model_alias", "--config_file", "--api_key"}
)
#: What ``batch_size`` means on this engine (recorded in every stack identity).
REQUEST_HANDLING = (
    "serialized: one request computed at a time; batch_size = client concurrency, queued"
)

# pydantic-settings fills every server setting the command line leaves out from an
# environment variable of the same name (any case), and uvicorn binds $HOST:$PORT over the
# flags: a stray MODEL, API_KEY or PORT in the caller's environment must not reach the server.
_SETTINGS_ENV_FALLBACK = frozenset({"host", "port", "config_file"})  # + every setting name
# llama.cpp's own diagnostics ("llama_model_load: error loading model: ...").
_NATIVE_LINE = re.compile(r"^(?:llama|gguf|ggml|clip)_\w+:\s*(?P<msg>.+)$")
_NATIVE_WORDS = re.compile(
    r"error|failed|requires|not supported|unsupported|invalid|cannot|can't|unknown", re.IGNORECASE
)
# Python-side wrappers that only say *that* llama.cpp failed.
_GENERIC = re.compile(r"^Failed to (?:create llama_context|load model from file)", re.IGNORECASE)


def _flag_name(arg: str) -> str | None:
    """``--n-ctx=5`` -> ``--n_ctx`` (llama-cpp-python's flags are the settings' field names)."""
    if not arg.startswith("--"):
        return None
    return "--" + arg[2:].split("=", 1)[0].replace("-", "_")


def llamacpp_argv(
    spec: ServerSpec, *, host: str = LOOPBACK, port: int, python: str | None = None
) -> list[str]:
    """The server command line for ``spec``: base flags, defaults not overridden, spec args.

    Raises
    ------
    ValueError
        If ``spec.args`` sets a flag the server owns (:data:`RESERVED_FLAGS`).
    """
    given = {name for arg in spec.args if (name := _flag_name(arg))}
    reserved = sorted(given & RESERVED_FLAGS)
    if reserved:
        raise ValueError(
            f"server spec {spec.label or spec.fingerprint[:12]!r}: args must not set "
            f"{', '.join(reserved)} (the server binds {LOOPBACK} on a free port and names the "
            f"model itself); got {list(spec.args)!r}"
        )
    argv = [
        python or sys.executable,
        "-m",
        ENTRYPOINT,
        "--model",
        spec.model,
        "--model_alias",
        spec.model_name,
        "--host",
        host,
        "--port",
        str(port),
    ]
    for flag, values in DEFAULT_ARGS:
        if flag not in given:
            argv += [flag, *values]
    argv += spec.args
    return argv


def llamacpp_env(
    spec: ServerSpec, *, workdir: Path, base_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base_env`` without the server settings' environment fallbacks, then ``spec.env``."""
    drop = _SETTINGS_ENV_FALLBACK | set(_probe()["settings"])
    env = {
        key: value
        for key, value in (os.environ if base_env is None else base_env).items()
        if key.lower() not in drop
    }
    env["HF_HUB_OFFLINE"] = "1"  # chat handlers can fetch from a hub; nothing is downloaded
    env.update(spec.env)
    return env


def llamacpp_reason(lines: Sequence[str]) -> str:
    """The Python exception, completed by llama.cpp's own diagnostic when the exception only
    says that loading failed (``Failed to create llama_context: <why>``)."""
    reason = reason_from_log(lines)
    if not _GENERIC.match(reason):
        return reason
    for line in reversed(lines):
        match = _NATIVE_LINE.match(line.strip())
        if match and _NATIVE_WORDS.search(match["msg"]):
            return f"{reason.rstrip('.')}: {line.strip()}"
    return reason


_PROBE = """
import ctypes, json, pathlib
import llama_cpp
from llama_cpp.server.settings import Settings
info = {"system_info": llama_cpp.llama_print_system_info().decode().strip()}
lib = pathlib.Path(llama_cpp.__file__).parent / "lib"
for so in sorted(lib.glob("libggml-base.so*")):
    handle = ctypes.CDLL(str(so))
    for name in ("ggml_version", "ggml_commit"):
        fn = getattr(handle, name, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            info[name] = fn().decode()
    break
print(json.dumps({"info": info, "settings": sorted(Settings.model_fields)}))
"""


@functools.cache
def _probe(python: str = sys.executable) -> dict[str, Any]:
    """Ask the installed llama-cpp-python, in a child interpreter (the native library is never
    loaded into the caller), for its build facts and its server's setting names."""
    try:
        done = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
        )
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {"info": {"system_info": "absent"}, "settings": []}


def native_info() -> dict[str, str]:
    """llama.cpp's build: ``system_info`` (compiled-in CPU features), ``ggml_version`` and
    ``ggml_commit`` when the library exports them; ``{"system_info": "absent"}`` without it."""
    return {str(k): str(v) for k, v in _probe()["info"].items()}


class LlamaCppServer(ProcessServer):
    """A llama-cpp-python OpenAI-compatible server for one :class:`ServerSpec`.

    Parameters
    ----------
    spec : ServerSpec or path
        A spec with ``engine="llamacpp"`` whose ``model`` is a GGUF file, or a GGUF path
        (then ``args``/``env`` apply).
    args, env :
        Only with a model path: the spec's flags and environment.
    **options :
        ``start_timeout_s`` (default 420), ``workdir``, ``stop_grace_s``; see
        :class:`~pytest_servecert.serving.engine.ProcessServer`.
    """

    engine: ClassVar[str] = "llamacpp"
    # The model is loaded before the HTTP server listens; there is no /health.
    ready_paths: ClassVar[tuple[str, ...]] = ("/v1/models",)

    @classmethod
    def argv_for(cls, spec: ServerSpec, *, host: str, port: int) -> list[str]:
        return llamacpp_argv(spec, host=host, port=port)

    @classmethod
    def env_for(
        cls, spec: ServerSpec, *, workdir: Path, base_env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        return llamacpp_env(spec, workdir=workdir, base_env=base_env)

    @classmethod
    def log_reason(cls, lines: Sequence[str]) -> str:
        return llamacpp_reason(lines)

    @classmethod
    def engine_identity(cls, spec: ServerSpec) -> dict[str, str]:
        info = {f"llamacpp.{k}": v for k, v in native_info().items()}
        info["llamacpp.requests"] = REQUEST_HANDLING
        return info

    def stack_identity(self, extra: Mapping[str, Any] | None = None) -> StackIdentity:
        from .stack import collect_stack_identity

        return collect_stack_identity(self.spec, extra=extra)
