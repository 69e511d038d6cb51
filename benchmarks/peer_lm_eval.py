"""Peer benchmark (issue 9, target 2): the runner vs lm-evaluation-harness on one workload.

The workload is the default certification's (``--config``, default ``servecert.toml``): the
prompts of every battery in ``[batteries] use``, subsampled to ``prompts_per_cell`` per battery
with the config's seed by the project's own battery loader, greedy (T=0), ``max_tokens`` per
answer, each prompt sent as one user message. One vLLM server is booted with the center cell's
flags (``[engine] args`` + prefix caching off), then, at each ``--concurrency`` (the batch-size
axis), two clients take turns ``--repeats`` times on that server:

* **runner**: the runner's sampling path, in this process: response keys as the runner builds
  them, :class:`pytest_servecert.serving.Sampler` at that concurrency, every answer written to a
  fresh SQLite store (:class:`pytest_servecert.store.Store`) in batches as the runner does;
* **lm-eval**: the ``lm_eval`` CLI (``--model local-chat-completions`` with
  ``num_concurrent``; ``--apply_chat_template``; a ``generate_until`` task over the same prompts
  written as a local JSONL dataset, ``until: []`` so both stop at EOS or ``max_tokens``;
  ``--log_samples --predict_only`` so the answers are kept, as a certification must), as a
  subprocess, timed from launch to exit. A probe wrapped around the CLI (same interpreter,
  nothing changed in what lm-eval does) timestamps its phases: interpreter start, imports,
  task index, model set-up, task build (dataset load), request construction, the HTTP phase,
  and what follows it; and the client CPU seconds spent in the HTTP phase.

Printed: per run, wall seconds, the HTTP phase (runner: sampling + SQLite writes; lm-eval: first
request to last answer), answers/s and client CPU seconds; per concurrency the medians and the
ratio lm-eval wall / runner wall (target >= 1.5); lm-eval's phase split; client CPU per answer;
how many answers each client got and how many are byte-identical between the two (both are greedy
on the same server). lm-eval needs no network here: the dataset is a local file, the hub is offline.
Wall times follow the machine's load (on 2 cores a busy neighbour starves the server); the client
CPU seconds are the load-independent part of the comparison.

Usage::

    tox -e peer                                 # the default: 200 prompts, concurrency 8, 32, x2
    tox -e peer -- --per-battery 4 --repeats 1  # a quick look (20 prompts)
    python benchmarks/peer_lm_eval.py [--config servecert.toml] [--per-battery N] \\
        [--concurrency 8 32] [--repeats 2] [--lm-eval-python PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_servecert.batteries import Prompt, load_battery, subsample
from pytest_servecert.config import ServecertConfig, load_config
from pytest_servecert.design import contexts, plan_arms, request_seed, server_plan
from pytest_servecert.runner import resolve_model
from pytest_servecert.serving import ChatRequest, Sampler, ServerSpec, VLLMServer
from pytest_servecert.store import ResponseKey, Store

TASK = "servecert_peer"
PROBE_ENV = "SERVECERT_PEER_PROBE"

# Runs lm-eval's own CLI entry point in this interpreter; wraps (never replaces) the functions
# that start and end each phase, records wall and CPU time there, and writes them at exit.
PROBE = r"""
import atexit, inspect, json, os, sys, time
marks = {}
def mark(name, first=False):
    if not (first and name in marks):
        marks[name] = (time.time(), time.process_time())
mark("enter")
import lm_eval.__main__ as cli
import lm_eval.evaluator as evaluator
import lm_eval.tasks as tasks
from lm_eval.api.task import Task
from lm_eval.models.api_models import TemplateAPI
mark("imported")

def timed(owner, attr, label):
    fn = getattr(owner, attr)
    if inspect.iscoroutinefunction(fn):
        async def wrapper(*args, **kwargs):
            mark(label + ":start", first=True)
            try:
                return await fn(*args, **kwargs)
            finally:
                mark(label + ":end")
    else:
        def wrapper(*args, **kwargs):
            mark(label + ":start", first=True)
            try:
                return fn(*args, **kwargs)
            finally:
                mark(label + ":end")
    setattr(owner, attr, wrapper)

