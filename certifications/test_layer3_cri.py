"""Layer 3 — stack reproducibility of latency claims (CRI; README "Layer 3", seed 002 C6, TR147).

A latency claim ("torch.compile makes decode N× faster") can flip on a minor dependency bump
(seed 002 §6.1: 62.82 % → 0.84 % on a Triton bump). This file measures, with pytest-benchmark
(``pedantic``: explicit rounds and warm-up, no calibration loop), on the serving model
(``servecert-tiny``, transformers on the CPU):

* prefill (one forward pass over a 64-token prompt) and decode (one step on a 64-token KV
  cache), each compiled (``torch.compile``, backend/mode from ``--servecert-compile-*``) and
  eager (the control);
* where vLLM is installed: server cold start (fresh compile caches), warm start (caches kept
  from an earlier boot) and time to first streamed token.

Save the run (``--benchmark-save=NAME``): our pytest-benchmark hook writes the stack identity
and the raw samples into the JSON. The last tests read every saved run in the storage plus this
session's, group them by stack and gate each benchmark's latency comparison on its CRI
(:mod:`pytest_servecert.cri`): robust/sensitive ⇒ reportable; fragile/catastrophic ⇒ FAIL
(the latency claim only); fewer than 2 stacks ⇒ INCONCLUSIVE; an eager control that moves
(CRI ≥ 0.5) ⇒ INCONCLUSIVE. Run without pytest-xdist (pytest-benchmark disables itself there).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_servecert.assertions import check_claim
from pytest_servecert.latency_stack import CACHE_IMPLEMENTATION, EXTRA_INFO_KEY, compile_options

pytestmark = pytest.mark.layer3

PROMPT_TOKENS = 64
# Per-round cost is milliseconds for the model benchmarks and ~20-60 s for a vLLM boot; the
# counts keep the whole file within a few minutes on 2 shared cores. Warm-up rounds absorb
# torch.compile's first-call compilation.
MODEL_ROUNDS = 40
MODEL_WARMUP = 3
BOOT_ROUNDS = 2
TTFT_ROUNDS = 15
TTFT_WARMUP = 2
# One intra-op thread: on a shared machine two threads fighting other work for two cores
# mostly measure the neighbours.
THREADS = 1
PATHS = ("compiled", "eager")
MODEL_MEASURES = ("prefill", "decode")
VLLM_MEASURES = ("vllm_cold_start", "vllm_warm_start", "vllm_ttft")

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _tag(benchmark: Any, measure: str, path: str, **info: Any) -> None:
    """Mark a benchmark as a layer-3 measurement (what pytest_servecert.cri groups by)."""
    benchmark.extra_info[EXTRA_INFO_KEY] = {"measure": measure, "path": path}
    benchmark.extra_info.update(info)


# -- the model, compiled and eager -----------------------------------------------------------


@pytest.fixture(scope="module")
def torch_model() -> Any:
    """servecert-tiny (target) in float32 on the CPU, as transformers loads it."""
    torch = pytest.importorskip("torch", reason="layer 3 needs torch (the model extra)")
    from transformers import AutoModelForCausalLM

    from pytest_servecert.models import ensure_model

    torch.set_num_threads(THREADS)
    model = AutoModelForCausalLM.from_pretrained(str(ensure_model("target")), dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="module")
def forwards(request: pytest.FixtureRequest, torch_model: Any) -> dict[str, Callable[..., Any]]:
    """Path -> forward callable; the compiled one compiles on its first (warm-up) call."""
    import torch

    backend, mode, _ = compile_options(request.config)
    options: dict[str, Any] = {"backend": backend}
    if backend == "inductor":
        options["mode"] = mode  # other backends take no mode
    return {"eager": torch_model, "compiled": torch.compile(torch_model, **options)}


@pytest.fixture(scope="module")
def prompt_ids(torch_model: Any) -> Any:
    """A fixed, seeded 64-token prompt (latency depends on its length, not its words)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    vocab = torch_model.config.vocab_size
    return torch.randint(3, vocab, (1, PROMPT_TOKENS), generator=generator)


