"""GGUF cache keys, model references for llama.cpp, and the one-line errors (no conversion runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.config import ConfigError
from pytest_servecert.models.gguf import GGUFError, ensure_gguf, gguf_key, resolve_gguf
from pytest_servecert.runner import resolve_served_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "tiny"
    path.mkdir()
    (path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (path / "tokenizer.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def test_key_follows_weights_files_version_and_outtype(model_dir: Path) -> None:
    key = gguf_key(model_dir, "f32", "0.3.36")
    assert key == gguf_key(model_dir, "f32", "0.3.36")
    assert key != gguf_key(model_dir, "f16", "0.3.36")
    assert key != gguf_key(model_dir, "f32", "0.3.37")
    (model_dir / "model.safetensors").write_bytes(b"other weights")
    assert key != gguf_key(model_dir, "f32", "0.3.36")
    changed = gguf_key(model_dir, "f32", "0.3.36")
    (model_dir / "tokenizer.json").write_text('{"model": {}}')
    assert changed != gguf_key(model_dir, "f32", "0.3.36")


def test_a_gguf_file_is_served_as_it_is(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_gguf(str(gguf)) == gguf


@pytest.mark.parametrize("name", ["missing", "notes.txt"])
def test_anything_else_is_one_clear_line(tmp_path: Path, name: str) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(GGUFError) as info:
        resolve_gguf(str(tmp_path / name))
    assert "\n" not in str(info.value)
    assert "expected a .gguf file, a Hugging Face model directory or 'embedded:target'" in str(
        info.value
    )


def test_bad_outtype_and_non_model_directory(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="outtype 'q4_k': expected one of f32, f16, bf16, q8_0"):
        ensure_gguf(model_dir, outtype="q4_k")
    with pytest.raises(GGUFError, match="not a Hugging Face model directory"):
        ensure_gguf(tmp_path)


def test_missing_converter_names_the_install_step(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVECERT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(GGUFError) as info:
        ensure_gguf(model_dir)
    message = str(info.value)
    assert "\n" not in message
    assert "python -m pytest_servecert.models.gguf fetch-converter" in message
    assert not list((tmp_path / "cache" / "gguf").glob("*.gguf"))  # nothing half-written


def test_runner_reports_it_as_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^\[model\] path = '/nope': model path '/nope': expected"
    ):
        resolve_served_model("/nope", "llamacpp")
    with pytest.raises(ConfigError, match="expected a model directory"):
        resolve_served_model("/nope", "vllm")
