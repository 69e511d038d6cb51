"""What it costs to make every answer durable the moment it arrives (issue #15 item 6).

Stores N answers in a fresh SQLite store (WAL) three ways, alternating, several times: one
transaction per answer with ``synchronous = FULL`` and with ``NORMAL``, and one per batch of 64
with ``FULL`` (the runner's former buffer, which a SIGKILL could lose). In WAL mode ``NORMAL``
keeps every committed transaction through a killed process (SIGKILL, OOM); only a power loss
or OS crash can roll back the last ones, which a re-run re-requests.

Prints the store's cost per answer each way and, for the sampler rates measured in the README
(Performance, figure 1: ~10, ~45 and ~97 requests/s at concurrency 1, 8, 32), the share of
sampling time it adds over the batched commit. The issue's rule: per-answer durability unless
it costs 5 % or more. The runner commits each answer with NORMAL.

    python benchmarks/store_durability.py [--answers 2000] [--repeats 5] [--dir DIR]

``--dir`` puts the store on the disk the real store uses (default: the system temp dir).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from pytest_servecert.store import ResponseKey, SampledResponse, Store

SAMPLER_RATES = {1: 10.0, 8: 45.0, 32: 97.0}  # requests/s, README Performance figure 1


def _keys(n: int, tag: str) -> list[ResponseKey]:
    return [
        ResponseKey(
            arm_fingerprint=tag,
            stack_fingerprint="stack",
            context="ctx",
            battery="harmbench",
            prompt_id=str(i),
            expected="refuse",
            temperature=0.0,
            seed=0,
            max_tokens=48,
            top_p=1.0,
            replicate=0,
            prompt_sha256=hashlib.sha256(str(i).encode()).hexdigest(),
        )
        for i in range(n)
    ]


def _run(path: Path, n: int, batch: int, tag: str, synchronous: str = "FULL") -> float:
    """Seconds per answer to store ``n`` answers committing every ``batch`` answers."""
    answer = SampledResponse("I can't help with that. " * 4, "stop", 40, 30, 0.05)
    with Store(path, synchronous=synchronous) as store:  # type: ignore[arg-type]
        run_id = store.start_run(config_hash="bench", argv=[], versions={})
        keys = _keys(n, tag)
        start = time.perf_counter()
        for i in range(0, n, batch):
            store.put_responses([(k, answer) for k in keys[i : i + batch]], run_id=run_id)
        return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    ways = {
        "per answer, FULL": (1, "FULL"),
        "per answer, NORMAL": (1, "NORMAL"),
        "per 64, FULL (former)": (64, "FULL"),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "store.sqlite"
        for r in range(args.repeats):
            for name, (batch, sync) in ways.items():
                times[name].append(_run(path, args.answers, batch, f"r{r}{name}", sync))
    base = statistics.median(times["per 64, FULL (former)"])
    print(f"store cost per answer (median of {args.repeats} x {args.answers} answers):")
    for name, got in times.items():
        cost = statistics.median(got)
        shares = ", ".join(
            f"c={c}: {(cost - base) * rate:+.2%}" for c, rate in SAMPLER_RATES.items()
        )
        print(
            f"  {name:<24} {cost * 1e3:7.3f} ms  {cost / base:5.1f}x  extra sampling time {shares}"
        )


if __name__ == "__main__":
    main()