@pytest.fixture(scope="module")
def prefilled(torch_model: Any, prompt_ids: Any) -> tuple[Any, Any]:
    """(next token ids, the prompt's KV cache), from one eager prefill."""
    import torch

    with torch.inference_mode():
        out = torch_model(input_ids=prompt_ids, use_cache=True)
    assert type(out.past_key_values).__name__ == CACHE_IMPLEMENTATION
    return out.logits[:, -1:].argmax(-1), out.past_key_values


def _benchmark_info(request: pytest.FixtureRequest, path: str) -> dict[str, Any]:
    backend, mode, _ = compile_options(request.config)
    info: dict[str, Any] = {"threads": THREADS, "prompt_tokens": PROMPT_TOKENS,
                            "cache_implementation": CACHE_IMPLEMENTATION}
    if path == "compiled":
        info.update(compile_backend=backend, compile_mode=mode)
    return info


@pytest.mark.parametrize("path", PATHS)
def test_prefill_latency(benchmark, request, forwards, prompt_ids, path):
    """One forward pass over the prompt, no cache: the prefill of a request."""
    import torch

    forward = forwards[path]
    _tag(benchmark, "prefill", path, **_benchmark_info(request, path))

    def prefill() -> Any:
        with torch.inference_mode():
            return forward(input_ids=prompt_ids, use_cache=False).logits

    logits = benchmark.pedantic(prefill, rounds=MODEL_ROUNDS, warmup_rounds=MODEL_WARMUP)
    assert logits.shape[:2] == (1, PROMPT_TOKENS)


@pytest.mark.parametrize("path", PATHS)
def test_decode_latency(benchmark, request, torch_model, forwards, prefilled, path):
    """One decode step on a 64-token KV cache (a fresh copy each round, so shapes never grow)."""
    import torch

    forward = forwards[path]
    next_ids, cache = prefilled
    _tag(benchmark, "decode", path, **_benchmark_info(request, path))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (copy.deepcopy(cache),), {}

    # transformers >= 5.24 renamed the forward argument (the old name warns)
    params = inspect.signature(type(torch_model).forward).parameters
    cache_arg = "cache" if "cache" in params else "past_key_values"

    def decode(past: Any) -> Any:
        with torch.inference_mode():
            return forward(input_ids=next_ids, use_cache=True, **{cache_arg: past}).logits

    logits = benchmark.pedantic(decode, setup=setup, rounds=MODEL_ROUNDS,
                                warmup_rounds=MODEL_WARMUP)
    assert logits.shape[:2] == (1, 1)


# -- vLLM: boots and time to first token -----------------------------------------------------


def _require_vllm() -> None:
    if not HAS_VLLM:
        pytest.skip("NOT RUN: not applicable to this stack (vLLM is not installed here); "
                    "its vLLM benchmarks have no stack point from it")


@pytest.fixture(scope="module")
def vllm_model() -> Path:
    _require_vllm()
    from pytest_servecert.models import ensure_model

    return ensure_model("target")


def _spec(model: Path, cache: Path) -> Any:
    from pytest_servecert.serving import ServerSpec

    # Our own cache directories (spec.env wins over the per-server ones) so that a boot can
    # find what an earlier boot compiled.
    env = {"VLLM_CACHE_ROOT": str(cache / "vllm"), "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor")}
    return ServerSpec("vllm", str(model), env=env, label="layer3")


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vllm-warm-cache")


@pytest.fixture(scope="module")
def ttft_server(vllm_model: Path, warm_cache: Path) -> Iterator[Any]:
    """One server for the TTFT rounds; its boot also fills the warm-start cache."""
    from pytest_servecert.serving import VLLMServer

    with VLLMServer(_spec(vllm_model, warm_cache), start_timeout_s=420) as server:
        yield server


