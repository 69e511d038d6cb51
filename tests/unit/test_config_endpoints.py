"""Endpoint arms in servecert.toml: keys, deployments per server-axis level, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.config import ConfigError, load_config

ENDPOINTS = """
[arms.baseline]
endpoints = ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]
model = "servecert-tiny"
kv_cache_dtype = "auto"
identity = { gpu = "none", replicas_per_node = 2 }

[arms.fp8]
endpoints = ["http://127.0.0.1:8003/v1"]
model = "servecert-tiny"
kv_cache_dtype = "fp8"
timeout_s = 30
concurrency_per_replica = 4

[design.axes]
temperature = [0.0, 0.7]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "servecert.toml"
    path.write_text(text)
    return path


def test_endpoint_arms_parse_and_model_path_is_optional(tmp_path):
    config = load_config(write(tmp_path, ENDPOINTS))
    assert config.baseline.is_endpoint
    assert config.baseline.endpoints == ("http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1")
    assert config.baseline.identity == (("gpu", "none"), ("replicas_per_node", "2"))
    assert config.candidates[0].settings == {"kv_cache_dtype": "fp8"}
    assert config.candidates[0].timeout_s == 30.0
    assert config.candidates[0].concurrency_per_replica == 4
    assert config.model.path is None  # the servers state the model
    mixed = load_config(write(tmp_path, ENDPOINTS.replace('[arms.fp8]\nendpoints = ["http://127.0.0.1:8003/v1"]\n'
                                                          'model = "servecert-tiny"\n', "[arms.fp8]\n")
                                       .replace("timeout_s = 30\nconcurrency_per_replica = 4\n", "")))
    assert mixed.model.path == "embedded:target"  # a booted arm needs a model


def test_a_design_server_axis_needs_a_listed_deployment_per_level(tmp_path):
    text = ENDPOINTS + "prefix_caching = [false, true]\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert str(info.value) == (
        f"{tmp_path / 'servecert.toml'}: [arms.baseline] is a deployment (endpoints) whose server axes are "
        'fixed; the design needs prefix_caching=on, served by the arm [arms."baseline@prefix_caching=on"] '
        "(endpoints = [...]), which is not listed"
    )
    text += """
[arms."baseline@prefix_caching=on"]
endpoints = ["http://127.0.0.1:8011/v1"]
identity = { node = "b" }
[arms."fp8@prefix_caching=on"]
endpoints = ["http://127.0.0.1:8013/v1"]
"""
    config = load_config(write(tmp_path, text))
    dep = config.baseline.deployments["prefix_caching=on"]
    assert dep.endpoints == ("http://127.0.0.1:8011/v1",)
    assert (dep.model == "servecert-tiny"
            and dict(dep.identity) == {"gpu": "none", "replicas_per_node": "2", "node": "b"})
    assert [a.name for a in config.arms] == ["baseline", "fp8"]  # deployments are not arms of their own


@pytest.mark.parametrize(
    "old, new, fragment",
    [
        ('model = "servecert-tiny"\nkv_cache_dtype = "auto"', 'kv_cache_dtype = "auto"',
         "[arms.baseline] model = None: expected the served model name"),
        ('"http://127.0.0.1:8001/v1", ', '"ftp://x/v1", ', "endpoints = 'ftp://x/v1': expected an http(s) URL"),
        ('"http://127.0.0.1:8001/v1", ', '"http://u:pw@127.0.0.1:8001/v1", ',
         "endpoints: a URL holds credentials; put the key in an environment variable"),
        ('"http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"', '"http://127.0.0.1:8001/v1", "http://127.0.0.1:8001/v1"',
         "expected distinct URLs"),
        ("timeout_s = 30", "timeout_s = nan", "[arms.fp8] timeout_s = nan: expected a positive finite number"),
        ("concurrency_per_replica = 4", "concurrency_per_replica = 0",
         "concurrency_per_replica = 0: expected an integer >= 1"),
        ("timeout_s = 30", 'api_key_env = "SERVECERT_TEST_UNSET_KEY"',
         "api_key_env = 'SERVECERT_TEST_UNSET_KEY': expected an environment variable that is set"),
        ("timeout_s = 30", 'headers_env = { "X-Tenant" = "not a name" }',
         "headers_env = 'not a name': expected the NAME of an environment variable"),
        ("timeout_s = 30", 'args = ["--max-num-seqs", "8"]',
         "[arms.fp8] args = ['--max-num-seqs', '8']: expected no args: an endpoint arm boots nothing"),
        ("replicas_per_node = 2", 'api_key = "x"', "identity = 'api_key': expected no secret-looking keys"),
        ("[arms.fp8]\n", '[arms.fp8]\nspeculative = "on"\n', "speculative = 'on': expected false/\"off\" or a table"),
    ],
)
def test_endpoint_errors_are_one_line(tmp_path, monkeypatch, old, new, fragment):
    monkeypatch.delenv("SERVECERT_TEST_UNSET_KEY", raising=False)
    assert old in ENDPOINTS
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, ENDPOINTS.replace(old, new, 1)))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_concurrency_per_replica_and_a_batch_size_axis_exclude_each_other(tmp_path):
    with pytest.raises(ConfigError, match=r"\[arms.fp8\] concurrency_per_replica = 4: the design varies batch_size"):
        load_config(write(tmp_path, ENDPOINTS + "batch_size = [1, 8]\n"))


