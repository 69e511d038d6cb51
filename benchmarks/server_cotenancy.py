"""Two vLLM CPU servers on the same cores: what sampling two at once, or sampling while the next
server boots, does to throughput (why boot overlap saves little on 2 cores; README, figure 9).

For each thread setting (vLLM's default, and ``OMP_NUM_THREADS=1`` per server) it boots two
servers of servecert-tiny with the main job's flags and measures, at each ``--concurrency``
(T = 0, ``--prompts`` prompts of ``--max-tokens`` tokens):

* one server sampling alone (responses/s, cores busy from /proc/stat);
* both servers sampling at once (their summed responses/s), and whether server A's answers are
  those it gave alone (at batch 1 they must be: greedy, one sequence per step);
* server A sampling at batch 1 while a third server boots (its responses/s during the boot, and
  the boot's seconds against a boot on idle cores).

Every ratio is to one server alone at vLLM's default threads, measured in the same invocation.

Usage::

    python benchmarks/server_cotenancy.py [--prompts 60] [--concurrency 1 32]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from main_job import ROOT
from sampler_throughput import prompts

from pytest_servecert.config import load_config
from pytest_servecert.serving import ChatRequest, Sampler, ServerSpec, VLLMServer


def busy_cores() -> tuple[int, int]:
    """(all jiffies, idle + iowait jiffies) since boot, summed over cores (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]


def sample(server: VLLMServer, texts: list[str], concurrency: int, max_tokens: int) -> list[str]:
    """Server's answers to ``texts`` (greedy), in prompt order."""
    requests = [ChatRequest(key=str(i), prompt=t, max_tokens=max_tokens) for i, t in enumerate(texts)]
    sampler = Sampler(server.base_url, server.served_model_name, concurrency=concurrency, progress=False)
    results = sorted(sampler.iter_sample(requests, health_check=server.check_alive), key=lambda r: int(r.key))
    if failed := [r for r in results if not r.ok]:
        raise SystemExit(f"{len(failed)} requests failed, first: {failed[0].error}")
    return [r.text for r in results]


def at_once(
    servers: list[VLLMServer], texts: list[str], concurrency: int, max_tokens: int
) -> tuple[float, float, list[list[str]]]:
    """(summed responses/s, cores busy, each server's answers) with every server sampling at once."""
    answers: list[list[str]] = [[] for _ in servers]

    def run(i: int) -> None:
        answers[i] = sample(servers[i], texts, concurrency, max_tokens)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(servers))]
    (all0, idle0), start = busy_cores(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    all1, idle1 = busy_cores()
    cores = (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(1, all1 - all0))
    return len(servers) * len(texts) / wall, cores, answers


def during_boot(server: VLLMServer, spec: ServerSpec, texts: list[str], max_tokens: int) -> tuple[float, float]:
    """(server's responses/s at batch 1 while ``spec`` boots, that boot's seconds)."""
    booted: dict[str, Any] = {}

    def boot() -> None:
        t0 = time.perf_counter()
        booted["server"] = VLLMServer(spec).start()
        booted["seconds"] = time.perf_counter() - t0

    thread = threading.Thread(target=boot)
    done, start = 0, time.perf_counter()
    thread.start()
    while thread.is_alive():
        done += len(sample(server, texts[:5], 1, max_tokens))
    rate = done / (time.perf_counter() - start)
    booted["server"].stop()
    return rate, booted["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    n = args.max_tokens

    from pytest_servecert.models import ensure_model

    model = str(ensure_model("target"))
    engine_args = load_config(ROOT / "servecert.toml").engine.args  # the main job's flags
    texts = prompts(args.prompts)
    print(f"{os.cpu_count()} cores; {args.prompts} prompts x {args.max_tokens} tokens, T = 0", flush=True)
    reference: dict[int, float] = {}
    for threads in ("default", "1"):
        env = () if threads == "default" else (("OMP_NUM_THREADS", threads),)

        def spec(name: str, env: tuple[tuple[str, str], ...] = env) -> ServerSpec:
            return ServerSpec("vllm", model, args=engine_args, env=(*env, ("SERVECERT_COTENANT", name)), label=name)

        with VLLMServer(spec("a")) as a, VLLMServer(spec("b")) as b:
            boots = f"boots {a.start_seconds:.0f} s and {b.start_seconds:.0f} s"
            print(f"\nthreads per server: {threads} ({boots})", flush=True)
            for server in (a, b):
                sample(server, texts[:8], 8, n)  # warm-up
            for concurrency in sorted({1, *args.concurrency}):
                one, cores1, (alone,) = at_once([a], texts, concurrency, n)
                two, cores2, (both_a, _) = at_once([a, b], texts, concurrency, n)
                ref = reference.setdefault(concurrency, one)
                print(f"  batch {concurrency:>2}: one alone {one:6.2f} resp/s ({one / ref:.2f}, {cores1:.2f} cores); "
                      f"two at once {two:6.2f} resp/s ({two / ref:.2f}, {cores2:.2f} cores); "
                      f"A's answers as alone: {both_a == alone}", flush=True)
            with VLLMServer(spec("c")) as idle_boot:
                idle_s = idle_boot.start_seconds
            rate, boot_s = during_boot(a, spec("d"), texts, n)
            print(f"  batch  1 while another server boots: {rate:6.2f} resp/s ({rate / reference[1]:.2f}); "
                  f"the boot took {boot_s:.0f} s (on idle cores: {idle_s:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
