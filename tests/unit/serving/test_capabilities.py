"""Engine capabilities have one definition (``serving/engine.py``), read by config and design."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_servecert.config import ConfigError, load_config
from pytest_servecert.design import vllm_axis_args
from pytest_servecert.run.plan import resolve_served_model
from pytest_servecert.serving import engine
from pytest_servecert.serving.engine import ENGINE_CAPABILITIES, ENGINES, engine_capabilities

CONFIG = """
[model]
path = "embedded:target"
[arms.baseline]
[arms.spec]
speculative = { method = "ngram", num_speculative_tokens = 3 }
"""


def test_every_registered_engine_has_capabilities() -> None:
    assert set(ENGINE_CAPABILITIES) == set(ENGINES)
    with pytest.raises(ValueError, match="no serving engine registered as 'tgi'"):
        engine_capabilities("tgi")


def test_config_and_design_read_the_one_table(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "servecert.toml").write_text(CONFIG)
    load_config(tmp_path / "servecert.toml")  # vLLM can express speculative decoding
    vllm = ENGINE_CAPABILITIES["vllm"]
    narrowed = dataclasses.replace(
        vllm, axes={k: v for k, v in vllm.axes.items() if k != "speculative"},
        gaps={"speculative": "switched off in this test"},
    )
    monkeypatch.setitem(engine.ENGINE_CAPABILITIES, "vllm", narrowed)
    with pytest.raises(ConfigError, match=r"cannot express speculative \(switched off in this test\)"):
        load_config(tmp_path / "servecert.toml")
    with pytest.raises(ValueError, match="engine 'vllm' cannot express the axis 'speculative'"):
        vllm_axis_args({"speculative": {"method": "ngram"}}, str)


def test_the_model_format_decides_what_is_served(tmp_path: Path, monkeypatch) -> None:
    model = tmp_path / "model"
    model.mkdir()
    assert resolve_served_model(str(model), "vllm") == str(model)  # a directory, as is
    monkeypatch.setitem(
        engine.ENGINE_CAPABILITIES, "vllm",
        dataclasses.replace(ENGINE_CAPABILITIES["vllm"], model_format="gguf"),
    )
    from pytest_servecert.serving import gguf

    monkeypatch.setattr(gguf, "resolve_gguf", lambda path: Path(path) / "model.gguf")
    assert resolve_served_model(str(model), "vllm") == str(model / "model.gguf")