def test_endpoint_keys_on_a_booted_arm_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\[arms.baseline\] model = 'x': expected endpoints = \[...\] first"):
        load_config(write(tmp_path, '[arms.baseline]\nmodel = "x"\n[arms.c]\nkv_cache_dtype = "fp8"\n'))


def test_a_deployment_of_an_unknown_or_booted_arm_is_refused(tmp_path):
    text = ENDPOINTS + '[arms."nobody@prefix_caching=on"]\nendpoints = ["http://127.0.0.1:1/v1"]\n'
    with pytest.raises(ConfigError, match=r"expected a deployment of an endpoint arm \[arms.nobody\]"):
        load_config(write(tmp_path, text))
    text = ENDPOINTS + '[arms."fp8@prefix_caching=on"]\nendpoints = ["http://127.0.0.1:1/v1"]\n'
    with pytest.raises(ConfigError, match="the design never needs prefix_caching=on"):
        load_config(write(tmp_path, text))


def test_external_endpoints_need_allow_external_for_adversarial_batteries(tmp_path, monkeypatch):
    external = ENDPOINTS.replace("http://127.0.0.1:8003/v1", "https://llm.internal.example/v1")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, external))
    assert ("[arms.fp8] endpoints: llm.internal.example is not on loopback and battery 'harmbench' is adversarial"
            in str(info.value))
    assert "set [arms] allow_external = true" in str(info.value)
    config = load_config(write(tmp_path, "[arms]\nallow_external = true\n" + external))
    assert config.allow_external_endpoints is True
    benign = external + ('[batteries]\nuse = ["mine"]\n[batteries.custom.mine]\npath = "x.csv"\nexpected = "comply"\n'
                         'harmful = false\n')
    assert load_config(write(tmp_path, benign)).candidates[0].endpoints == ("https://llm.internal.example/v1",)


def test_booted_replicas_fit_the_live_servers_and_devices(tmp_path):
    base = ('[engine]\nmax_live_servers = 2\n{devices}\n[arms.baseline]\nreplicas = {n}\n'
            '[arms.c]\nkv_cache_dtype = "fp8"\n')
    config = load_config(write(tmp_path, base.format(devices='devices = ["0", "1"]', n=2)))
    assert config.baseline.replicas == 2 and config.engine.devices == ("0", "1")
    with pytest.raises(ConfigError, match=r"replicas = 3: expected at most \[engine\] max_live_servers = 2"):
        load_config(write(tmp_path, base.format(devices="", n=3)))
    with pytest.raises(ConfigError,
                       match=r"replicas = 2: expected at most one replica per \[engine\] devices entry \(1 given\)"):
        load_config(write(tmp_path, base.format(devices='devices = ["0"]', n=2)))
    with pytest.raises(ConfigError, match="replicas = 0: expected an integer >= 1"):
        load_config(write(tmp_path, base.format(devices="", n=0)))
    with pytest.raises(ConfigError, match="no replicas on an endpoint arm"):
        load_config(write(tmp_path, ENDPOINTS.replace("[arms.fp8]\n", "[arms.fp8]\nreplicas = 2\n")))
