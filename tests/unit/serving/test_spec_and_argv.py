"""ServerSpec fingerprints and the vLLM command line / environment builders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_servecert.serving import ServerSpec, VLLMServer
from pytest_servecert.serving.engine import create_server, server_class
from pytest_servecert.serving.vllm import vllm_argv, vllm_env


def spec(*args: str, **kw: object) -> ServerSpec:
    return ServerSpec("vllm", "/models/tiny", args=args, **kw)  # type: ignore[arg-type]


# -- ServerSpec ------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_ignores_label_and_env_order() -> None:
    a = ServerSpec(
        "vllm", "/m", args=("--seed", "1"), env=(("B", "2"), ("A", "1")), label="baseline"
    )
    b = ServerSpec("vllm", "/m", args=("--seed", "1"), env={"A": "1", "B": "2"}, label="other")
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 64
    assert ServerSpec("vllm", "/m").fingerprint == ServerSpec("vllm", Path("/m")).fingerprint
    # Recorded value: a change to the canonical form would silently orphan stored answers.
    recorded = "619c1c9b7ff007e4d4508c626a1ccadb08d4b040419fe7dcbe8efa36738862ff"
    assert ServerSpec("vllm", "/m", args=("--seed", "1"), env={"A": "1"}).fingerprint == recorded


@pytest.mark.parametrize(
    "other",
    [
        ServerSpec("vllm", "/m", args=("--seed", "2")),
        ServerSpec("vllm", "/m2", args=("--seed", "1")),
        ServerSpec("vllm", "/m", args=("--seed", "1"), env={"SERVECERT_INSTANCE": "aa"}),
        ServerSpec("vllm", "/m", args=("--seed", "1"), served_model_name="x"),
        ServerSpec("llamacpp", "/m", args=("--seed", "1")),
    ],
)
def test_fingerprint_changes_with_anything_that_changes_the_process(other: ServerSpec) -> None:
    assert ServerSpec("vllm", "/m", args=("--seed", "1")).fingerprint != other.fingerprint


def test_spec_rejects_bad_types() -> None:
    with pytest.raises(TypeError, match="sequence of str"):
        ServerSpec("vllm", "/m", args="--seed 1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str items"):
        ServerSpec("vllm", "/m", args=("--seed", 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str -> str"):
        ServerSpec("vllm", "/m", env={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="engine"):
        ServerSpec("", "/m")


def test_served_model_name_defaults_to_directory_name() -> None:
    assert spec().model_name == "tiny"
    assert spec(served_model_name="servecert-tiny").model_name == "servecert-tiny"


def test_engine_registry() -> None:
    assert server_class("vllm") is VLLMServer
    with pytest.raises(
        ValueError, match=r"no serving engine registered as 'nope'; known: \['llamacpp', 'vllm'\]"
    ):
        server_class("nope")
    assert isinstance(create_server(spec(), start_timeout_s=5), VLLMServer)
    with pytest.raises(ValueError, match="serves engine 'vllm'"):
        VLLMServer(ServerSpec("llamacpp", "/m"))


# -- argv ------------------------------------------------------------------------------------


def test_argv_is_a_list_bound_to_loopback_with_cpu_defaults() -> None:
    argv = vllm_argv(spec(), port=8123, cpu=True)
    assert all(isinstance(a, str) for a in argv)
    assert argv[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert pairs["--model"] == "/models/tiny"
    assert pairs["--host"] == "127.0.0.1"
    assert pairs["--port"] == "8123"
    assert pairs["--served-model-name"] == "tiny"
    tail = argv[11:]
    assert tail == [
        "--kv-cache-memory-bytes",
        "67108864",
        "--enforce-eager",
        "--max-model-len",
        "512",
        "--seed",
        "0",
        "--dtype",
        "float32",
    ]


def test_dtype_default_only_on_cpu() -> None:
    assert "--dtype" not in vllm_argv(spec(), port=1, cpu=False)
    assert "--kv-cache-memory-bytes" in vllm_argv(spec(), port=1, cpu=False)


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        (("--seed", "7"), ["0"]),
        (("--seed=7",), ["0"]),
        (("--max_model_len", "256"), ["512"]),
        (("--no-enforce-eager",), ["--enforce-eager"]),
        (("--dtype", "bfloat16"), ["float32"]),
        (("--kv-cache-memory-bytes", "1000"), ["67108864"]),
    ],
)
def test_spec_args_override_defaults(args: tuple[str, ...], absent: list[str]) -> None:
    argv = vllm_argv(spec(*args), port=1, cpu=True)
    assert argv[-len(args) :] == list(args)  # spec args come last, so they win anyway
    for value in absent:
        assert value not in argv


@pytest.mark.parametrize(
    "flag", ["--host", "--port", "--model", "--served-model-name", "--host=0.0.0.0"]
)
def test_spec_may_not_set_host_port_or_model(flag: str) -> None:
    args = (flag,) if "=" in flag else (flag, "x")
    with pytest.raises(ValueError, match="must not set"):
        vllm_argv(spec(*args), port=1)


def test_env_is_explicit_and_spec_env_wins(tmp_path: Path) -> None:
    base = {"PATH": "/bin", "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    env = vllm_env(spec(env={"VLLM_CPU_OMP_THREADS_BIND": "0-1"}), workdir=tmp_path, base_env=base)
    assert env["PATH"] == "/bin"
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    assert env["VLLM_CACHE_ROOT"].startswith(str(tmp_path))
    assert env["TORCHINDUCTOR_CACHE_DIR"].startswith(str(tmp_path))
    assert base == {"PATH": "/bin", "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}  # not mutated


def test_vllm_server_from_a_model_path() -> None:
    server = VLLMServer("/models/tiny", args=("--max-num-seqs", "4"), env={"A": "b"})
    assert server.spec == ServerSpec(
        "vllm", "/models/tiny", args=("--max-num-seqs", "4"), env={"A": "b"}
    )
    with pytest.raises(TypeError, match="in the ServerSpec"):
        VLLMServer(spec(), args=("--x",))