timed(tasks.TaskManager, "__init__", "task_index")
timed(evaluator, "simple_evaluate", "simple_evaluate")
timed(evaluator, "set_torch_seed", "torch_seed")
timed(TemplateAPI, "__init__", "model_setup")
timed(tasks.TaskManager, "load", "task_build")
timed(Task, "build_all_requests", "request_construction")
timed(TemplateAPI, "generate_until", "generate_until")
timed(TemplateAPI, "get_batched_requests", "http")
timed(evaluator, "evaluate", "evaluate")
timed(evaluator, "add_env_info", "env_info")

@atexit.register
def dump():
    mark("exit")
    out = {"marks": marks, "modules": len(sys.modules), "torch": "torch" in sys.modules}
    with open(os.environ["SERVECERT_PEER_PROBE"], "w") as handle:
        json.dump(out, handle)

sys.argv = ["lm-eval", *sys.argv[1:]]
cli.cli_evaluate()
"""

TASK_YAML = """\
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{text}}}}"
doc_to_target: ""
generation_kwargs:
  until: []
  do_sample: false
  temperature: 0.0
  max_gen_toks: {max_tokens}
metric_list:
  - metric: bypass
"""


@dataclass(frozen=True)
class Workload:
    """What both clients send: prompts, sampling params and the server that answers."""

    config: ServecertConfig
    prompts: tuple[Prompt, ...]
    max_tokens: int
    spec: ServerSpec


# --------------------------------------------------------------------------------- workload


def load_workload(config_path: Path, per_battery: int | None) -> Workload:
    """The default certification's prompts and its center-cell server (baseline arm)."""
    config = load_config(config_path)
    sampling = config.sampling
    dirs = [str(d) for d in config.batteries.offline_dirs if d.is_dir()] or None
    prompts: list[Prompt] = []
    for battery_id in config.batteries.use:
        battery = load_battery(
            battery_id, battery_dir=dirs, allow_download=config.batteries.allow_download
        )
        prompts += subsample(
            battery.prompts, per_battery or sampling.prompts_per_cell, sampling.seed
        )
    if config.engine.name != "vllm":
        raise SystemExit(
            f"{config_path}: [engine] name = {config.engine.name!r}; this benchmark serves vllm"
        )
    baseline = plan_arms(config)[0]
    center = contexts(config.design)[0]
    plan = server_plan(config, baseline, center, resolve_model)
    spec = ServerSpec(
        "vllm",
        resolve_model(config.model.path),
        args=plan.args,
        env=plan.env,
        label="peer:baseline",
        served_model_name=config.model.name,
    )
    return Workload(config, tuple(prompts), sampling.max_tokens, spec)


def context_label(config: ServecertConfig, concurrency: int) -> str:
    """The design's label for the batch-size spoke at ``concurrency`` (store keys use it)."""
    for ctx in contexts(config.design):
        if ctx.batch_size == concurrency and ctx.deviates in ((), ("batch_size",)):
            return ctx.label
    return f"batch_size={concurrency}"


def prompt_key(prompt: Prompt) -> str:
    return f"{prompt.battery}/{prompt.prompt_id}"


def write_task(workdir: Path, workload: Workload) -> Path:
    """The prompts as a local JSONL dataset plus an lm-eval task YAML; returns --include_path."""
    task_dir = workdir / "lm_eval_task"
    task_dir.mkdir()
    data = task_dir / "prompts.jsonl"
    with data.open("w") as handle:
        for prompt in workload.prompts:
            handle.write(json.dumps({"key": prompt_key(prompt), "text": prompt.text}) + "\n")
    yaml = TASK_YAML.format(task=TASK, data=json.dumps(str(data)), max_tokens=workload.max_tokens)
    (task_dir / f"{TASK}.yaml").write_text(yaml)
    return task_dir


# --------------------------------------------------------------------------------- runner


