"""The llama.cpp engine's command line, environment, log reasons and GGUF tokenizer check."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pytest_servecert.models.gguf_convert import declares_gpt2_split
from pytest_servecert.serving import LlamaCppServer, ServerSpec
from pytest_servecert.serving.engine import server_class
from pytest_servecert.serving.llamacpp import (
    KV_CACHE_TYPES,
    REQUEST_HANDLING,
    llamacpp_argv,
    llamacpp_env,
    llamacpp_reason,
)
from pytest_servecert.serving.stack import collect_stack_identity


def spec(*args: str, **kw: object) -> ServerSpec:
    return ServerSpec("llamacpp", "/models/tiny.gguf", args=args, **kw)  # type: ignore[arg-type]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_argv_binds_loopback_names_the_model_and_adds_defaults() -> None:
    argv = llamacpp_argv(spec(served_model_name="servecert-tiny"), port=8123)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    assert flag(argv, "--model") == "/models/tiny.gguf"
    assert flag(argv, "--model_alias") == "servecert-tiny"
    assert (flag(argv, "--host"), flag(argv, "--port")) == ("127.0.0.1", "8123")
    assert flag(argv, "--n_ctx") == "2048"
    assert flag(argv, "--n_threads") == "1"
    assert flag(argv, "--seed") == "0"
    assert flag(argv, "--flash_attn") == "true"
    assert flag(argv, "--interrupt_requests") == "false"


def test_spec_args_override_defaults_in_either_spelling() -> None:
    argv = llamacpp_argv(spec("--n-ctx", "512", "--n_threads=2", "--type_k", "2"), port=1)
    assert "--n_ctx" not in argv and argv[argv.index("--n-ctx") + 1] == "512"
    assert argv.count("--n_threads") == 0 and "--n_threads=2" in argv
    assert argv[-2:] == ["--type_k", "2"]


@pytest.mark.parametrize("reserved", ["--port", "--host", "--model", "--model-alias", "--api_key"])
def test_args_may_not_set_what_the_server_owns(reserved: str) -> None:
    normalised = "--" + reserved[2:].replace("-", "_")
    with pytest.raises(ValueError, match=f"must not set {normalised} "):
        llamacpp_argv(spec(reserved, "x"), port=1)


def test_env_drops_the_servers_setting_fallbacks_and_keeps_the_rest() -> None:
    base = {
        "PORT": "9",
        "host": "0.0.0.0",
        "API_KEY": "s3cret",
        "MODEL": "/other",
        "N_CTX": "64",
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin",
    }
    env = llamacpp_env(spec(env={"OMP_NUM_THREADS": "2"}), workdir=Path("/w"), base_env=base)
    assert not {"PORT", "host", "API_KEY", "MODEL", "N_CTX"} & set(env)
    assert env["PATH"] == "/usr/bin"
    assert env["OMP_NUM_THREADS"] == "2"  # the spec wins
    assert env["HF_HUB_OFFLINE"] == "1"


def test_generic_load_failure_is_completed_by_llama_cpps_own_line() -> None:
    log = [
        "llama_context: constructing llama_context",
        "llama_init_from_model: quantized V cache requires flash_attn to be enabled",
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in <module>',
        "ValueError: Failed to create llama_context",
    ]
    assert llamacpp_reason(log) == (
        "Failed to create llama_context: llama_init_from_model: quantized V cache requires flash_attn to be enabled"
    )


def test_specific_exceptions_and_argparse_errors_stay_as_they_are() -> None:
    assert llamacpp_reason(["ValueError: Model path does not exist: /x.gguf"]) == (
        "Model path does not exist: /x.gguf"
    )
    assert llamacpp_reason(["__main__.py: error: unrecognized arguments: --bogus 1"]) == (
        "invalid arguments: unrecognized arguments: --bogus 1"
    )


def test_registry_and_constructor() -> None:
    assert server_class("llamacpp") is LlamaCppServer
    server = LlamaCppServer("/models/tiny.gguf", args=["--type_k", "8"], start_timeout_s=5)
    assert server.spec.engine == "llamacpp" and server.spec.args == ("--type_k", "8")
    assert server.ready_paths == ("/v1/models",)
    with pytest.raises(ValueError, match="serves engine 'llamacpp'"):
        LlamaCppServer(ServerSpec("vllm", "/m"))


def test_kv_cache_types_are_ggml_type_ids() -> None:
    assert KV_CACHE_TYPES == {"f16": 1, "q8_0": 8, "q4_0": 2}


def test_stack_identity_hashes_the_gguf_and_says_requests_are_serialized(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    identity = collect_stack_identity(ServerSpec("llamacpp", str(gguf)), project_dir=tmp_path)
    extra = dict(identity.extra)
    assert identity.engine == "llamacpp"
    assert len(identity.model_sha256) == 64
    assert extra["llamacpp.requests"] == REQUEST_HANDLING
    assert "llamacpp.system_info" in extra
    assert identity.server_argv[:3] == ("python", "-m", "llama_cpp.server")
    other = collect_stack_identity(
        ServerSpec("llamacpp", str(gguf), args=("--type_k", "2")), project_dir=tmp_path
    )
    assert other.fingerprint != identity.fingerprint


@pytest.mark.parametrize(
    "pre, normalizer, gpt2",
    [
        ({"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}, None, True),
        ({"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}, None, False),
        ({"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}, None, False),
        ({"type": "Metaspace"}, None, False),
        (
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
            {"type": "NFC"},
            False,
        ),
    ],
)
def test_only_an_exact_gpt2_split_is_named_gpt2(
    tmp_path: Path, pre: dict, normalizer: dict | None, gpt2: bool
) -> None:
    (tmp_path / "tokenizer.json").write_text(
        json.dumps({"pre_tokenizer": pre, "normalizer": normalizer})
    )
    assert declares_gpt2_split(tmp_path) is gpt2


def test_no_tokenizer_is_not_gpt2(tmp_path: Path) -> None:
    assert declares_gpt2_split(tmp_path) is False
