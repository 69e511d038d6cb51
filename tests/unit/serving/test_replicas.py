"""Replica pools with httpx.MockTransport: least-outstanding balancing, per-replica limits,
failover of in-flight requests, NOT RUN reasons when no replica is left, headers."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from pytest_servecert.http_connect import env_proxy
from pytest_servecert.serving.client import ChatRequest, Sampler
from pytest_servecert.serving.engine import ServerDiedError
from pytest_servecert.serving.replicas import ReplicaPool

URLS = ("http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1", "http://10.0.0.3:8000/v1")


def completion(text: str) -> dict:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }


class Fleet:
    """Fake replicas: each answers with its host, records the peak of requests in flight."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.dead: set[str] = set()
        self.fail_5xx: set[str] = set()
        self.die_after: dict[str, int] = {}
        self.seen_headers: list[dict[str, str]] = []

    def transport_for(self, url: str) -> httpx.AsyncBaseTransport:
        host = httpx.URL(url).host

        async def handler(request: httpx.Request) -> httpx.Response:
            self.seen_headers.append(dict(request.headers))
            if host in self.dead:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            self.in_flight[host] += 1
            self.peak[host] = max(self.peak[host], self.in_flight[host])
            try:
                await asyncio.sleep(self.delay)
                if host in self.die_after and self.served[host] >= self.die_after[host]:
                    self.dead.add(host)
                    raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
                if host in self.fail_5xx:
                    return httpx.Response(500, json={"error": "EngineDeadError"})
                self.served[host] += 1
                prompt = json.loads(request.content)["messages"][0]["content"]
                return httpx.Response(200, json=completion(f"{prompt}@{host}"))
            finally:
                self.in_flight[host] -= 1

        return httpx.MockTransport(handler)


def requests(n: int) -> list[ChatRequest]:
    return [ChatRequest(key=f"k{i}", prompt=f"p{i}") for i in range(n)]


def run(pool: ReplicaPool, reqs: list[ChatRequest], per_replica: int) -> list:
    sampler = Sampler(pool.base_url, pool.served_model_name, transport=pool.transport, progress=False,
                      backoff_s=0.01, max_retries=2)
    return sampler.sample_sync(reqs, concurrency=pool.concurrency_for(per_replica), health_check=pool.check_alive)


def test_requests_spread_evenly_within_the_per_replica_limit():
    fleet = Fleet()
    pool = ReplicaPool("baseline", URLS, model="m", transport_for=fleet.transport_for)
    results = run(pool, requests(60), per_replica=4)
    assert all(r.ok for r in results)
    assert sum(fleet.served.values()) == 60
    assert set(fleet.served.values()) == {20}  # least outstanding, ties by fewest served
    assert max(fleet.peak.values()) <= 4 and min(fleet.peak.values()) == 4
    assert [c["answered"] for c in pool.counts()] == [20, 20, 20]


def test_a_replica_that_dies_mid_run_is_taken_out_and_its_requests_finish_elsewhere():
    fleet = Fleet()
    fleet.die_after["10.0.0.2"] = 3
    pool = ReplicaPool("baseline", URLS[:2], model="m", transport_for=fleet.transport_for)
    results = run(pool, requests(40), per_replica=4)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert [r.key for r in results] == [f"k{i}" for i in range(40)]  # nothing lost, nothing twice
    assert fleet.served["10.0.0.2"] == 3 and fleet.served["10.0.0.1"] == 37
    counts = {c["url"]: c for c in pool.counts()}
    assert counts[URLS[1]]["taken_out"].startswith("RemoteProtocolError")
    assert counts[URLS[1]]["failed"] >= 1
    assert pool.alive()


def test_no_replica_left_is_a_died_error_with_each_replicas_reason():
    fleet = Fleet()
    fleet.dead = {"10.0.0.1", "10.0.0.2"}
    pool = ReplicaPool("baseline", URLS[:2], model="m", transport_for=fleet.transport_for)
    with pytest.raises(ServerDiedError) as info:
        run(pool, requests(4), per_replica=1)
    message = str(info.value)
    assert "no replica can serve" in message
    assert f"{URLS[0]}: ConnectError" in message and f"{URLS[1]}: ConnectError" in message


def test_5xx_moves_the_request_and_three_in_a_row_take_the_replica_out():
    fleet = Fleet()
    fleet.fail_5xx = {"10.0.0.1"}
    pool = ReplicaPool("baseline", URLS[:2], model="m", transport_for=fleet.transport_for)
    results = run(pool, requests(12), per_replica=2)
    assert all(r.ok for r in results)
    assert fleet.served["10.0.0.2"] == 12
    counts = {c["url"]: c for c in pool.counts()}
    assert "HTTP 500 3 times in a row" in counts[URLS[0]]["taken_out"]


def test_a_single_replica_answering_5xx_is_left_to_the_samplers_retries():
    fleet = Fleet()
    fleet.fail_5xx = {"10.0.0.1"}
    pool = ReplicaPool("baseline", URLS[:1], model="m", transport_for=fleet.transport_for)
    sampler = Sampler(pool.base_url, "m", transport=pool.transport, progress=False, backoff_s=0.01, max_retries=1)
    (result,) = sampler.sample_sync(requests(1), concurrency=pool.concurrency_for(1))
    assert result.error is not None and result.error.startswith("HTTP 500") and result.attempts == 2


def test_replicas_known_down_before_sampling_get_nothing():
    fleet = Fleet()
    pool = ReplicaPool("baseline", URLS, model="m", transport_for=fleet.transport_for,
                       down={URLS[2]: "ConnectError: refused"})
    assert pool.concurrency_for(3) == 6
    results = run(pool, requests(12), per_replica=3)
    assert all(r.ok for r in results)
    assert fleet.served["10.0.0.3"] == 0


def test_headers_reach_every_replica():
    fleet = Fleet()
    pool = ReplicaPool("baseline", ("http://127.0.0.1:9/v1",), model="m", transport_for=fleet.transport_for,
                       headers={"Authorization": "Bearer s3cret"})
    run(pool, requests(2), per_replica=1)
    assert all(h["authorization"] == "Bearer s3cret" for h in fleet.seen_headers)
    assert all(h["host"] == "127.0.0.1:9" for h in fleet.seen_headers)
    assert "s3cret" not in json.dumps(pool.counts())


def test_the_environments_proxy_is_read_per_replica(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert env_proxy("http://10.0.0.1:8000/v1", loopback=False) == "http://proxy.invalid:3128"
    assert env_proxy("http://vllm.internal.example/v1", loopback=False) is None
    assert env_proxy("http://127.0.0.1:8000/v1", loopback=True) is None


def test_a_gzip_answer_reaches_the_sampler_decoded_once():
    import gzip

    body = gzip.compress(json.dumps(completion("zipped")).encode())

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-encoding": "gzip",
                                                          "content-type": "application/json"})

    pool = ReplicaPool("baseline", URLS[:1], model="m", transport_for=lambda url: httpx.MockTransport(handler))
    (result,) = run(pool, requests(1), per_replica=1)
    assert result.text == "zipped"