def run_runner(
    server: VLLMServer, stack_fp: str, workload: Workload, concurrency: int, store_path: Path
) -> dict[str, Any]:
    """The runner's path: keys, requests, Sampler, answers stored in batches (runner.sample).

    ``stack_fp`` is computed once per server, as the runner does while planning.
    """
    sampling = workload.config.sampling
    t0, cpu0 = time.perf_counter(), time.process_time()
    label = context_label(workload.config, concurrency)
    keys = {}
    for prompt in workload.prompts:
        seed = request_seed(sampling.seed, prompt.battery, prompt.prompt_id, 0)
        key = ResponseKey.for_prompt(
            prompt,
            arm_fingerprint=server.spec.fingerprint,
            stack_fingerprint=stack_fp,
            context=label,
            temperature=0.0,
            seed=seed,
            max_tokens=workload.max_tokens,
            top_p=sampling.top_p,
        )
        keys[key.fingerprint] = (key, prompt)
    requests = [
        ChatRequest(
            key=fp,
            messages=({"role": "user", "content": prompt.text},),
            temperature=0.0,
            seed=key.seed,
            max_tokens=key.max_tokens,
            top_p=key.top_p,
        )
        for fp, (key, prompt) in keys.items()
    ]
    sampler = Sampler(
        server.base_url, server.served_model_name, concurrency=concurrency, progress=False
    )
    texts: dict[str, str] = {}
    errors: list[str] = []
    store_s = 0.0
    t_sample, cpu_sample = time.perf_counter(), time.process_time()
    with Store(store_path) as store:
        todo = store.missing([key for key, _ in keys.values()])  # the runner's resume check
        if len(todo) != len(keys):
            raise SystemExit(
                f"{store_path}: expected a fresh store, {len(keys) - len(todo)} answers in it"
            )
        batch: list = []
        flushed = time.monotonic()
        for result in sampler.iter_sample(requests, health_check=server.check_alive):
            key, prompt = keys[result.key]
            batch.append((key, result))
            if result.ok:
                texts[prompt_key(prompt)] = result.text or ""
            else:
                errors.append(result.error or "no answer")
            if len(batch) >= 64 or time.monotonic() - flushed >= 1.0:  # as runner.sample
                store_s += _put(store, batch)
                flushed = time.monotonic()
        store_s += _put(store, batch)
    if errors:
        raise SystemExit(
            f"runner: {len(errors)} of {len(requests)} requests failed, first: {errors[0]}"
        )
    ended = time.perf_counter()
    return {
        "wall_s": ended - t0,
        "sampling_s": ended - t_sample,
        "cpu_s": time.process_time() - cpu0,
        "sampling_cpu_s": time.process_time() - cpu_sample,
        "store_s": store_s,
        "answers": len(texts),
        "texts": texts,
    }


def _put(store: Store, batch: list) -> float:
    t0 = time.perf_counter()
    store.put_responses(batch)
    batch.clear()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------- lm-eval


def lm_eval_env(workdir: Path, probe: Path) -> dict[str, str]:
    """lm-eval's environment: offline hub, caches under ``workdir``, the probe's output file."""
    return os.environ | {
        PROBE_ENV: str(probe),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(workdir / "hf_datasets"),
        "TOKENIZERS_PARALLELISM": "false",
        "OPENAI_API_KEY": "unused",
    }


def lm_eval_argv(
    python: str, server: VLLMServer, task_dir: Path, concurrency: int, out: Path
) -> list[str]:
    model_args = ",".join(
        [
            f"model={server.served_model_name}",
            f"base_url={server.base_url.rstrip('/')}/v1/chat/completions",
            f"num_concurrent={concurrency}",
            "max_retries=3",
            "timeout=600",
        ]
    )
    return [
        python,
        "-c",
        PROBE,
        "run",
        "--model",
        "local-chat-completions",
        "--model_args",
        model_args,
        "--include_path",
        str(task_dir),
        "--tasks",
        TASK,
        "--apply_chat_template",
        "--log_samples",
        "--predict_only",
        "--output_path",
        str(out),
        "--verbosity",
        "WARNING",
    ]