def _boot(benchmark: Any, model: Path, cache_for_round: Callable[[], Path]) -> None:
    from pytest_servecert.serving import VLLMServer

    servers: list[Any] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        server = VLLMServer(_spec(model, cache_for_round()), start_timeout_s=420)
        servers.append(server)
        return (server,), {}

    def teardown(server: Any) -> None:
        server.stop()

    try:
        benchmark.pedantic(lambda server: server.start(), setup=setup, teardown=teardown,
                           rounds=BOOT_ROUNDS)
    finally:
        for server in servers:
            server.stop()
    assert all(s.start_seconds > 0 for s in servers)


def test_vllm_cold_start(benchmark, vllm_model, tmp_path_factory):
    """Boot to ready with empty vLLM/inductor caches (a fresh directory every round)."""
    _tag(benchmark, "vllm_cold_start", "served", args="defaults (--enforce-eager on CPU)")
    _boot(benchmark, vllm_model, lambda: tmp_path_factory.mktemp("vllm-cold-cache"))


def test_vllm_ttft(benchmark, ttft_server):
    """Time to the first streamed token of a short chat request (the server is warm)."""
    import httpx

    _tag(benchmark, "vllm_ttft", "served", max_tokens=8)
    body = {"model": ttft_server.served_model_name, "max_tokens": 8, "temperature": 0.0,
            "stream": True, "messages": [{"role": "user", "content": "How do plants grow?"}]}

    with httpx.Client(base_url=ttft_server.base_url, trust_env=False, timeout=60) as client:

        def first_token() -> str:
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.startswith("data: ") and '"content":"' in line.replace(" ", ""):
                        return line
            raise AssertionError("the stream ended without a content token")

        line = benchmark.pedantic(first_token, rounds=TTFT_ROUNDS, warmup_rounds=TTFT_WARMUP)
    assert line.startswith("data: ")


def test_vllm_warm_start(benchmark, vllm_model, warm_cache, ttft_server):
    """Boot to ready with the caches an earlier boot of the same spec left (``ttft_server``)."""
    _tag(benchmark, "vllm_warm_start", "served", args="defaults (--enforce-eager on CPU)")
    _boot(benchmark, vllm_model, lambda: warm_cache)


# -- the claim: CRI over every saved stack ---------------------------------------------------


def _this_session_run(config: pytest.Config) -> Any:
    """This session's benchmarks as the JSON pytest-benchmark will save at the end (same hooks)."""
    from pytest_servecert.cri import run_from_json

    session = getattr(config, "_benchmarksession", None)  # pytest-benchmark's own handle
    if session is None or not session.benchmarks:
        return None
    machine_info = session.get_machine_info()
    commit_info = config.hook.pytest_benchmark_generate_commit_info(config=config)
    config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    output = config.hook.pytest_benchmark_generate_json(
        config=config, benchmarks=session.benchmarks, include_data=True,
        machine_info=machine_info, commit_info=commit_info)
    config.hook.pytest_benchmark_update_json(config=config, benchmarks=session.benchmarks,
                                             output_json=output)
    return run_from_json(output, "this session")


@pytest.fixture(scope="module")
def saved_runs(request: pytest.FixtureRequest) -> list[Any]:
    from pytest_servecert.cri import CriDataError, load_runs

    session = getattr(request.config, "_benchmarksession", None)
    if session is None:
        pytest.fail("layer 3 needs pytest-benchmark (the test extra)", pytrace=False)
    storage = getattr(session.storage, "path", None)
    try:
        runs = load_runs(storage) if storage is not None else []
    except CriDataError as exc:
        pytest.fail(f"servecert: {exc}", pytrace=False)
    current = _this_session_run(request.config)
    return runs + ([current] if current is not None else [])


@pytest.mark.parametrize("measure", MODEL_MEASURES + VLLM_MEASURES)
def test_latency_reproducibility(request, saved_runs, measure):
    """L3.cri per benchmark: is its cross-stack latency comparison reportable?"""
    from pytest_servecert.cri import evaluate_measure

    check_claim(request, evaluate_measure(saved_runs, measure))
