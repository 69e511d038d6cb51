"""Measure servecert-judge: gold-set accuracy, and κ against the regex on real model outputs.

1. Gold set: every judgeable item of ``fixtures/regex_labelled.jsonl`` (no request: the judge
   reads the response alone), accuracy and per-label precision/recall of the tiny judge.
2. Real outputs: servecert-tiny (vLLM, CPU, T = 0, seed 0) answers ``--prompts`` prompts per
   battery (the certification's seeded subsample); the regex and servecert-judge label every
   answer; Cohen's κ with a bootstrap 95 % CI per battery and pooled
   (:func:`pytest_servecert.claims.layer1.pair_agreements`), and each judge's unjudgeable rate.

Run (batteries from SERVECERT_BATTERY_DIR or ../shared/batteries)::

    python benchmarks/judge_agreement.py --prompts 40 --out reports/judge_agreement.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATTERIES = ("harmbench", "jbb_harmful", "jbb_benign", "strongreject", "xstest")


def gold_accuracy(judge) -> dict:
    from pytest_servecert.judges import JudgeItem, judge_many_sync

    rows = [json.loads(line) for line in (ROOT / "fixtures" / "regex_labelled.jsonl").open()]
    rows = [r for r in rows if r["label"] != "unjudgeable"]
    got = judge_many_sync(judge, [JudgeItem(r["id"], "", r["text"]) for r in rows])
    pairs = [(r["label"], j.label.value) for r, j in zip(rows, got, strict=True)]
    out: dict = {"n": len(pairs), "accuracy": sum(a == b for a, b in pairs) / len(pairs)}
    for label in ("refusal", "compliance"):
        tp = sum(a == b == label for a, b in pairs)
        predicted = sum(b == label for _, b in pairs)
        actual = sum(a == label for a, _ in pairs)
        out[f"{label}_precision"] = tp / predicted if predicted else None
        out[f"{label}_recall"] = tp / actual if actual else None
    out["unjudgeable"] = sum(b == "unjudgeable" for _, b in pairs)
    out["by_split"] = {
        split: sum(a == b for (a, b), r in zip(pairs, rows) if r["split"] == split)
        / sum(r["split"] == split for r in rows)
        for split in sorted({r["split"] for r in rows})
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40, help="prompts per battery")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from pytest_servecert.batteries import load_battery, subsample
    from pytest_servecert.claims.layer1 import JudgeInfo, pair_agreements
    from pytest_servecert.judges import JudgeItem, RegexJudge, judge_many_sync
    from pytest_servecert.judges.embedded import EmbeddedJudge
    from pytest_servecert.models import ensure_model
    from pytest_servecert.serving import ChatRequest, ServerSpec, VLLMServer, sample_sync

    dirs = [os.environ.get("SERVECERT_BATTERY_DIR") or str(ROOT.parent / "shared" / "batteries")]
    prompts = []
    for battery in BATTERIES:
        loaded = load_battery(battery, battery_dir=dirs, allow_download=False)
        prompts += list(subsample(loaded.prompts, args.prompts, 0))
    spec = ServerSpec("vllm", str(ensure_model("target")), args=("--max-model-len", "2048"))
    with VLLMServer(spec) as server:
        results = sample_sync(
            server.base_url, server.served_model_name,
            [ChatRequest(key=f"{p.battery}/{p.prompt_id}", messages=({"role": "user", "content": p.text},),
                         temperature=0.0, seed=0, max_tokens=48) for p in prompts],
            concurrency=8,
        )
    answered = [(p, r) for p, r in zip(prompts, results, strict=True) if r.text is not None]
    items = [JudgeItem(f"{p.battery}/{p.prompt_id}", p.text, r.text or "") for p, r in answered]

    regex = RegexJudge("regex")
    with EmbeddedJudge("servecert-judge", concurrency=16) as tiny:
        gold = gold_accuracy(tiny)
        tiny_labels = judge_many_sync(tiny, items)
    regex_labels = judge_many_sync(regex, items)

    records: dict[str, list[dict[str, str]]] = {}
    for (p, _), rj, tj in zip(answered, regex_labels, tiny_labels, strict=True):
        records.setdefault(p.battery, []).append({"regex": rj.label.value, "servecert-judge": tj.label.value})
    judges = [JudgeInfo("regex", "regex", "regex"), JudgeInfo("servecert-judge", "embedded", "servecert")]
    pairs = pair_agreements(records, judges, n_boot=2000, seed=0)
    report = {
        "judge_model": tiny.spec.model,
        "gold": gold,
        "answers": len(answered),
        "server_rejected": len(prompts) - len(answered),
        "kappa": [
            {"battery": p.battery or "pooled", "n": p.n, "kappa": p.kappa.kappa, "ci_low": p.kappa.ci_low,
             "ci_high": p.kappa.ci_high, "pabak": p.kappa.pabak, "degenerate": p.kappa.degenerate,
             "agreement": p.kappa.p_observed}
            for p in pairs if p.kappa is not None
        ],
        "unjudgeable": {
            name: {b: sum(r[name] == "unjudgeable" for r in rs) / len(rs) for b, rs in sorted(records.items())}
            for name in ("regex", "servecert-judge")
        },
        "labels": {
            name: dict(Counter(r[name] for rs in records.values() for r in rs)) for name in ("regex", "servecert-judge")
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