def run_lm_eval(
    python: str, server: VLLMServer, task_dir: Path, concurrency: int, workdir: Path
) -> dict[str, Any]:
    """One lm-eval CLI run from launch to exit; its phases from the probe; its answers."""
    out = Path(tempfile.mkdtemp(prefix="lm_eval_out_", dir=workdir))
    probe = out / "probe.json"
    argv = lm_eval_argv(python, server, task_dir, concurrency, out)
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=lm_eval_env(workdir, probe), check=False
    )
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(
            f"lm-eval exited {proc.returncode} at concurrency {concurrency}: {tail[0]}"
        )
    texts, sent = read_samples(out)
    split = phases(json.loads(probe.read_text()), launched, launched + wall)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "answers": len(texts),
        "texts": texts,
        "sent": sent,
        "sampling_s": split["spans"]["HTTP (all requests)"],
        "phases": split,
    }


def read_samples(out: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """prompt key -> answer, and prompt key -> the chat messages lm-eval sent (--log_samples)."""
    files = sorted(out.rglob(f"samples_{TASK}_*.jsonl"))
    if not files:
        raise SystemExit(f"lm-eval wrote no samples_{TASK}_*.jsonl under {out}")
    texts, sent = {}, {}
    for line in files[-1].read_text().splitlines():
        sample = json.loads(line)
        key = sample["doc"]["key"]
        texts[key] = sample["resps"][0][0]
        chat = sample["arguments"]["gen_args_0"]["arg_0"]  # JsonChatStr, a 1-tuple of JSON
        sent[key] = json.loads(chat[0] if isinstance(chat, list) else chat)
    return texts, sent


PHASES = (  # (name, end mark): consecutive spans of one lm-eval run, the first from "launch"
    ("interpreter start", "enter"),
    ("imports", "imported"),
    ("CLI + task index", "simple_evaluate:start"),
    ("seeding torch (imports torch)", "torch_seed:end"),
    ("model registry lookup", "model_setup:start"),
    ("model set-up", "model_setup:end"),
    ("task build (dataset)", "task_build:end"),
    ("request construction", "http:start"),
    ("HTTP (all requests)", "http:end"),
    ("answers to results", "evaluate:end"),
    ("env info (git, torch env)", "env_info:end"),
    ("write results + samples", "exit"),
    ("interpreter exit", "ended"),
)


def phases(probe: dict[str, Any], launched: float, ended: float) -> dict[str, Any]:
    """Seconds per phase (consecutive, they add up to the wall time) and the probe's facts."""
    marks = {name: wall for name, (wall, _) in probe["marks"].items()} | {
        "launch": launched,
        "ended": ended,
    }
    starts = ("launch", *(end for _, end in PHASES[:-1]))
    spans = {name: marks[end] - marks[start] for (name, end), start in zip(PHASES, starts)}
    cpu = probe["marks"]
    return {
        "spans": spans,
        "task_index_s": marks["task_index:end"] - marks["task_index:start"],
        "http_cpu_s": cpu["http:end"][1] - cpu["http:start"][1],
        "modules": probe["modules"],
        "torch": probe["torch"],
    }


def import_seconds(python: str, statement: str) -> float:
    """Wall seconds for a fresh ``python`` to run ``statement`` (process start + imports)."""
    t0 = time.perf_counter()
    subprocess.run([python, "-c", statement], check=True, capture_output=True)
    return time.perf_counter() - t0


RUNNER_IMPORTS = (
    "import pytest_servecert.runner, pytest_servecert.serving.client, pytest_servecert.store"
)


def check_lm_eval(python: str) -> str:
    """lm-eval's version in ``python``, or a one-line error naming the fix."""
    proc = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('lm_eval'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"lm-eval is not installed for {python}: run `tox -e peer` (or pass --lm-eval-python)"
        )
    return proc.stdout.strip()


# --------------------------------------------------------------------------------- report


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def identical(a: dict[str, str], b: dict[str, str]) -> int:
    return sum(1 for k, text in a.items() if b.get(k) == text)


def same_messages(workload: Workload, sent: dict[str, Any]) -> int:
    """Prompts lm-eval sent as exactly the runner's messages (one user turn, same text)."""
    return sum(
        sent.get(prompt_key(p)) == [{"role": "user", "content": p.text}] for p in workload.prompts
    )


def print_run(concurrency: int, repeat: int, client: str, m: dict[str, Any]) -> None:
    print(
        f"{concurrency:>4} {repeat:>3} {client:<8} {m['wall_s']:>8.2f} {m['sampling_s']:>8.2f} "
        f"{m['answers'] / m['wall_s']:>8.2f} {m['cpu_s']:>8.2f} {m['answers']:>7}",
        flush=True,
    )


def _numbers(run: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in run.items() if isinstance(v, float)}


def summarize(concurrency: int, ours: list[dict], peer: list[dict]) -> dict[str, Any]:
    """Medians, ratios, per-answer client CPU and answer agreement for one concurrency."""
    n = len(ours[0]["texts"])
    spans = {
        name: statistics.median(r["phases"]["spans"][name] for r in peer) for name, _ in PHASES
    }
    row = {
        "concurrency": concurrency,
        "n": n,
        "runner_wall_s": median_of(ours, "wall_s"),
        "runner_sampling_s": median_of(ours, "sampling_s"),
        "runner_store_s": median_of(ours, "store_s"),
        "runner_cpu_s": median_of(ours, "cpu_s"),
        "runner_sampling_cpu_s": median_of(ours, "sampling_cpu_s"),
        "lm_eval_wall_s": median_of(peer, "wall_s"),
        "lm_eval_cpu_s": median_of(peer, "cpu_s"),
        "lm_eval_http_cpu_s": statistics.median(r["phases"]["http_cpu_s"] for r in peer),
        "lm_eval_task_index_s": statistics.median(r["phases"]["task_index_s"] for r in peer),
        "lm_eval_phases": spans,
        "runner_runs": [_numbers(r) for r in ours],
        "lm_eval_runs": [_numbers(r) | {"phases": r["phases"]["spans"]} for r in peer],
        "answers": {
            "runner": [r["answers"] for r in ours],
            "lm_eval": [r["answers"] for r in peer],
        },
        "identical_runner_vs_lm_eval": identical(ours[-1]["texts"], peer[-1]["texts"]),
        "identical_runner_vs_runner": identical(ours[0]["texts"], ours[-1]["texts"]),
        "identical_lm_eval_vs_lm_eval": identical(peer[0]["texts"], peer[-1]["texts"]),
        "lm_eval_modules": peer[-1]["phases"]["modules"],
        "lm_eval_imports_torch": peer[-1]["phases"]["torch"],
    }
    row["ratio"] = row["lm_eval_wall_s"] / row["runner_wall_s"]
    row["ratio_http"] = spans["HTTP (all requests)"] / row["runner_sampling_s"]
    return row


def print_summary(report: dict[str, Any]) -> None:
    rows = report["rows"]
    cols = "".join(f" {'c=' + str(r['concurrency']):>8}" for r in rows)

    def line(label: str, values: list[float], fmt: str = ".2f") -> None:
        print(f"{label:<40}" + "".join(f" {v:>8{fmt}}" for v in values))

    print(f"\nmedians over {report['repeats']} runs, {report['prompts']} prompts each{'':<6}{cols}")
    line("runner wall s (keys + sampling + SQLite)", [r["runner_wall_s"] for r in rows])
    line("lm-eval wall s (CLI launch to exit)", [r["lm_eval_wall_s"] for r in rows])
    line("runner answers/s", [r["n"] / r["runner_wall_s"] for r in rows])
    line("lm-eval answers/s", [r["n"] / r["lm_eval_wall_s"] for r in rows])
    line("RATIO lm-eval / runner (target >= 1.5)", [r["ratio"] for r in rows])
    line("ratio, HTTP phases only", [r["ratio_http"] for r in rows])
    first = report["runner_import_s"]
    line(
        f"ratio incl. runner start ({first:.1f} s)",
        [r["lm_eval_wall_s"] / (r["runner_wall_s"] + first) for r in rows],
    )
    print(f"\nlm-eval wall s by phase (median){'':<8}{cols}")
    for name, _ in PHASES:
        line(f"  {name}", [r["lm_eval_phases"][name] for r in rows])
    line("    of which the task index", [r["lm_eval_task_index_s"] for r in rows])
    print(f"\nclient CPU ms per answer{'':<16}{cols}")
    line("  runner, whole path", [1000 * r["runner_cpu_s"] / r["n"] for r in rows], ".1f")
    line(
        "  runner, HTTP + SQLite", [1000 * r["runner_sampling_cpu_s"] / r["n"] for r in rows], ".1f"
    )
    line("  lm-eval, whole process", [1000 * r["lm_eval_cpu_s"] / r["n"] for r in rows], ".1f")
    line("  lm-eval, HTTP phase", [1000 * r["lm_eval_http_cpu_s"] / r["n"] for r in rows], ".1f")
    line("runner SQLite writes s", [r["runner_store_s"] for r in rows])
    print("\nanswers (every run) and byte-identical answers (first and last runs)")
    for r in rows:
        n = r["n"]
        print(
            f"c={r['concurrency']}: answers runner {r['answers']['runner']}, "
            f"lm-eval {r['answers']['lm_eval']}; "
            f"identical runner vs lm-eval {r['identical_runner_vs_lm_eval']}/{n}, "
            f"runner vs runner {r['identical_runner_vs_runner']}/{n}, "
            f"lm-eval vs lm-eval {r['identical_lm_eval_vs_lm_eval']}/{n}; "
            f"lm-eval sent the runner's exact messages for {r['lm_eval_same_messages']}/{n}"
        )
    if rows:
        r = rows[-1]
        print(
            f"lm-eval process: {r['lm_eval_modules']} modules loaded, "
            f"torch imported: {r['lm_eval_imports_torch']}"
        )


# --------------------------------------------------------------------------------- main


def measure(args: argparse.Namespace, workload: Workload, version: str) -> dict[str, Any]:
    report: dict[str, Any] = {
        "prompts": len(workload.prompts),
        "max_tokens": workload.max_tokens,
        "lm_eval": version,
        "repeats": args.repeats,
        "rows": [],
        "runner_import_s": import_seconds(sys.executable, RUNNER_IMPORTS),
    }
    with (
        VLLMServer(workload.spec, start_timeout_s=workload.config.engine.start_timeout_s) as server,
        tempfile.TemporaryDirectory(prefix="servecert-peer-") as tmp,
    ):
        workdir = Path(tmp)
        task_dir = write_task(workdir, workload)
        print(
            f"server ready in {server.start_seconds:.1f} s; {len(workload.prompts)} prompts, "
            f"max_tokens {workload.max_tokens}, lm-eval {version}",
            flush=True,
        )
        Sampler(server.base_url, server.served_model_name, progress=False).sample_sync(
            [
                ChatRequest(key=str(i), prompt=p.text, max_tokens=8)
                for i, p in enumerate(workload.prompts[:8])
            ]
        )  # warm-up
        stack_fp = server.stack_identity().fingerprint
        print(
            f"{'conc':>4} {'run':>3} {'client':<8} {'wall s':>8} {'HTTP s':>8} {'ans/s':>8} "
            f"{'cpu s':>8} {'answers':>7}"
        )
        for concurrency in args.concurrency:
            ours, peer = [], []
            for repeat in range(1, args.repeats + 1):
                store = workdir / f"store-c{concurrency}-r{repeat}.sqlite"
                ours.append(run_runner(server, stack_fp, workload, concurrency, store))
                print_run(concurrency, repeat, "runner", ours[-1])
                peer.append(
                    run_lm_eval(args.lm_eval_python, server, task_dir, concurrency, workdir)
                )
                print_run(concurrency, repeat, "lm-eval", peer[-1])
                if peer[-1]["answers"] != ours[-1]["answers"]:
                    raise SystemExit(
                        f"answer counts differ: runner {ours[-1]['answers']}, "
                        f"lm-eval {peer[-1]['answers']}"
                    )
            row = summarize(concurrency, ours, peer)
            row["lm_eval_same_messages"] = same_messages(workload, peer[-1]["sent"])
            report["rows"].append(row)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("servecert.toml"))
    parser.add_argument(
        "--per-battery",
        type=int,
        help="prompts per battery (default: the config's prompts_per_cell)",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--lm-eval-python", default=sys.executable, help="a python with lm-eval (default: this one)"
    )
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        raise SystemExit(f"--config {args.config}: no such file")
    version = check_lm_eval(args.lm_eval_python)
    workload = load_workload(args.config, args.per_battery)
    report = measure(args, workload, version)
    print_summary(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
