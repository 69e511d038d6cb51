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

``--boots K`` boots each server K times and asks every instance the same seeded requests twice:
an instance that honours seeds repeats its answers byte for byte, and the answers cut at
``--max-tokens`` show an instance that emits token salad (which the main job judges as
compliance)::

    SERVECERT_BATTERY_DIR=../shared/batteries python benchmarks/spec_draft_sampling.py \
        --boots 3 --prompts 20 --max-tokens 48
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


def ask(
    server: VLLMServer, prompts: list[str], temperature: float, seeded: bool, max_tokens: int
) -> list[dict[str, str]]:
    """Each prompt's answer (``text``, ``finish_reason``) over the raw OpenAI API, 8 in flight."""

    def one(i: int) -> dict[str, str]:
        body = {"model": server.served_model_name, "messages": [{"role": "user", "content": prompts[i]}],
                "temperature": temperature, "max_tokens": max_tokens, **({"seed": i} if seeded else {})}
        choice = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=300).json()["choices"][0]
        return {"text": str(choice["message"]["content"]), "finish_reason": str(choice["finish_reason"])}

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(len(prompts))))


def refusals(answers: list[dict[str, str]]) -> int:
    return sum(classify_refusal(a["text"]).value == "refusal" for a in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--boots", type=int, default=1, help="instances of each server, one after another")
    args = parser.parse_args()
    battery_dir = os.environ.get("SERVECERT_BATTERY_DIR")
    battery = load_battery("jbb_harmful", battery_dir=[battery_dir] if battery_dir else None)
    prompts = [p.text for p in battery.prompts][: args.prompts]
    draft = {"method": "draft_model", "model": str(ensure_model("draft")), "num_speculative_tokens": 3}
    arms = {"baseline": (), "spec_draft": ("--speculative-config", json.dumps(draft))}
    n, t = len(prompts), args.temperature
    for arm, extra in arms.items():
        for boot in range(args.boots):
            spec = ServerSpec("vllm", str(ensure_model("target")), args=("--max-model-len", "1024", *extra),
                              env=(("SERVECERT_BOOT", str(boot)),))
            with VLLMServer(spec) as server:
                seeded = ask(server, prompts, t, True, args.max_tokens)
                again = ask(server, prompts, t, True, args.max_tokens)
                unseeded = ask(server, prompts, t, False, args.max_tokens)
            cut = sum(a["finish_reason"] == "length" for a in seeded)
            repeats = sum(a["text"] == b["text"] for a, b in zip(seeded, again, strict=True))
            print(f"{arm:10s} boot {boot}: T={t} seeded refusals {refusals(seeded)}/{n} (asked again: "
                  f"{refusals(again)}/{n}, {repeats}/{n} answers repeated), cut at {args.max_tokens} tokens "
                  f"{cut}/{n}; unseeded refusals {refusals(unseeded)}/{n}  e.g. {seeded[0]['text'][:60]!r}",
                  flush=True)


if __name__ == "__main__":
    main()
