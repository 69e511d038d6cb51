"""Deployment identity with httpx.MockTransport: what a vLLM replica states, declared axes
verified against it, replicas that disagree, unreachable replicas, fingerprints."""

from __future__ import annotations

import httpx
import pytest

from pytest_servecert.config import ConfigError
from pytest_servecert.serving.endpoint import (
    DeploymentMismatchError,
    auth_headers,
    deployment_identity,
    parse_metrics,
    probe_replica,
)

URL = "http://10.0.0.1:8000/v1"
URL2 = "http://10.0.0.2:8000/v1"


def metrics(cache_dtype: str = "auto", prefix: str = "True", spec_positions: int = 0, blocks: int = 4096) -> str:
    lines = [
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig",
        "# TYPE vllm:cache_config_info gauge",
        (f'vllm:cache_config_info{{block_size="16",cache_dtype="{cache_dtype}",enable_prefix_caching="{prefix}",'
         f'engine="0",num_gpu_blocks="{blocks}"}} 1.0'),
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        'vllm:num_requests_running{engine="0",model_name="m"} 0.0',
    ]
    if spec_positions:
        lines += [
            "# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.",
            "# TYPE vllm:spec_decode_num_drafts_total counter",
            'vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 0.0',
            "# HELP vllm:spec_decode_num_accepted_tokens_per_pos_total Accepted tokens per position.",
            "# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter",
        ]
        lines += [
            f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine="0",model_name="m",position="{i}"}} 0.0'
            for i in range(spec_positions)
        ]
    return "\n".join(lines) + "\n"


def vllm_like(version: str = "0.32.0", model: str = "m", root: str = "/models/m", **metric_options):
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [
                {"id": model, "object": "model", "root": root, "max_model_len": 512, "owned_by": "vllm"}]})
        if path == "/version":
            return httpx.Response(200, json={"version": version})
        if path == "/metrics":
            return httpx.Response(200, text=metrics(**metric_options))
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def identity(settings=None, transports=None, urls=(URL,), **kw):
    transports = transports or {u: vllm_like() for u in urls}
    return deployment_identity("cand", model="m", endpoints=urls, settings=settings or {},
                               transport_for=transports.get, **kw)


def test_parse_metrics_reads_cache_config_and_speculative_positions():
    stated, recorded = parse_metrics(metrics(cache_dtype="fp8", spec_positions=3))
    assert stated["cache_config"] == {"block_size": "16", "cache_dtype": "fp8", "enable_prefix_caching": "True"}
    assert stated["speculative"] == {"enabled": True, "num_speculative_tokens": 3}
    assert recorded["cache_config"] == [{"engine": "0", "num_gpu_blocks": "4096"}]
    assert parse_metrics(metrics())[0]["speculative"] == {"enabled": False}
    assert parse_metrics("# nothing of vLLM's\n") == ({}, {})


def test_probe_states_version_model_and_cache_config():
    replica = probe_replica(URL, transport=vllm_like())
    assert replica.reachable
    assert replica.stated["version"] == "0.32.0"
    assert replica.stated["models"] == {"m": {"root": "/models/m", "max_model_len": 512}}
    assert replica.stated["cache_config"]["cache_dtype"] == "auto"


def test_declared_axes_that_agree_are_verified_and_the_rest_are_declared_only():
    ident = identity({"kv_cache_dtype": "auto", "prefix_caching": True,
                      "speculative": {"method": "ngram", "num_speculative_tokens": 3}},
                     transports={URL: vllm_like(spec_positions=3)})
    assert ident.declared_only == ("speculative.method",)
    assert ident.stated["model"] == {"root": "/models/m", "max_model_len": 512}


