"""The llama.cpp engine's axis mapping, and axes it cannot express refused at config/plan time."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.config import ConfigError, load_config
from pytest_servecert.design import contexts, llamacpp_axis_args, plan_arms, server_plan

ROOT = Path(__file__).resolve().parents[1].parent

LLAMA = """
[engine]
name = "llamacpp"
[arms.baseline]
kv_cache_dtype = "f16"
[arms.q4]
kv_cache_dtype = "q4_0"
[design.axes]
batch_size = [1, 4]
temperature = [0.0, 0.7]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "servecert.toml"
    path.write_text(text)
    return path


def same(name: str) -> str:
    return name


@pytest.mark.parametrize("dtype, type_id", [("f16", "1"), ("q8_0", "8"), ("q4_0", "2")])
def test_kv_cache_dtype_becomes_type_k_and_type_v(dtype: str, type_id: str) -> None:
    assert llamacpp_axis_args({"kv_cache_dtype": dtype}, same) == [
        "--type_k",
        type_id,
        "--type_v",
        type_id,
    ]


def test_unset_axes_keep_the_engine_default() -> None:
    assert llamacpp_axis_args({}, same) == []


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"kv_cache_dtype": "fp8"}, "kv_cache_dtype = 'fp8': expected one of f16, q8_0, q4_0"),
        ({"prefix_caching": True}, "cannot express the axis 'prefix_caching'"),
        ({"speculative": {"method": "ngram"}}, "cannot express the axis 'speculative'"),
    ],
)
def test_plan_refuses_what_llamacpp_cannot_express(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        llamacpp_axis_args(settings, same)


def test_llamacpp_config_plans_one_server_per_arm(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, LLAMA))
    ctxs = contexts(config.design)
    plans = {
        (server_plan(config, arm, ctx, same).args, server_plan(config, arm, ctx, same).env)
        for arm in plan_arms(config)
        for ctx in ctxs
    }
    assert len(plans) == 3  # baseline, q4, A/A: batch size and temperature are client-side
    q4 = server_plan(config, plan_arms(config)[1], ctxs[0], same)
    assert q4.args == ("--type_k", "2", "--type_v", "2")


@pytest.mark.parametrize(
    "text, line",
    [
        (
            LLAMA + "prefix_caching = [false, true]\n",
            (
                "[design.axes] prefix_caching = [False, True]: engine 'llamacpp' cannot express "
                "prefix_caching (llama-cpp-python always reuses the previous request's KV prefix "
                "and has no switch for it); remove it or use an engine that can"
            ),
        ),
        (
            LLAMA.replace('kv_cache_dtype = "q4_0"', 'speculative = { method = "ngram" }'),
            "[arms.q4] speculative = {'method': 'ngram'}: engine 'llamacpp' cannot express speculative",
        ),
        (
            LLAMA.replace('"q4_0"', '"fp8"'),
            "[arms.q4] kv_cache_dtype = 'fp8': expected one of 'f16', 'q8_0', 'q4_0' for engine 'llamacpp'",
        ),
        (
            LLAMA.replace('kv_cache_dtype = "q4_0"', "")
            .replace("[design.axes]", '[design.axes]\nkv_cache_dtype = ["f16", "q5_1"]')
            .replace('kv_cache_dtype = "f16"', ""),
            "[design.axes] kv_cache_dtype = 'q5_1': expected one of 'f16', 'q8_0', 'q4_0' for engine 'llamacpp'",
        ),
    ],
)
def test_config_refuses_axes_the_engine_cannot_express_in_one_line(
    tmp_path: Path, text: str, line: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert line in message


def test_vllm_keeps_every_axis(tmp_path: Path) -> None:
    text = LLAMA.replace('name = "llamacpp"', 'name = "vllm"') + "prefix_caching = [false, true]\n"
    assert load_config(write(tmp_path, text)).design.axes["prefix_caching"] == (False, True)


def test_shipped_llamacpp_profile_certifies_q8_0_and_q4_0_against_f16() -> None:
    config = load_config(ROOT / "servecert-llamacpp.toml")
    assert config.engine.name == "llamacpp"
    assert config.baseline.settings == {"kv_cache_dtype": "f16"}
    assert {a.name: a.settings["kv_cache_dtype"] for a in config.candidates} == {
        "q8_0_kv": "q8_0",
        "q4_0_kv": "q4_0",
    }
    assert config.design.kind == "star"
    assert "batch_size" in config.design.axes and "temperature" in config.design.axes
    assert config.store_path != load_config(ROOT / "servecert.toml").store_path
