"""Serving: engine servers, the async sampler, stack identity and the server pool.

* :mod:`.engine`  ServerSpec, the Server interface, ProcessServer, errors, engine registry
* :mod:`.vllm`    VLLMServer (``python -m vllm.entrypoints.openai.api_server``)
* :mod:`.llamacpp` LlamaCppServer (``python -m llama_cpp.server``, one GGUF file)
* :mod:`.client`  Sampler, ChatRequest, SampleResult (OpenAI-compatible, httpx)
* :mod:`.stack`   StackIdentity, collect_stack_identity
* :mod:`.pool`    ServerPool (one process per distinct spec)

The embedded models these servers run are built by :mod:`pytest_servecert.models`.
Names load on first use, so importing one submodule does not import httpx or tqdm.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ServerSpec": "engine",
    "Server": "engine",
    "ProcessServer": "engine",
    "ServingError": "engine",
    "ServerStartError": "engine",
    "ServerDiedError": "engine",
    "create_server": "engine",
    "reason_from_log": "engine",
    "VLLMServer": "vllm",
    "LlamaCppServer": "llamacpp",
    "ChatRequest": "client",
    "SampleResult": "client",
    "Sampler": "client",
    "sample_sync": "client",
    "StackIdentity": "stack",
    "collect_stack_identity": "stack",
    "ServerPool": "pool",
}

__all__ = [
    "ChatRequest",
    "LlamaCppServer",
    "ProcessServer",
    "SampleResult",
    "Sampler",
    "Server",
    "ServerDiedError",
    "ServerPool",
    "ServerSpec",
    "ServerStartError",
    "ServingError",
    "StackIdentity",
    "VLLMServer",
    "collect_stack_identity",
    "create_server",
    "reason_from_log",
    "sample_sync",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
