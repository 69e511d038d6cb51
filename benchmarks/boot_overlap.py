"""Issue 17, benchmark (b): the main job with boot overlap vs without, in one invocation.

Runs ``pytest certifications -m "layer1 or layer5"`` (``benchmarks/main_job.py``'s runner) twice
on copies of a config, each in a fresh work directory (fresh store, so every server that has
work boots): first with ``[engine] overlap_boots = false`` (servers boot one after another),
then with ``true`` (the next server boots while the current one samples, within
``max_live_servers``). Prints both time splits and the ratio. With ``--fresh-model`` each run
also builds the models into an empty cache first (as on a fresh machine).

Usage::

    python benchmarks/boot_overlap.py [--prompts-per-cell 8] [--fresh-model]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from main_job import ROOT, build_models, print_run, run_main_job, write_config


def with_overlap(config: Path, overlap: bool) -> None:
    text = config.read_text()
    text, n = re.subn(r"^\[engine\]\n", f"[engine]\noverlap_boots = {str(overlap).lower()}\n", text,
                      flags=re.MULTILINE)
    if n != 1:
        raise SystemExit(f"{config}: expected one [engine] table")
    config.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "servecert.toml")
    parser.add_argument("--prompts-per-cell", type=int)
    parser.add_argument("--fresh-model", action="store_true")
    args = parser.parse_args()
    walls = {}
    for overlap in (False, True):
        workdir = Path(tempfile.mkdtemp(prefix=f"servecert-overlap-{str(overlap).lower()}-"))
        env = dict(os.environ)
        build_s = 0.0
        if args.fresh_model:
            env["SERVECERT_CACHE_DIR"] = str(workdir / "model-cache")
            build_s = build_models(env)
        config = write_config(args.config, workdir / "servecert.toml", args.prompts_per_cell, None)
        with_overlap(config, overlap)
        print(f"work directory {workdir}; load {os.getloadavg()[0]:.1f}", flush=True)
        run = run_main_job(config, workdir / "reports", env, workdir / "run.log")
        print_run(f"overlap_boots = {str(overlap).lower()}", run, build_s)
        walls[overlap] = run["wall_s"] + build_s
    print(f"\nwall: {walls[False] / 60:.1f} min without overlap, {walls[True] / 60:.1f} min with "
          f"(ratio {walls[True] / walls[False]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
