"""ServerPool with fake servers: lazy boots, reuse, remembered failures, LRU bound, teardown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import pytest

from pytest_servecert.serving import ServerPool, ServerSpec
from pytest_servecert.serving.engine import Server, ServerDiedError, ServerStartError


class FakeServer(Server):
    engine: ClassVar[str] = "vllm"
    instances: ClassVar[list[FakeServer]] = []

    def __init__(self, spec: ServerSpec, **options: Any) -> None:
        super().__init__(spec)
        self.options = options
        self.running = False
        self.stops = 0
        FakeServer.instances.append(self)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{10000 + FakeServer.instances.index(self)}"

    def start(self) -> Self:
        if "--fail" in self.spec.args:
            raise ServerStartError(
                "FP8 KV cache on CPU requires x86 with AVX-512 or AMX.", returncode=1
            )
        if "--interrupt" in self.spec.args:
            raise KeyboardInterrupt
        self.running = True
        return self

    def stop(self) -> None:
        self.stops += 1
        self.running = False

    def alive(self) -> bool:
        return self.running

    def death_reason(self) -> tuple[str, int | None]:
        return "killed by signal SIGKILL", -9

    def stack_identity(self, extra: Mapping[str, Any] | None = None) -> Any:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def _reset() -> None:
    FakeServer.instances.clear()


def spec(*args: str, label: str = "", env: dict[str, str] | None = None) -> ServerSpec:
    return ServerSpec("vllm", "/m", args=args, env=env or {}, label=label)


def test_one_boot_per_distinct_spec_and_reuse() -> None:
    with ServerPool(factory=FakeServer, start_timeout_s=12.0) as pool:
        a = pool.get(spec("--seed", "0", label="baseline"))
        assert (
            pool.get(spec("--seed", "0", label="candidate-same-flags")) is a
        )  # label is not identity
        b = pool.get(spec("--seed", "1"))
        aa = pool.get(spec("--seed", "0", env={"SERVECERT_INSTANCE": "aa"}))
        assert len({id(a), id(b), id(aa)}) == 3
        assert pool.boots == 3 and pool.failed_boots == 0
        assert a.options == {"start_timeout_s": 12.0}
    assert [s.running for s in FakeServer.instances] == [False, False, False]


def test_failed_start_is_remembered_not_rebooted() -> None:
    pool = ServerPool(factory=FakeServer)
    bad = spec("--fail")
    with pytest.raises(ServerStartError) as first:
        pool.get(bad)
    with pytest.raises(ServerStartError) as second:
        pool.get(bad)
    assert second.value is first.value
    assert "AVX-512 or AMX" in second.value.reason
    assert pool.boots == 1 and pool.failed_boots == 1
    assert pool.failure(bad) is first.value
    assert pool.failure(spec()) is None
    pool.close()


def test_max_live_stops_the_least_recently_used() -> None:
    pool = ServerPool(factory=FakeServer, max_live=2)
    a = pool.get(spec("a"))
    b = pool.get(spec("b"))
    pool.get(spec("a"))  # a is now the most recently used
    c = pool.get(spec("c"))
    assert (a.alive(), b.alive(), c.alive()) == (True, False, True)
    assert pool.evictions == 1
    assert pool.live() == [a, c]
    again = pool.get(spec("b"))  # booted again
    assert again is not b and pool.boots == 4
    pool.close()
    assert not any(s.alive() for s in FakeServer.instances)


def test_dead_server_raises_then_boots_fresh() -> None:
    pool = ServerPool(factory=FakeServer)
    first = pool.get(spec())
    first.running = False  # killed from outside
    with pytest.raises(ServerDiedError, match="SIGKILL"):
        pool.get(spec())
    assert first.stops == 1  # its process group was reaped
    second = pool.get(spec())
    assert second is not first and second.alive() and pool.boots == 2
    pool.close()


def test_close_on_keyboard_interrupt_tears_everything_down() -> None:
    with pytest.raises(KeyboardInterrupt), ServerPool(factory=FakeServer) as pool:
        pool.get(spec("a"))
        pool.get(spec("b"))
        raise KeyboardInterrupt
    assert [s.alive() for s in FakeServer.instances] == [False, False]
    with pytest.raises(RuntimeError, match="closed"):
        pool.get(spec("a"))
    pool.close()  # idempotent


def test_interrupted_start_is_not_remembered_as_a_failure() -> None:
    pool = ServerPool(factory=FakeServer)
    with pytest.raises(KeyboardInterrupt):
        pool.get(spec("--interrupt"))
    assert pool.failure(spec("--interrupt")) is None
    pool.close()


def test_stop_one_spec() -> None:
    pool = ServerPool(factory=FakeServer)
    a = pool.get(spec("a"))
    pool.stop(spec("a"))
    assert not a.alive() and pool.live() == []
    pool.stop(spec("never-started"))  # no error
    pool.close()


def test_bad_max_live() -> None:
    with pytest.raises(ValueError, match="max_live"):
        ServerPool(max_live=0)
