"""The runner's run row, SIGTERM and the store lock (issue #15 item 6), without a server:
the measurement phases are replaced, the store and the lock are real."""

from __future__ import annotations

import fcntl
import importlib
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_servecert.config import load_config
from pytest_servecert.runner import certify
from pytest_servecert.store import Store, StoreError

# the module, not the function ``pytest_servecert.run`` re-exports under the same name
run_certify = importlib.import_module("pytest_servecert.run.certify")

CONFIG = """
[servecert]
store = "store.sqlite"
lock_timeout_s = 0.5
[arms.baseline]
[arms.cand]
kv_cache_dtype = "fp8"
[judges.calibration]
corpus = "none"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "servecert.toml").write_text(CONFIG)
    plan = SimpleNamespace(model_path=str(tmp_path), parameters=None, batteries={}, groups=())
    monkeypatch.setattr(run_certify, "make_plan", lambda config, stack_extra, timer, progress=None: plan)
    return load_config(tmp_path / "servecert.toml")


def _last_status(config) -> str:
    with Store(config.store_path) as store:
        return store.runs()[-1].status


@pytest.mark.parametrize(
    ("fault", "status"), [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")]
)
def test_an_interrupted_run_is_marked(config, monkeypatch, fault, status) -> None:
    def sample(plan, store, run_id, **kwargs):
        raise fault("stop")

    monkeypatch.setattr(run_certify, "sample", sample)
    with pytest.raises(fault):
        certify(config)
    assert _last_status(config) == status  # never left "running"


def test_sigterm_unwinds_like_ctrl_c(config, monkeypatch) -> None:
    def sample(plan, store, run_id, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt the run")

    monkeypatch.setattr(run_certify, "sample", sample)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        certify(config)
    assert _last_status(config) == "interrupted"
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the run's only


def test_the_lock_wait_is_bounded_and_names_the_holder(config) -> None:
    lock = config.store_path.with_suffix(config.store_path.suffix + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as held:
        held.write("pid 4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        said: list[str] = []
        with pytest.raises(StoreError) as info:
            certify(config, progress=said.append)
    message = str(info.value)
    assert (
        "\n" not in message
        and "in use by pid 4242" in message
        and "lock_timeout_s = 0.5" in message
    )
    assert said == ["servecert: waiting for the store (in use by pid 4242; up to 0.5 s)"]
