"""llama.cpp engine: GGUF conversion, server start and sampler throughput per KV-cache type.

Converts ``servecert-tiny`` (or ``--model DIR``) to GGUF into a temporary file (timed; the
cached copy is not touched), then for each ``--kv`` type boots one llama-cpp-python server,
reports its start time and resident memory, and sends the same ``--prompts`` short chat
prompts (greedy, ``--max-tokens`` each) through :class:`pytest_servecert.serving.Sampler` at
each ``--concurrency``. Requests/s are printed side by side, relative to f16: the server
computes one request at a time, so concurrency only queues (ratios near 1.0 expected).

Usage::

    python benchmarks/llamacpp_throughput.py [--kv f16 q8_0 q4_0] [--concurrency 1 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_servecert.models.gguf import convert_to_gguf, ensure_gguf
from pytest_servecert.serving import ChatRequest, LlamaCppServer, Sampler, ServerSpec
from pytest_servecert.serving.llamacpp import KV_CACHE_TYPES

TOPICS = ("bake bread", "learn to swim", "plant tomatoes", "fix a flat tyre", "train a puppy",
          "save money", "study for exams", "paint a room", "make coffee", "plan a trip")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", type=Path, default=None, help="HF model dir (default servecert-tiny)"
    )
    parser.add_argument(
        "--kv", nargs="+", default=list(KV_CACHE_TYPES), choices=list(KV_CACHE_TYPES)
    )
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    if args.model is None:
        from pytest_servecert.models import ensure_model

        args.model = ensure_model("target")
    out: dict[str, Any] = {"model": str(args.model), "kv": {}}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fresh = convert_to_gguf(args.model, Path(tmp) / "model.gguf")
        out["convert_s"] = time.perf_counter() - t0
        out["gguf_bytes"] = fresh.stat().st_size
    gguf = ensure_gguf(args.model)
    print(
        f"GGUF conversion: {out['convert_s']:.1f} s, {out['gguf_bytes'] / 1e6:.2f} MB ({gguf.name})"
    )

    prompts = [f"How do I {TOPICS[i % len(TOPICS)]}? ({i})" for i in range(args.prompts)]
    for kv in args.kv:
        type_id = str(KV_CACHE_TYPES[kv])
        spec = ServerSpec(
            "llamacpp", str(gguf), label=kv, served_model_name="servecert-tiny",
            args=("--type_k", type_id, "--type_v", type_id, "--n_threads", str(args.threads)),
        )  # fmt: skip
        row: dict[str, Any] = {}
        with LlamaCppServer(spec, start_timeout_s=300) as server:
            row["start_s"], row["rss_mb"] = (
                server.start_seconds,
                (server.start_rss_bytes or 0) / 2**20,
            )
            sampler = Sampler(server.base_url, server.served_model_name, progress=False)
            for concurrency in args.concurrency:
                requests = [
                    ChatRequest(key=f"{concurrency}-{i}", prompt=p, max_tokens=args.max_tokens)
                    for i, p in enumerate(prompts)
                ]
                t0 = time.perf_counter()
                results = sampler.sample_sync(requests, concurrency=concurrency)
                seconds = time.perf_counter() - t0
                assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
                tokens = sum(r.completion_tokens or 0 for r in results)
                row[f"c{concurrency}"] = {
                    "req_s": len(results) / seconds,
                    "tok_s": tokens / seconds,
                }
        out["kv"][kv] = row

    base = out["kv"].get("f16")
    print(
        f"{'kv':6} {'start s':>8} {'RSS MB':>7} "
        + " ".join(
            f"{'c' + str(c) + ' req/s':>11} {'tok/s':>7} {'vs f16':>6}" for c in args.concurrency
        )
    )
    for kv, row in out["kv"].items():
        cols = []
        for c in args.concurrency:
            cell = row[f"c{c}"]
            ratio = cell["req_s"] / base[f"c{c}"]["req_s"] if base else float("nan")
            cols.append(f"{cell['req_s']:11.2f} {cell['tok_s']:7.1f} {ratio:6.2f}")
        print(f"{kv:6} {row['start_s']:8.1f} {row['rss_mb']:7.0f} " + " ".join(cols))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
