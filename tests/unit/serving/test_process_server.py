"""ProcessServer lifecycle against a small fake OpenAI-compatible server (no vLLM).

The fake is a Python child process, so these tests exercise the real process handling:
own process group, readiness polling with a deadline, fail-fast on exit with the reason
from the log, SIGTERM-then-SIGKILL teardown of the whole group, death detection.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from pytest_servecert.serving.engine import (
    ProcessServer,
    ServerDiedError,
    ServerSpec,
    ServerStartError,
)

FAKE = r"""
import json, os, signal, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

mode, port = sys.argv[1], int(sys.argv[2])
if mode == "exit":
    print("INFO loading", flush=True)
    print("Traceback (most recent call last):", flush=True)
    print("ValueError: model type 'bogus' is not supported", flush=True)
    sys.exit(3)
if mode == "hang":
    time.sleep(3600)
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode in ("with-worker", "ignore-term"):
    # A worker in the same process group, like vLLM's engine core.
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    print(f"worker pid {worker.pid}", flush=True)
name = "wrong" if mode == "wrong-model" else "fake"

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"" if self.path == "/health" else json.dumps({"data": [{"id": name}]}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


class FakeServer(ProcessServer):
    engine: ClassVar[str] = "fake"

    @classmethod
    def argv_for(cls, spec: ServerSpec, *, host: str, port: int) -> list[str]:
        return [sys.executable, "-c", FAKE, spec.args[0], str(port)]

    def stack_identity(self, extra: Mapping[str, Any] | None = None) -> Any:
        raise NotImplementedError


def fake(mode: str, tmp_path: Path, **options: Any) -> FakeServer:
    options.setdefault("start_timeout_s", 30)
    return FakeServer(
        ServerSpec("fake", "/m", args=(mode,), served_model_name="fake"),
        workdir=tmp_path,
        **options,
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def worker_pid(server: FakeServer) -> int:
    for _ in range(200):
        for line in server.log_path.read_text().splitlines():
            if line.startswith("worker pid "):
                return int(line.split()[-1])
        time.sleep(0.05)
    raise AssertionError("the fake server did not report its worker")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[FakeServer]:
    server = fake("with-worker", tmp_path)
    with server:
        yield server


def test_ready_server_answers_and_reports_start_stats(started: FakeServer) -> None:
    assert started.alive()
    assert started.base_url.startswith("http://127.0.0.1:")
    assert httpx.get(started.base_url + "/v1/models").json()["data"][0]["id"] == "fake"
    assert started.start_seconds is not None and started.start_seconds > 0
    assert started.start_rss_bytes is not None and started.start_rss_bytes > 1_000_000
    assert os.getpgid(started.pid) == started.pid  # its own process group
    started.check_alive()  # no error


def test_stop_ends_the_whole_process_group_and_is_idempotent(tmp_path: Path) -> None:
    server = fake("with-worker", tmp_path).start()
    pgid, worker = server.pid, worker_pid(server)
    assert pgid is not None and group_alive(pgid)
    server.stop()
    assert not server.alive()
    assert not group_alive(pgid)
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
    server.stop()  # idempotent
    assert server.log_path.is_file()  # kept for diagnosis


def test_sigterm_ignored_escalates_to_sigkill(tmp_path: Path) -> None:
    server = fake("ignore-term", tmp_path, stop_grace_s=0.5).start()
    pgid = server.pid
    server.stop()
    assert pgid is not None and not group_alive(pgid)


def test_exit_during_start_fails_fast_with_reason_from_log(tmp_path: Path) -> None:
    server = fake("exit", tmp_path, start_timeout_s=300)
    with pytest.raises(ServerStartError) as info:
        server.start()
    err = info.value
    assert err.returncode == 3
    assert err.reason == "model type 'bogus' is not supported"
    assert err.log_path == tmp_path / "server.log"
    assert err.argv[1:3] == ("-c", FAKE)
    assert "ValueError: model type 'bogus' is not supported" in err.log_tail()
    assert not server.alive()
    server.stop()


@pytest.mark.parametrize("mode", ["hang", "wrong-model"])
def test_deadline_is_enforced_while_port_refuses_or_model_is_missing(
    tmp_path: Path, mode: str
) -> None:
    server = fake(mode, tmp_path, start_timeout_s=1.5)
    with pytest.raises(
        ServerStartError, match=r"did not become ready: not ready within 1.5 s"
    ) as info:
        server.start()
    assert info.value.returncode is None
    pid = server.pid
    assert pid is not None and not group_alive(pid)  # stopped by us, not left running


def test_killed_server_is_detected_as_dead(started: FakeServer) -> None:
    assert started.pid is not None
    os.kill(started.pid, signal.SIGKILL)
    started._launch.proc.wait(timeout=10)  # type: ignore[union-attr]
    assert not started.alive()
    with pytest.raises(ServerDiedError, match="killed by signal SIGKILL") as info:
        started.check_alive()
    assert info.value.returncode == -signal.SIGKILL


def test_start_twice_is_an_error(started: FakeServer) -> None:
    with pytest.raises(RuntimeError, match="can start once"):
        started.start()


def test_keyboard_interrupt_during_start_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake("hang", tmp_path)

    def interrupted(self: FakeServer, deadline: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeServer, "_wait_ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        server.start()
    pid = server.pid
    assert pid is not None and not group_alive(pid)


def test_lost_port_race_is_retried_on_a_new_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake("with-worker", tmp_path)
    real_wait = FakeServer._wait_ready
    calls: list[int] = []

    def first_loses(self: FakeServer, deadline: float) -> None:
        calls.append(self.port)
        if len(calls) == 1:
            raise ServerStartError("[Errno 98] Address already in use", returncode=1)
        real_wait(self, deadline)

    monkeypatch.setattr(FakeServer, "_wait_ready", first_loses)
    with server:
        assert server.alive() and len(calls) == 2


def test_popen_gets_an_argv_list_no_shell_and_an_explicit_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    seen: dict[str, Any] = {}
    real = subprocess.Popen

    def spy(argv: Any, **kwargs: Any) -> Any:
        seen["argv"], seen["kwargs"] = argv, kwargs
        return real(argv, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    before = dict(os.environ)
    with FakeServer(
        ServerSpec(
            "fake", "/m", args=("with-worker",), env={"SERVECERT_X": "1"}, served_model_name="fake"
        ),
        workdir=tmp_path,
    ):
        pass
    assert isinstance(seen["argv"], list)
    assert not seen["kwargs"].get("shell")
    assert seen["kwargs"]["start_new_session"] is True
    assert seen["kwargs"]["env"]["SERVECERT_X"] == "1"
    assert dict(os.environ) == before  # the parent's environment is never mutated


def test_own_workdir_is_removed_after_a_clean_stop_and_kept_after_a_failure() -> None:
    clean = FakeServer(ServerSpec("fake", "/m", args=("with-worker",), served_model_name="fake"))
    with clean:
        workdir = clean.log_path.parent
        assert workdir.is_dir()
    assert not workdir.exists()
    failed = FakeServer(ServerSpec("fake", "/m", args=("exit",), served_model_name="fake"))
    with pytest.raises(ServerStartError) as info:
        failed.start()
    assert info.value.log_path is not None and info.value.log_path.is_file()
    assert not (info.value.log_path.parent / "cache").exists()
    import shutil

    shutil.rmtree(info.value.log_path.parent)


def test_a_server_booted_in_the_background_outlives_the_boot(tmp_path: Path) -> None:
    """Boot overlap on real processes: PR_SET_PDEATHSIG fires when the spawning *thread* exits,
    so the pool boots on a thread that lives until it closes (a boot on a short-lived thread
    stopped every pre-booted vLLM server of the main job one second after it was ready)."""
    from pytest_servecert.serving.pool import ServerPool

    spec = ServerSpec("fake", "/m", args=("serve",), served_model_name="fake")
    with ServerPool(factory=lambda s, **o: FakeServer(s, workdir=tmp_path, start_timeout_s=30)) as pool:
        pool.prefetch([spec]).result(timeout=60)
        (server,) = pool.live()
        time.sleep(1.0)  # a SIGTERM from the parent-death signal would have arrived by now
        assert server.alive(), server.death_reason()
        assert pool.get(spec) is server and pool.boots == 1
        pgid = server.pid
    assert pgid is not None and not group_alive(pgid)  # close() still stops it
