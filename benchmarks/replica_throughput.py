"""Issue 17, benchmark (a): responses/s against N replicas of a fixed-latency stand-in.

N = 1, 2, 4, 8 stand-in OpenAI-compatible servers (``pytest_servecert.serving.standin``, each
completion takes ``--latency`` seconds, 50 ms by default) behind one
:class:`~pytest_servecert.serving.replicas.ReplicaPool`, driven by the runner's
:class:`~pytest_servecert.serving.client.Sampler` at ``--per-replica`` requests in flight per
replica (the batch_size axis as each server sees it). Prints responses/s per N and the ratio to
N x the single-replica figure (target >= 0.9), median of ``--repeats`` runs.

Each stand-in is its own process. A stand-in measures the pool's own overhead (client, balancing,
failover bookkeeping); a real server's throughput is the engine's and is measured by
benchmarks/sampler_throughput.py. The last column is the same Sampler sending the same number of
requests in flight straight to ONE stand-in, without a pool: the client's own ceiling on this
machine (one event loop; httpx spends 1.2-1.6 ms of CPU per response here), which no pool can exceed;
``pool / direct`` is what the pool itself costs.

Usage::

    python benchmarks/replica_throughput.py [--latency 0.05] [--requests 400] [--per-replica 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from pytest_servecert.serving.client import ChatRequest, Sampler
from pytest_servecert.serving.replicas import ReplicaPool

TARGET = 0.9


def start_standins(n: int, latency: float) -> tuple[list[subprocess.Popen[str]], list[str]]:
    """Each stand-in in its own process: the client's event loop never shares a GIL with them."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "pytest_servecert.serving.standin", "--latency", str(latency)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    return procs, [p.stdout.readline().strip() for p in procs]  # type: ignore[union-attr]


def cpu_seconds(procs: list[subprocess.Popen[str]]) -> float:
    """User + system CPU the stand-in processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in procs:
        fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def responses_per_s(n: int, *, latency: float, requests: int, per_replica: int) -> tuple[float, float, float]:
    """(responses/s, client CPU ms per response, stand-ins' CPU ms per response)."""
    procs, urls = start_standins(n, latency)
    try:
        pool = ReplicaPool("bench", urls, model="standin")
        sampler = Sampler(pool.base_url, pool.served_model_name, transport=pool.transport, progress=False)
        reqs = [ChatRequest(key=f"k{i}", prompt=f"prompt {i}", max_tokens=8) for i in range(requests)]
        t0, cpu0, server0 = time.perf_counter(), time.process_time(), cpu_seconds(procs)
        results = sampler.sample_sync(reqs, concurrency=pool.concurrency_for(per_replica))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        server_cpu = cpu_seconds(procs) - server0
        failed = [r.error for r in results if not r.ok]
        if failed:
            raise SystemExit(f"{len(failed)} requests failed, e.g. {failed[0]}")
        if sum(c["answered"] for c in pool.counts()) != requests:
            raise SystemExit(f"per-replica counts do not add up: {pool.counts()}")
        return requests / elapsed, 1000 * cpu / requests, 1000 * server_cpu / requests
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def direct_responses_per_s(in_flight: int, *, latency: float, requests: int) -> float:
    """The Sampler straight to one stand-in at ``in_flight`` (no pool): the client's ceiling."""
    procs, urls = start_standins(1, latency)
    try:
        sampler = Sampler(urls[0], "standin", progress=False)
        reqs = [ChatRequest(key=f"k{i}", prompt=f"prompt {i}", max_tokens=8) for i in range(requests)]
        t0 = time.perf_counter()
        if not all(r.ok for r in sampler.sample_sync(reqs, concurrency=in_flight)):
            raise SystemExit("direct: requests failed")
        return requests / (time.perf_counter() - t0)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--requests", type=int, default=400, help="per run, for every N")
    parser.add_argument("--per-replica", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    runs = {
        n: [responses_per_s(n, latency=args.latency, requests=args.requests, per_replica=args.per_replica)
            for _ in range(args.repeats)]
        for n in args.replicas
    }
    direct = {
        n: statistics.median(direct_responses_per_s(n * args.per_replica, latency=args.latency,
                                                    requests=args.requests) for _ in range(args.repeats))
        for n in args.replicas
    }
    rates = {n: statistics.median(r for r, _, _ in got) for n, got in runs.items()}
    cpu_ms = {n: statistics.median(c for _, c, _ in got) for n, got in runs.items()}
    server_ms = {n: statistics.median(c for _, _, c in got) for n, got in runs.items()}
    single = rates[args.replicas[0]] / args.replicas[0]
    print(f"latency {args.latency * 1000:.0f} ms, {args.per_replica} in flight per replica, "
          f"{args.requests} requests per run, median of {args.repeats}")
    print(f"{'replicas':>8} {'responses/s':>12} {'ratio to N x single':>20} {'client CPU ms/resp':>19}"
          f" {'stand-ins CPU ms/resp':>22} {'cores busy':>11} {'direct, same in flight':>23} {'pool / direct':>14}"
          f"  target >= {TARGET}")
    ok = True
    for n, rate in rates.items():
        ratio = rate / (n * single)
        ok &= ratio >= TARGET
        busy = rate * (cpu_ms[n] + server_ms[n]) / 1000
        print(f"{n:>8} {rate:>12.1f} {ratio:>20.2f} {cpu_ms[n]:>19.1f} {server_ms[n]:>22.1f} {busy:>11.2f}"
              f" {direct[n]:>23.1f} {rate / direct[n]:>14.2f}")
    print("PASS" if ok else "BELOW TARGET", f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
