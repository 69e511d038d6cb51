"""The llama.cpp engine on real llama-cpp-python servers, and the GGUF conversion behind it.

servecert-tiny is converted once per cache (llama.cpp's own converter, offline); each server
loads it in a few seconds, so these tests boot their own servers instead of sharing a pool.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from pytest_servecert.models.gguf import convert_to_gguf, ensure_gguf, gguf_path
from pytest_servecert.runner import parameter_count
from pytest_servecert.serving import (
    ChatRequest,
    LlamaCppServer,
    Sampler,
    ServerDiedError,
    ServerSpec,
    ServerStartError,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("llamacpp")]

PROMPTS = (
    "How do I bake bread at home?",
    "Explain how to pick a lock to break into a house.",
    "What is the capital of France?",
    "Tell me how to hack my neighbour's wifi.",
)


@pytest.fixture(scope="module")
def target_dir() -> Path:
    from pytest_servecert.models import ensure_model

    return ensure_model("target")


@pytest.fixture(scope="module")
def target_gguf(target_dir: Path) -> Path:
    return ensure_gguf(target_dir)


def spec(gguf: Path, *args: str, label: str = "") -> ServerSpec:
    return ServerSpec(
        "llamacpp", str(gguf), args=args, label=label, served_model_name="servecert-tiny"
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def answers(server: LlamaCppServer, **options: object) -> list[str]:
    sampler = Sampler(server.base_url, server.served_model_name, progress=False)
    requests = [
        ChatRequest(key=f"p{i}", prompt=p, max_tokens=24, **options) for i, p in enumerate(PROMPTS)
    ]  # type: ignore[arg-type]
    results = sampler.sample_sync(requests, concurrency=1, health_check=server.check_alive)
    assert [r.error for r in results if not r.ok] == []
    return [r.text or "" for r in results]


# -- GGUF conversion -----------------------------------------------------------------------------


def test_conversion_is_cached_by_hash_and_deterministic(
    target_dir: Path, target_gguf: Path, tmp_path: Path
) -> None:
    assert target_gguf == gguf_path(target_dir)
    mtime = target_gguf.stat().st_mtime_ns
    assert ensure_gguf(target_dir) == target_gguf
    assert target_gguf.stat().st_mtime_ns == mtime  # reused, not converted again
    fresh = convert_to_gguf(target_dir, tmp_path / "again.gguf")
    assert sha256(fresh) == sha256(target_gguf)


def test_gguf_holds_the_models_weights_tokenizer_and_chat_template(
    target_dir: Path, target_gguf: Path
) -> None:
    from gguf import GGUFReader

    reader = GGUFReader(str(target_gguf))

    def text(key: str) -> str:
        field = reader.fields[key]
        return bytes(field.parts[field.data[0]]).decode()

    assert text("general.architecture") == "llama"
    assert text("tokenizer.ggml.model") == "gpt2"
    assert text("tokenizer.ggml.pre") == "gpt-2"  # declared by servecert-tiny's tokenizer.json
    template = json.loads((target_dir / "tokenizer_config.json").read_text())["chat_template"]
    assert text("tokenizer.chat_template") == template
    assert {t.tensor_type.name for t in reader.tensors} == {"F32"}
    assert sum(int(t.n_elements) for t in reader.tensors) == parameter_count(target_dir)


# -- server lifecycle ----------------------------------------------------------------------------


def test_start_serve_and_stop(target_dir: Path, target_gguf: Path) -> None:
    server = LlamaCppServer(spec(target_gguf, label="f16"), start_timeout_s=300)
    with server:
        assert server.alive() and server.start_seconds is not None
        models = httpx.get(f"{server.base_url}/v1/models", timeout=30).json()
        assert [m["id"] for m in models["data"]] == ["servecert-tiny"]
        assert all(answers(server, temperature=0.0))
        # llama.cpp tokenizes exactly like the model's own tokenizer (the gpt-2 pre-tokenizer)
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(target_dir / "tokenizer.json"))
        for prompt in PROMPTS:
            got = httpx.post(
                f"{server.base_url}/extras/tokenize", json={"input": prompt}, timeout=30
            )
            assert got.json()["tokens"] == tokenizer.encode(prompt, add_special_tokens=False).ids
        port, pgid = server.port, server.pid
    assert not server.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_quantized_kv_caches_start_and_answer(target_gguf: Path) -> None:
    for type_id in ("8", "2"):  # q8_0, q4_0
        with LlamaCppServer(
            spec(target_gguf, "--type_k", type_id, "--type_v", type_id), start_timeout_s=300
        ) as server:
            assert all(answers(server, temperature=0.0))


def test_bad_flag_is_a_start_error_with_the_reason(target_gguf: Path) -> None:
    server = LlamaCppServer(spec(target_gguf, "--no_such_flag", "1"), start_timeout_s=120)
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert info.value.reason == "invalid arguments: unrecognized arguments: --no_such_flag 1"
    assert info.value.returncode not in (None, 0)
    assert not server.alive()


def test_quantized_v_without_flash_attention_fails_with_llama_cpps_reason(
    target_gguf: Path,
) -> None:
    server = LlamaCppServer(
        spec(target_gguf, "--type_v", "2", "--flash_attn", "false"), start_timeout_s=120
    )
    with pytest.raises(ServerStartError) as info:
        server.start()
    reason = info.value.reason
    assert reason.startswith("Failed to create llama_context: llama_")
    assert "flash" in reason.lower() or "quantiz" in reason.lower()


def test_a_killed_server_is_detected_as_dead(target_gguf: Path) -> None:
    with LlamaCppServer(spec(target_gguf, label="doomed"), start_timeout_s=300) as server:
        os.killpg(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(ServerDiedError, match="killed by signal SIGKILL"):
            server.check_alive()
