"""The main job end to end: time split, server boots, re-sends on re-certification, peak RSS.

Runs exactly what ``tox -e certify`` runs (``pytest certifications -m "layer1 or layer2 or layer5"``) on
a copy of a config in a fresh work directory (fresh store, fresh reports), and prints, from the
certificate it writes and from outside the process:

* the wall time split by phase (model build, batteries, server start, sampling, judging,
  statistics; "pytest + reporting" is the rest: interpreter start, collection, certificate,
  HTML report and plots) — issue 9 target 7 (≤ 20 min on 2 cores);
* server boots against the naive one-boot-per-cell count — target 3;
* the peak RSS of the pytest process alone, polled with psutil (the vLLM servers it starts
  are separate processes and not counted) — target 5 (≤ 500 MB for 10,000 responses);
* with ``--recertify``: the candidate's flags are changed (speculative tokens 3 → 2) and the job
  runs again on the same store; requests sent per arm come from the second certificate —
  target 4 (0 baseline requests re-sent).

Usage::

    python benchmarks/main_job.py [--fresh-model]            # target 7 and 3 (default config)
    python benchmarks/main_job.py --config benchmarks/memory-10k.toml   # target 5: 10,350 responses
    python benchmarks/main_job.py --prompts-per-cell 8 --recertify   # target 4

``--fresh-model`` builds servecert-tiny (target, draft, judge) into an empty model cache first, so
the model build is part of the measured time, as on a fresh machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

import psutil

ROOT = Path(__file__).resolve().parents[1]
MARKERS = "layer1 or layer2 or layer5"


def write_config(source: Path, dest: Path, prompts_per_cell: int | None, speculative_tokens: int | None) -> Path:
    """A copy of ``source`` whose relative paths still point where they did, with overrides."""
    text = source.read_text()
    # offline battery directories are relative to the config's directory
    text = re.sub(
        r'^offline_dirs = \[(.*)\]',
        lambda m: "offline_dirs = ["
        + ", ".join(json.dumps(str((source.parent / p).resolve())) for p in json.loads(f"[{m[1]}]"))
        + "]",
        text,
        flags=re.MULTILINE,
    )
    if prompts_per_cell is not None:
        text, n = re.subn(r"^prompts_per_cell = \d+", f"prompts_per_cell = {prompts_per_cell}", text,
                          flags=re.MULTILINE)
        if n != 1:
            raise SystemExit(f"{source}: expected one 'prompts_per_cell = N' line to override")
    if speculative_tokens is not None:
        text, n = re.subn(r"num_speculative_tokens = \d+", f"num_speculative_tokens = {speculative_tokens}", text)
        if n != 1:
            raise SystemExit(f"{source}: expected one 'num_speculative_tokens = N' to change for --recertify")
    dest.write_text(text)
    return dest


class PeakRSS:
    """Polls one process's resident set size (children excluded) until stopped."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_main_job(config: Path, report_dir: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """One ``pytest certifications`` run; its certificate, wall time and peak RSS."""
    argv = [sys.executable, "-m", "pytest", "certifications", "-m", MARKERS, "-p", "no:cacheprovider",
            "-q", "--servecert-config", str(config), "--servecert-report-dir", str(report_dir)]
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        with PeakRSS(proc.pid) as rss:
            code = proc.wait()
    wall = time.perf_counter() - start
    # pytest exits 1 when a claim FAILs: that is a verdict, not a broken run; anything else is.
    if code not in (0, 1):
        raise SystemExit(f"pytest exited {code}; see {log}")
    certificate = json.loads((report_dir / "certificate-latest.json").read_text())
    return {"wall_s": wall, "peak_rss_bytes": rss.peak, "exit": code, "certificate": certificate}


def sent_by_arm(certificate: dict[str, Any]) -> dict[str, int]:
    return {arm["name"]: sum(s.get("requests_sent", 0) for s in arm["servers"]) for arm in certificate["arms"]}


def server_specs(certificate: dict[str, Any]) -> dict[str, frozenset[str]]:
    """Each arm's server spec fingerprints: an arm whose flags changed has other ones."""
    return {arm["name"]: frozenset(s["spec_fingerprint"] for s in arm["servers"]) for arm in certificate["arms"]}


def print_run(title: str, run: dict[str, Any], build_s: float = 0.0) -> None:
    cert = run["certificate"]
    timings = dict(cert["timings_s"])
    if build_s:
        timings["model build"] = timings.get("model build", 0.0) + build_s
    wall = run["wall_s"] + build_s
    timings["pytest + reporting"] = wall - sum(timings.values())
    counts = cert["counts"]
    print(f"\n{title}: {wall / 60:.1f} min wall, pytest exit {run['exit']} ({cert['status']})")
    for phase, seconds in timings.items():
        print(f"  {phase:<20} {seconds:>8.1f} s  {100 * seconds / wall:5.1f} %")
    responses = counts["requests_sent"] + counts["responses_reused"]
    print(f"  responses {responses:,} (sent {counts['requests_sent']:,}, reused {counts['responses_reused']:,}, "
          f"errors {counts['request_errors']}, rejected {counts['requests_rejected']}), "
          f"labels {counts['labels_written']:,}")
    print(f"  server boots {counts['boots']} (failed {counts['failed_boots']}) "
          f"vs naive one-per-cell {counts['naive_boots']}")
    print(f"  requests sent per arm: {sent_by_arm(cert)}")
    print(f"  pytest process peak RSS {run['peak_rss_bytes'] / 2**20:.0f} MiB (servers excluded)", flush=True)


def build_models(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest_servecert.cli", "model", "build", "--kind", "all"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "servecert.toml")
    parser.add_argument("--prompts-per-cell", type=int, help="override [sampling] prompts_per_cell")
    parser.add_argument("--fresh-model", action="store_true", help="build the models into an empty cache first")
    parser.add_argument("--recertify", action="store_true",
                        help="then change the speculative candidate's flags and run again on the same store")
    parser.add_argument("--workdir", type=Path, help="keep the store, reports and logs here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="servecert-main-job-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    build_s = 0.0
    if args.fresh_model:
        env["SERVECERT_CACHE_DIR"] = str(workdir / "model-cache")
        build_s = build_models(env)
        print(f"model build (target, draft, judge) from an empty cache: {build_s:.0f} s", flush=True)
    print(f"work directory {workdir}; machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)

    config = write_config(args.config, workdir / "servecert.toml", args.prompts_per_cell, None)
    first = run_main_job(config, workdir / "reports", env, workdir / "run-1.log")
    print_run("main job", first, build_s)
    out: dict[str, Any] = {"build_s": build_s, "runs": [first]}
    if args.recertify:
        write_config(args.config, config, args.prompts_per_cell, speculative_tokens=2)
        second = run_main_job(config, workdir / "reports", env, workdir / "run-2.log")
        print_run("re-certification (spec_draft: num_speculative_tokens 3 -> 2)", second)
        out["runs"].append(second)
        unchanged = server_specs(first["certificate"]).items() & server_specs(second["certificate"]).items()
        resent = {arm: sent_by_arm(second["certificate"])[arm] for arm, _ in unchanged}
        print(f"  re-sent by arms whose servers did not change: {resent} (target: all 0)")
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
