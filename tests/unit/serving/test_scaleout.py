"""Scale-out with fake servers: replicas = N boots N specs behind a replica pool; boot overlap
boots the next group with work only when both fit in max_live and remembers failures."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar, Self

import pytest

from pytest_servecert.serving import ServerPool, ServerSpec
from pytest_servecert.serving.engine import Server, ServerStartError
from pytest_servecert.serving.replicas import ReplicaPool
from pytest_servecert.serving.scaleout import boot_next, in_flight, open_server, replica_specs


class Fake(Server):
    engine: ClassVar[str] = "vllm"
    started: ClassVar[list[ServerSpec]] = []

    def __init__(self, spec: ServerSpec, **options: Any) -> None:
        super().__init__(spec)
        self.running = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{20000 + Fake.started.index(self.spec)}"

    def start(self) -> Self:
        Fake.started.append(self.spec)
        if "--fail" in self.spec.args:
            raise ServerStartError("cannot start", returncode=1)
        self.running = True
        self.start_seconds = 1.0
        return self

    def stop(self) -> None:
        self.running = False

    def alive(self) -> bool:
        return self.running

    def death_reason(self) -> tuple[str, int | None]:
        return "stopped", 0

    def stack_identity(self, extra=None):  # pragma: no cover - not used here
        raise NotImplementedError


@pytest.fixture(autouse=True)
def reset():
    Fake.started = []


def group(name: str, *args: str, replicas: int = 1) -> SimpleNamespace:
    spec = ServerSpec("vllm", "/m", args=args, label=name)
    return SimpleNamespace(spec=spec, arm=SimpleNamespace(
        config=SimpleNamespace(replicas=replicas, concurrency_per_replica=None)))


def test_replicas_boot_n_specs_behind_one_pool():
    g = group("a", replicas=2)
    specs = replica_specs(g, devices=("0,1", "2,3"))
    assert [dict(s.env)["CUDA_VISIBLE_DEVICES"] for s in specs] == ["0,1", "2,3"]
    assert len({s.fingerprint for s in specs}) == 2
    with ServerPool(factory=Fake, max_live=2) as pool:
        server = open_server(pool, g, devices=("0,1", "2,3"))
        assert isinstance(server, ReplicaPool) and pool.boots == 2
        assert [r["url"] for r in server.counts()] == ["http://127.0.0.1:20000", "http://127.0.0.1:20001"]
        ctx = SimpleNamespace(batch_size=4, get=lambda axis, default=None: {"batch_size": 4}.get(axis, default))
        assert in_flight(g, ctx, server) == 8  # batch_size per replica


def test_the_next_group_boots_while_the_current_one_samples():
    a, b, c = group("a"), group("b", "--x"), group("c", "--y")
    with ServerPool(factory=Fake, max_live=2) as pool:
        open_server(pool, a)
        futures = boot_next(pool, a, [b, c], lambda g: g is not b, max_live=2, progress=lambda m: None)
        for f in futures:
            f.result()
        assert [s.label for s in Fake.started] == ["a", "c"]  # b has no work: skipped
        assert {s.spec.label for s in pool.live()} == {"a", "c"}
        assert boot_next(pool, a, [c], lambda g: True, max_live=2, progress=lambda m: None) == []  # already live


def test_no_overlap_when_both_do_not_fit():
    a, b = group("a", replicas=2), group("b", "--x")
    with ServerPool(factory=Fake, max_live=2) as pool:
        assert boot_next(pool, a, [b], lambda g: True, max_live=2, progress=lambda m: None) == []
        assert boot_next(pool, group("c"), [b], lambda g: True, max_live=1, progress=lambda m: None) == []


def test_a_failed_overlapped_boot_is_reported_when_its_turn_comes():
    a, bad = group("a"), group("bad", "--fail")
    with ServerPool(factory=Fake, max_live=2) as pool:
        open_server(pool, a)
        for f in boot_next(pool, a, [bad], lambda g: True, max_live=2, progress=lambda m: None):
            f.result()
        with pytest.raises(ServerStartError, match="cannot start"):
            open_server(pool, bad)
        assert pool.boots == 2 and pool.failed_boots == 1  # not booted twice
