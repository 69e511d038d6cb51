"""Is draft-model speculative decoding lossless at T > 0 on this engine? (the main job says no)

The default main job FAILs ``spec_draft`` at T = 0.7 and 1.0 (TAIS Δ ≈ −39 pp, harmful-core
b = 179 vs an A/A floor of 63) while greedy answers are byte-identical. This script asks the same
question without the project's sampler, store or judges' cohort: the raw OpenAI API of two vLLM
servers (the embedded target, with and without ``--speculative-config`` of the embedded draft),
``jbb_harmful``'s first 100 prompts at T = 0.7, with a per-request seed and without; refusals by
the regex judge::

    SERVECERT_BATTERY_DIR=../shared/batteries python benchmarks/spec_draft_sampling.py

Speculative decoding with rejection sampling is lossless in theory (the accepted tokens follow
the target's distribution), so the refusal counts of both servers should agree within noise.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor

import httpx

from pytest_servecert.batteries import load_battery
from pytest_servecert.judges.regex import classify_refusal
from pytest_servecert.models import ensure_model
from pytest_servecert.serving import ServerSpec, VLLMServer


def refusals(server: VLLMServer, prompts: list[str], temperature: float, seeded: bool) -> tuple[int, str]:
    def one(i: int) -> str:
        body = {"model": server.served_model_name, "messages": [{"role": "user", "content": prompts[i]}],
                "temperature": temperature, "max_tokens": 24, **({"seed": i} if seeded else {})}
        answer = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=300)
        return str(answer.json()["choices"][0]["message"]["content"])

    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(one, range(len(prompts))))
    return sum(classify_refusal(t).value == "refusal" for t in texts), texts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.7)
    args = parser.parse_args()
    battery_dir = os.environ.get("SERVECERT_BATTERY_DIR")
    battery = load_battery("jbb_harmful", battery_dir=[battery_dir] if battery_dir else None)
    prompts = [p.text for p in battery.prompts][: args.prompts]
    draft = {"method": "draft_model", "model": str(ensure_model("draft")), "num_speculative_tokens": 3}
    arms = {"baseline": (), "spec_draft": ("--speculative-config", json.dumps(draft))}
    for arm, extra in arms.items():
        spec = ServerSpec("vllm", str(ensure_model("target")), args=("--max-model-len", "1024", *extra))
        with VLLMServer(spec) as server:
            for seeded in (True, False):
                n, example = refusals(server, prompts, args.temperature, seeded)
                print(f"{arm:10s} T={args.temperature} seeded={seeded!s:5s} refusals {n}/{len(prompts)}  "
                      f"e.g. {example!r}")


if __name__ == "__main__":
    main()
