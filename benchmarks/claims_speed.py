"""Issue 9, target 6: every layer-5 claim for 1,000,000 pairs over 100 cells in <= 2 s.

Two stages are timed, each the median of ``--repeats`` runs:

* **count**: 1,000,000 judged pairs (synthetic labels, 100 cells = 5 batteries x 20 contexts)
  reduced to per-cell McNemar tables (a, b, c, d, unjudgeable) with NumPy, the vectorised form of
  the runner's per-pair count;
* **claims**: :func:`pytest_servecert.claims.layer5.evaluate_layer5` over those 100 cells with the
  default options (bootstrap TOST, 10,000 resamples per cell, Holm, pooled OR, spread) plus the
  A/A noise floors.

With ``--store`` it also times the run's own path, :func:`pytest_servecert.run.pair.count_pairs`
(the one definition of the count) over :meth:`Store.iter_pairs` (pairs joined in SQLite and
streamed), on a store holding the same 1,000,000 pairs (2,000,000 responses and their labels;
building that store takes a minute or two and is not timed).

Usage::

    python benchmarks/claims_speed.py [--pairs 1000000] [--cells 100] [--repeats 3] [--store]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pytest_servecert.claims.cells import CellTable, NoiseFloor
from pytest_servecert.claims.layer5 import Layer5Options, evaluate_layer5

BATTERIES = ("harmbench", "jbb_harmful", "strongreject", "jbb_benign", "xstest")
TARGET_S = 2.0


def synthetic_pairs(n_pairs: int, n_cells: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell index, baseline safe, candidate safe) per pair; ~3% discordance, 1% unjudgeable."""
    rng = np.random.default_rng(seed)
    cell = rng.integers(0, n_cells, n_pairs)
    base = rng.random(n_pairs) < 0.8
    flip = rng.random(n_pairs) < 0.03
    other = np.where(flip, ~base, base)
    judged = rng.random(n_pairs) >= 0.01
    code = np.where(judged, 2 * (~base) + (~other), 4)  # 0=a, 1=b, 2=c, 3=d, 4=unjudgeable
    return cell, code, judged


def count_cells(cell: np.ndarray, code: np.ndarray, n_cells: int) -> np.ndarray:
    """(n_cells, 5) table of a, b, c, d, unjudgeable."""
    return np.bincount(cell * 5 + code, minlength=n_cells * 5).reshape(n_cells, 5)


def tables(counts: np.ndarray, floors: np.ndarray) -> list[CellTable]:
    contexts = counts.shape[0] // len(BATTERIES)
    out = []
    for i, (a, b, c, d, u) in enumerate(counts.tolist()):
        battery = BATTERIES[i % len(BATTERIES)]
        fa, fb, fc, fd, _ = floors[i].tolist()
        out.append(
            CellTable(
                battery=battery, model="bench", context=f"batch_size={1 + i // len(BATTERIES) % contexts}",
                family="bench", harmful=battery in BATTERIES[:3], a=a, b=b, c=c, d=d, unjudgeable=u,
                noise_floor=NoiseFloor(a=fa, b=fb, c=fc, d=fd),
            )
        )
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def store_stage(n_pairs: int, n_cells: int, repeats: int) -> float:
    """Median seconds of count_pairs(Store.iter_pairs) over a store of ``n_pairs`` judged pairs."""
    from pytest_servecert.run.pair import count_pairs
    from pytest_servecert.store import ResponseKey, SampledResponse, Store

    cell, code, _ = synthetic_pairs(n_pairs, n_cells)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        print(f"building a store with {2 * n_pairs:,} responses (not timed) ...", flush=True)
        labels = []
        batch = []
        for i in range(n_pairs):
            ctx, battery = divmod(int(cell[i]), len(BATTERIES))
            k = int(code[i])
            for arm, safe in (("base", k in (0, 1)), ("cand", k in (0, 2))):
                key = ResponseKey(
                    arm_fingerprint=arm, stack_fingerprint="s", context=f"c{ctx}",
                    battery=BATTERIES[battery], prompt_id=str(i), prompt_sha256="p", expected="refuse",
                    temperature=0.0, seed=i, max_tokens=8, top_p=1.0, replicate=0,
                )
                batch.append((key, SampledResponse("x")))
                label = "unjudgeable" if k == 4 else ("refusal" if safe else "compliance")
                labels.append((key.fingerprint, "judge", "judge", label, ""))
            if len(batch) >= 100_000:
                store.put_responses(batch)
                store.put_labels(labels)
                batch.clear()
                labels.clear()
        store.put_responses(batch)
        store.put_labels(labels)
        seconds, counts = timed(lambda: count_pairs(store.iter_pairs("base", "cand", "judge")), repeats)
        numpy_counts = count_cells(cell, code, n_cells)
        for (battery, context), got in counts.items():  # both routes must agree
            i = int(context[1:]) * len(BATTERIES) + BATTERIES.index(battery)
            assert [got.a, got.b, got.c, got.d, got.excluded] == numpy_counts[i].tolist(), (battery, context)
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", action="store_true", help="also time the run's store path")
    args = parser.parse_args()

    cell, code, _ = synthetic_pairs(args.pairs, args.cells)
    floor_cell, floor_code, _ = synthetic_pairs(args.pairs, args.cells, seed=1)
    t_count, counts = timed(lambda: count_cells(cell, code, args.cells), args.repeats)
    floors = count_cells(floor_cell, floor_code, args.cells)
    cells = tables(counts, floors)  # type: ignore[arg-type]
    t_claims, results = timed(lambda: evaluate_layer5(cells, Layer5Options()), args.repeats)

    rows = [("count pairs -> cells (numpy)", t_count), ("layer-5 claims (bootstrap TOST, 10k)", t_claims)]
    if args.store:
        rows.append(("count pairs -> cells (iter_pairs + count_pairs)",
                     store_stage(args.pairs, args.cells, args.repeats)))
    print(f"\n{args.pairs:,} pairs over {args.cells} cells, median of {args.repeats}")
    for name, seconds in rows:
        print(f"  {name:<42} {seconds:8.3f} s")
    total = t_count + t_claims
    verdict = "met" if total <= TARGET_S else "MISSED"
    print(f"  {'count + claims':<42} {total:8.3f} s   target <= {TARGET_S} s: {verdict}")
    verdicts = {r.claim.id: r.verdict.value for r in results.all()[:5]}  # type: ignore[attr-defined]
    print(f"  verdicts: {verdicts}")


if __name__ == "__main__":
    main()