@pytest.mark.parametrize(
    "settings, options, fragment",
    [
        ({"kv_cache_dtype": "fp8"}, {},
         "kv_cache_dtype = 'fp8' is declared, but http://10.0.0.1:8000/v1 reports cache_dtype='auto'"),
        ({"prefix_caching": False}, {}, "reports enable_prefix_caching=True"),
        ({"speculative": "off"}, {"spec_positions": 2}, "speculative = 'off' is declared, but"),
        ({"speculative": {"method": "ngram", "num_speculative_tokens": 3}}, {}, "no speculative decoding counters"),
        ({"speculative": {"method": "ngram", "num_speculative_tokens": 3}}, {"spec_positions": 2}, "2 draft positions"),
    ],
)
def test_a_declared_axis_the_server_contradicts_is_one_line_error(settings, options, fragment):
    with pytest.raises(DeploymentMismatchError) as info:
        identity(settings, transports={URL: vllm_like(**options)})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_the_model_must_be_served():
    with pytest.raises(DeploymentMismatchError, match="model = 'm': http://10.0.0.1:8000/v1 serves 'other'"):
        identity(transports={URL: vllm_like(model="other")})


def test_replicas_that_state_different_identities_are_an_error():
    with pytest.raises(DeploymentMismatchError, match="replicas differ in version"):
        identity(urls=(URL, URL2), transports={URL: vllm_like(), URL2: vllm_like(version="0.33.0")})


def test_replicas_differing_only_in_memory_sizing_agree():
    ident = identity(urls=(URL, URL2), transports={URL: vllm_like(blocks=100), URL2: vllm_like(blocks=200)})
    assert len(ident.reachable) == 2


def test_unreachable_replicas_carry_their_reason():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    ident = identity(urls=(URL, URL2), transports={URL: httpx.MockTransport(refuse), URL2: vllm_like()})
    assert [r.reachable for r in ident.replicas] == [False, True]
    assert ident.replicas[0].unreachable == "ConnectError: [Errno 111] Connection refused"
    none = identity(transports={URL: httpx.MockTransport(refuse)})
    assert none.unreachable_reason == f"{URL}: ConnectError: [Errno 111] Connection refused"
    assert none.declared_only == ()


def test_a_server_that_states_nothing_leaves_every_declared_axis_declared_only():
    def bare(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        return httpx.Response(404)

    ident = identity({"kv_cache_dtype": "q8_0", "prefix_caching": True}, transports={URL: httpx.MockTransport(bare)})
    assert ident.declared_only == ("kv_cache_dtype", "prefix_caching")


def test_fingerprint_changes_with_a_redeployment_declared_identity_and_hook_fields():
    base = identity().fingerprint
    assert identity().fingerprint == base
    assert identity(transports={URL: vllm_like(prefix="False")}).fingerprint != base
    assert identity(transports={URL: vllm_like(version="0.33.0")}).fingerprint != base
    assert identity(identity={"gpu": "H100"}).fingerprint != base
    assert identity(extra={"driver": "550"}).fingerprint != base
    assert identity(transports={URL: vllm_like(blocks=1)}).fingerprint == base  # sizing is volatile


def test_keys_come_from_the_environment_and_never_enter_the_identity(monkeypatch):
    monkeypatch.setenv("DEPLOY_KEY", "s3cret")
    headers = auth_headers("DEPLOY_KEY", (("X-Tenant", "DEPLOY_KEY"),))
    assert headers == {"Authorization": "Bearer s3cret", "X-Tenant": "s3cret"}
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return vllm_like().handle_request(request)

    ident = identity(transports={URL: httpx.MockTransport(handler)}, headers=headers)
    assert set(seen) == {"Bearer s3cret"}
    assert "s3cret" not in repr(ident.to_dict())
    monkeypatch.delenv("DEPLOY_KEY")
    with pytest.raises(ConfigError, match="'DEPLOY_KEY' .* is not set"):
        auth_headers("DEPLOY_KEY")


def test_hook_fields_that_look_secret_are_refused():
    with pytest.raises(ValueError, match="looks like a secret"):
        identity(extra={"API_TOKEN": "x"})
