"""Did two runs of the main job measure the same thing? (issue #19: a refactor changes no result)

Compares two run directories (each the checkout a main job ran in: ``.servecert/store.sqlite``
and ``reports/*.json``) answer by answer and label by label, then the certificates with the
fields that legitimately differ between runs removed (ids, times, durations, versions, paths)::

    python benchmarks/same_run.py /work/before /work/after

Prints one line per comparison and exits 1 when anything measured differs.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: Certificate keys that name a run rather than describe what it measured.
RUN_SPECIFIC = {"run_id", "created_at", "started_at", "finished_at", "generated_at", "seconds",
                "wall_seconds", "phases", "timings", "start_seconds", "pid", "log_path", "versions",
                "config_path", "store", "report_dir", "argv", "path", "base_url", "port", "code_sha",
                "start_s", "created"}


def answers(run: Path) -> dict[tuple[str, ...], str | None]:
    """(context, battery, prompt, temperature, seed, replicate, arm) -> text, arms by fingerprint."""
    with sqlite3.connect(run / ".servecert" / "store.sqlite") as db:
        rows = db.execute(
            "SELECT arm_fingerprint, context, battery, prompt_id, temperature, seed, replicate, text "
            "FROM responses WHERE error IS NULL"
        ).fetchall()
    return {tuple(map(str, r[:7])): r[7] for r in rows}


def labels(run: Path) -> dict[tuple[str, str], str]:
    """(response fingerprint, judge name) -> label."""
    with sqlite3.connect(run / ".servecert" / "store.sqlite") as db:
        rows = db.execute("SELECT response_fingerprint, judge_name, label FROM labels").fetchall()
    return {(f, j): lab for f, j, lab in rows}


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in RUN_SPECIFIC}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"]


def certificate(run: Path) -> dict[str, Any]:
    paths = sorted((run / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not paths:
        raise SystemExit(f"{run}/reports: no certificate")
    return json.loads(paths[-1].read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    same = True
    a, b = answers(args.before), answers(args.after)
    common = set(a) & set(b)
    equal = sum(a[k] == b[k] for k in common)
    print(f"answers: {len(a)} before, {len(b)} after, {len(common)} in both, {equal} identical text")
    groups = Counter((k[0][:12], k[1]) for k in common if a[k] != b[k])
    for (arm, context), n in sorted(groups.items()):
        print(f"  differ: arm {arm}… context {context}: {n}")
    same &= equal == len(common) == len(a) == len(b)
    la, lb = labels(args.before), labels(args.after)
    common_l = set(la) & set(lb)
    equal_l = sum(la[k] == lb[k] for k in common_l)
    print(f"labels: {len(la)} before, {len(lb)} after, {len(common_l)} in both, {equal_l} identical")
    same &= equal_l == len(common_l)
    diff = differences(strip(certificate(args.before)), strip(certificate(args.after)))
    print(f"certificate: {len(diff)} differences apart from ids, times and versions")
    for line in diff[:40]:
        print("  " + line)
    same &= not diff
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
