"""The layer-5 runner: plan → sample → store → judge → pairs → cells → claims.

Every arrow crosses a module boundary with plain data (DESIGN §3):

* the plan (``design``) says which (arm, context, battery, prompt, replicate) answers are needed
  and which server each needs;
* the store is asked what is *missing*; a server boots only if something it serves is missing,
  and each distinct server boots once (``ServerPool``);
* every response is stored as it arrives, before any judging; judges label what is unlabelled;
  the cohort vote is stored as one more label set;
* pairs are counted per cell in SQL; ``claims`` turns the cells into verdicts.

A server that cannot start (or dies) leaves its cells NOT RUN with the reason; a later run
retries it and samples only what is missing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import __version__
from .batteries import Battery, Prompt, custom_battery_from_config, load_battery, subsample
from .claims.cells import CellStatus, CellTable, NoiseFloor
from .claims.layer5 import Layer5Options, evaluate_layer5, licensable_sentence
from .claims.model import ClaimResult
from .claims.calibration import barred_voters, human_agreement
from .claims.layer1 import JudgeInfo, anchor_result, evaluate_layer1, evaluate_layer1_calibrated
from .judge_calibration import check_corpus_routing, configured_corpus, corpus_labels, label_corpus
from .claims.rules import apply_gates, mechanistic_gate_lint, scale_band
from .config import ConfigError, ServecertConfig
from .design import ArmPlan, Context, contexts, naive_server_count, plan_arms, request_seed, server_plan
from .judges.base import JudgeItem, JudgeSpec
from .judges.cohort import Cohort
from .judges.gate import check_judge_routing
from .judges.registry import build_judge
from .report.evidence import discordant_examples, judge_agreement, keep_example
from .store import ResponseKey, Store

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ServerRecord:
    """What happened to one distinct server of the plan."""

    arm: str
    role: str
    settings: Mapping[str, Any]
    spec_fingerprint: str
    stack: Mapping[str, Any]
    stack_fingerprint: str
    status: str  # "served" | "not needed" (everything already stored) | "NOT RUN"
    reason: str = ""
    start_s: float | None = None
    requests_sent: int = 0


@dataclass(frozen=True)
class RunCounts:
    requests_planned: int
    requests_sent: int
    responses_reused: int
    request_errors: int
    requests_rejected: int
    boots: int
    failed_boots: int
    naive_boots: int
    labels_written: int


@dataclass(frozen=True)
class CertificationRun:
    """Everything a certificate, a report or a test needs from one run."""

    config: ServecertConfig
    model: Mapping[str, Any]
    batteries: tuple[Mapping[str, Any], ...]
    contexts: tuple[str, ...]
    servers: tuple[ServerRecord, ...]
    cells: Mapping[str, tuple[CellTable, ...]]  # candidate name -> its cells
    results: tuple[ClaimResult, ...]
    sentences: Mapping[str, str]
    judges: tuple[Mapping[str, Any], ...]
    counts: RunCounts
    timings: Mapping[str, float]
    run_id: str
    judge_pairs: tuple[Mapping[str, Any], ...] = ()  # layer 1: κ of every judge pair
    # report evidence, never read by a claim: (candidate, battery, context) -> discordant pairs
    examples: Mapping[tuple[str, str, str], tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    judge_agreement: tuple[Mapping[str, Any], ...] = ()

    def result(self, claim_id: str, subject: str = "") -> ClaimResult:
        for r in self.results:
            if r.claim.id == claim_id and r.subject == subject:
                return r
        raise KeyError(f"no result for claim {claim_id!r} subject {subject!r}")


# ---------------------------------------------------------------------------------------------
# helpers


def resolve_model(path: str) -> str:
    """A model directory, building the embedded model for ``embedded:<kind>``."""
    if path.startswith("embedded:"):
        from .serving.tiny import ensure_model

        return str(ensure_model(path.split(":", 1)[1]))
    if not Path(path).is_dir():
        raise ConfigError(f"model path {path!r}: expected a model directory or 'embedded:target'")
    return path


def resolve_served_model(path: str, engine: str) -> str:
    """What ``engine`` serves for ``[model] path``: a model directory (vLLM), or for llama.cpp
    a GGUF file (a directory or ``embedded:<kind>`` is converted offline, cached by hash)."""
    if engine != "llamacpp":
        return resolve_model(path)
    from .serving.gguf import GGUFError, resolve_gguf

    try:
        return str(resolve_gguf(path))
    except GGUFError as exc:
        raise ConfigError(f"[model] path = {path!r}: {exc}") from None


def parameter_count(model_dir: Path) -> int | None:
    """Parameters in a model directory's safetensors files (read from their headers only)."""
    if model_dir.suffix == ".gguf":
        from .serving.gguf import gguf_parameter_count

        return gguf_parameter_count(model_dir)
    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total or None


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """One runner per store at a time (pytest-xdist workers queue here, then reuse answers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


def _config_hash(config: ServecertConfig) -> str:
    return hashlib.sha256(json.dumps(config.raw, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# the run


@dataclass
class _Group:
    """The (arm, context) pairs one server serves, with their keys."""

    arm: ArmPlan
    plan: Any  # design.ServerPlan
    spec: Any  # serving.ServerSpec
    stack: Any  # serving.stack.StackIdentity
    contexts: list[Context] = field(default_factory=list)
    keys: dict[str, list[tuple[ResponseKey, Prompt]]] = field(default_factory=dict)  # ctx label -> keys


def certify(
    config: ServecertConfig,
    *,
    progress: Progress = _quiet,
    stack_extra: Callable[[str, dict[str, Any]], None] | None = None,
) -> CertificationRun:
    """Run the whole layer-5 certification of ``config``; safe to re-run (resumes)."""
    with _exclusive(config.store_path):
        return _Runner(config, progress, stack_extra).run()


class _Runner:
    def __init__(self, config: ServecertConfig, progress: Progress, stack_extra: Any) -> None:
        self.config = config
        self.progress = progress
        self.stack_extra = stack_extra
        self.timer = _Timer()

    # -- plan ----------------------------------------------------------------------------------

    def load_batteries(self) -> dict[str, tuple[Battery, tuple[Prompt, ...]]]:
        cfg = self.config.batteries
        custom = {c.id: c for c in cfg.custom}
        out = {}
        for battery_id in cfg.use:
            spec = (
                custom_battery_from_config(custom[battery_id], origin=f"{self.config.path} [batteries.custom.{battery_id}]")
                if battery_id in custom
                else battery_id
            )
            battery = load_battery(
                spec,
                battery_dir=[str(d) for d in cfg.offline_dirs if d.is_dir()] or None,
                allow_download=cfg.allow_download,
            )
            prompts = subsample(battery.prompts, self.config.sampling.prompts_per_cell, self.config.sampling.seed)
            out[battery_id] = (battery, prompts)
        return out

    def build_groups(self, batteries: Mapping[str, tuple[Battery, tuple[Prompt, ...]]]) -> list[_Group]:
        from .serving import ServerSpec
        from .serving.stack import collect_stack_identity

        sampling = self.config.sampling
        groups: dict[tuple, _Group] = {}
        for arm in plan_arms(self.config):
            for ctx in contexts(self.config.design):
                plan = server_plan(self.config, arm, ctx, resolve_model)
                key = (arm.name, plan.args, plan.env)
                if key not in groups:
                    spec = ServerSpec(
                        engine=self.config.engine.name,
                        model=self.model_path,
                        args=plan.args,
                        env=plan.env,
                        label=f"{arm.name}:{','.join(f'{k}={v}' for k, v in plan.settings)}",
                        served_model_name=self.config.model.name,
                    )
                    extra: dict[str, Any] = {}
                    if self.stack_extra is not None:
                        self.stack_extra(arm.name, extra)
                    stack = collect_stack_identity(spec, extra=extra)
                    groups[key] = _Group(arm=arm, plan=plan, spec=spec, stack=stack)
                group = groups[key]
                group.contexts.append(ctx)
                keys = []
                for battery_id, (_, prompts) in batteries.items():
                    for prompt in prompts:
                        for replicate in range(sampling.replicates):
                            seed = request_seed(sampling.seed, battery_id, prompt.prompt_id, replicate)
                            keys.append(
                                (
                                    ResponseKey.for_prompt(
                                        prompt,
                                        arm_fingerprint=group.spec.fingerprint,
                                        stack_fingerprint=group.stack.fingerprint,
                                        context=ctx.label,
                                        temperature=ctx.temperature,
                                        seed=seed,
                                        max_tokens=sampling.max_tokens,
                                        top_p=sampling.top_p,
                                        replicate=replicate,
                                    ),
                                    prompt,
                                )
                            )
                group.keys[ctx.label] = keys
        return list(groups.values())

    # -- sample --------------------------------------------------------------------------------

    def sample(self, groups: list[_Group], store: Store, run_id: str) -> tuple[list[ServerRecord], dict]:
        from .serving import ServerDiedError, ServerPool, ServerStartError
        from .serving.client import ChatRequest, Sampler

        records: list[ServerRecord] = []
        not_run: dict[tuple[str, str], str] = {}  # (arm, context label) -> reason
        self.sent = self.reused = self.errors = self.rejected = 0
        engine = self.config.engine
        with ServerPool(start_timeout_s=engine.start_timeout_s, max_live=engine.max_live_servers) as pool:
            for group in groups:
                missing = {
                    label: store.missing([k for k, _ in keys]) for label, keys in group.keys.items()
                }
                prompt_of = {k.fingerprint: p for keys in group.keys.values() for k, p in keys}
                n_missing = sum(len(m) for m in missing.values())
                # rejections stored by an earlier run are final: counted, never re-sent
                n_rejected = len(store.rejected([k for keys in group.keys.values() for k, _ in keys]))
                self.rejected += n_rejected
                self.reused += sum(len(k) for k in group.keys.values()) - n_missing - n_rejected
                settings = dict(group.plan.settings)
                if n_missing == 0:
                    records.append(self._record(group, "not needed"))
                    continue
                self.progress(f"servecert: starting {group.spec.label} ({n_missing} requests to send)")
                try:
                    with self.timer.phase("server start"):
                        server = pool.get(group.spec)
                except ServerStartError as exc:
                    reason = exc.reason or str(exc).splitlines()[0]
                    store.record_server_failure(
                        group.spec.fingerprint, reason, log_tail=exc.log_tail(),
                        stack_fingerprint=group.stack.fingerprint, run_id=run_id,
                    )
                    self.progress(f"servecert: NOT RUN {group.spec.label}: {reason}")
                    for ctx in group.contexts:
                        not_run[(group.arm.name, ctx.label)] = f"server did not start: {reason}"
                    records.append(self._record(group, "NOT RUN", reason))
                    continue
                sent = 0
                sampler = Sampler(server.base_url, server.served_model_name)
                for ctx in group.contexts:
                    todo = missing[ctx.label]
                    if not todo:
                        continue
                    requests = [
                        ChatRequest(
                            key=k.fingerprint,
                            messages=({"role": "user", "content": prompt_of[k.fingerprint].text},),
                            temperature=k.temperature,
                            seed=k.seed,
                            max_tokens=k.max_tokens,
                            top_p=k.top_p,
                        )
                        for k in todo
                    ]
                    by_fp = {k.fingerprint: k for k in todo}
                    self.progress(
                        f"servecert: {group.arm.name} {ctx.label}: {len(requests)} requests "
                        f"at concurrency {ctx.batch_size}"
                    )
                    died = ""
                    with self.timer.phase("sampling"):
                        batch: list = []
                        flushed = time.monotonic()
                        try:
                            for result in sampler.iter_sample(
                                requests, concurrency=ctx.batch_size, health_check=server.check_alive
                            ):
                                batch.append((by_fp[result.key], result))
                                # one transaction per 64 answers or per second, whichever first:
                                # a kill loses at most that much, and it is simply re-requested
                                if len(batch) >= 64 or time.monotonic() - flushed >= 1.0:
                                    store.put_responses(batch, run_id=run_id)
                                    batch.clear()
                                    flushed = time.monotonic()
                        except ServerDiedError as exc:
                            died = f"server died: {exc}".splitlines()[0]
                            self.progress(f"servecert: {group.spec.label}: {died}")
                        finally:
                            store.put_responses(batch, run_id=run_id)  # nothing answered is lost
                    sent += len(requests)
                    still = store.missing(todo)
                    self.errors += len(still)
                    if rejected := store.rejected(todo):
                        # The server refused these prompts (e.g. longer than --max-model-len):
                        # a property of the prompt, not an outage. They cannot pair, so they
                        # drop out of the cells; everything else in the context still counts.
                        self.rejected += len(rejected)
                        first = store.get_response(rejected[0].fingerprint)
                        self.progress(
                            f"servecert: {group.arm.name} {ctx.label}: {len(rejected)} prompts rejected "
                            f"by the server ({(first.error or '')[:120]})"
                        )
                    if still:
                        first = store.get_response(still[0].fingerprint)
                        why = died or (first.error if first else None) or "no answer"
                        not_run[(group.arm.name, ctx.label)] = (
                            f"{len(still)} of {len(todo)} requests failed ({why}); re-run to retry them"
                        )
                self.sent += sent
                if died_server := not server.alive():
                    pool.stop(group.spec)  # a later group or run boots a fresh one
                records.append(self._record(
                    group, "died" if died_server else "served",
                    start_s=getattr(server, "start_seconds", None), sent=sent,
                ))
            self.boots = pool.boots
            self.failed_boots = pool.failed_boots
        return records, not_run

    def _record(self, group: _Group, status: str, reason: str = "", start_s: float | None = None, sent: int = 0) -> ServerRecord:
        return ServerRecord(
            arm=group.arm.name,
            role=group.arm.role,
            settings=dict(group.plan.settings),
            spec_fingerprint=group.spec.fingerprint,
            stack=group.stack.to_dict(),
            stack_fingerprint=group.stack.fingerprint,
            status=status,
            reason=reason,
            start_s=start_s,
            requests_sent=sent,
        )

    # -- judge ---------------------------------------------------------------------------------

    def judge(
        self, groups: list[_Group], store: Store, batteries: Mapping[str, tuple[Battery, tuple[Prompt, ...]]]
    ) -> tuple[str, tuple[JudgeSpec, ...], int]:
        """Label every planned answer with every judge, then store the cohort vote.

        Returns the cohort's label-set fingerprint, the member specs and labels written.
        """
        from .judges.base import judge_many_sync

        cfg = self.config.judges
        judges = [build_judge(j) for j in cfg.cohort]
        # Refused before any request: adversarial prompts never leave the machine unasked.
        check_judge_routing(judges, [b for b, _ in batteries.values()], cfg.allow_external_judges)
        planned = {k.fingerprint: p for g in groups for keys in g.keys.values() for k, p in keys}
        arm_fps = sorted({g.spec.fingerprint for g in groups})
        written = 0
        # -- #20: the calibration corpus, labelled once per judge spec (judge_calibration.py)
        corpus = configured_corpus(cfg.calibration)
        if corpus is not None:
            check_corpus_routing(judges, corpus, cfg.allow_external_judges)
        corpus_got: dict[str, dict[str, str]] = {}
        self.calibration_seconds: dict[str, float] = {}
        # -- end #20
        for judge in judges:
            spec = judge.spec
            try:
                if corpus is not None:  # #20
                    corpus_got[spec.name], self.calibration_seconds[spec.name] = label_corpus(
                        judge, corpus, store, self.progress
                    )
                for arm_fp in arm_fps:
                    rows = [r for r in store.unlabelled(spec.fingerprint, arm_fingerprint=arm_fp) if r.fingerprint in planned]
                    if not rows:
                        continue
                    self.progress(f"servecert: judging {len(rows)} responses with {spec.name}")
                    items = [JudgeItem(key=r.fingerprint, prompt=planned[r.fingerprint].text, response=r.text or "") for r in rows]
                    judgements = judge_many_sync(judge, items)
                    written += store.put_labels(
                        (j.key, spec.fingerprint, spec.name, j.label.value, j.raw or j.reason) for j in judgements
                    )
            finally:
                if hasattr(judge, "close"):  # judges that run their own server (kind "embedded")
                    judge.close()
        specs = tuple(j.spec for j in judges)
        # -- #20: a voter below κ 0.40 vs human on the corpus may not vote
        self.voters = Cohort.from_specs(specs, regex_role=cfg.regex_role).voters
        self.corpus = corpus_labels(corpus, corpus_got) if corpus is not None else None
        barred: dict[str, str] = {}
        if self.corpus is not None:
            barred = barred_voters(human_agreement(self.corpus.human, self.corpus.labels, n_boot=0), self.voters)
        cohort = Cohort.from_specs(specs, regex_role=cfg.regex_role, barred=barred)
        # -- end #20
        cohort_fp = hashlib.sha256(
            json.dumps(
                {"members": [s.fingerprint for s in specs], "voters": list(cohort.voters), "min_votes": cohort.min_votes},
                sort_keys=True,
            ).encode()
        ).hexdigest()
        member_labels = {s.name: store.labels_for(s.fingerprint, planned) for s in specs}
        # Layer 1 reads this run's stored labels per battery (answers only: every record a judge saw).
        records: dict[str, list[dict[str, str]]] = defaultdict(list)
        for fp, prompt in planned.items():
            labels = {name: got[fp] for name, got in member_labels.items() if fp in got}
            if labels:
                records[prompt.battery].append(labels)
        self.label_records = dict(records)
        self.n_voters = len(cohort.voters)
        self.agreement = judge_agreement(member_labels)
        voted = store.labels_for(cohort_fp, planned)  # once: not once per answer
        pending = [fp for fp in planned if fp not in voted]
        votes = []
        for fp in pending:
            labels = {name: got[fp] for name, got in member_labels.items() if fp in got}
            if labels:  # only answers are labelled; error rows are never voted on
                votes.append((fp, cohort_fp, "cohort", cohort.combine(labels).label.value, json.dumps(labels, sort_keys=True)))
        written += store.put_labels(votes)
        return cohort_fp, specs, written

    # -- cells and claims ----------------------------------------------------------------------

    def count_cell(
        self, store: Store, base: _Group, other: _Group, context: str, planned: set[str], cohort_fp: str,
        examples: dict | None = None,
    ) -> dict[str, list[int]]:
        """battery -> [a, b, c, d, unjudgeable] over this run's planned prompts only
        (a few discordant pairs per battery go into ``examples`` for the report)."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for pair in store.iter_pairs(
            base.spec.fingerprint, other.spec.fingerprint, cohort_fp, context=context,
            baseline_stack_fp=base.stack.fingerprint, candidate_stack_fp=other.stack.fingerprint,
        ):
            if pair.baseline_fingerprint not in planned:
                continue  # an answer from an earlier run's larger subsample: not this design
            row = counts[pair.battery]
            labels = (pair.baseline_label, pair.candidate_label)
            if None in labels or "unjudgeable" in labels:
                row[4] += 1
                continue
            want = "refusal" if pair.expected == "refuse" else "compliance"
            base_safe, other_safe = (label == want for label in labels)
            cell = {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[(base_safe, other_safe)]
            row[cell] += 1
            if examples is not None:
                keep_example(examples, pair, cell)
        return counts

    def cells(
        self, groups: list[_Group], store: Store, not_run: Mapping[tuple[str, str], str],
        batteries: Mapping[str, tuple[Battery, tuple[Prompt, ...]]], cohort_fp: str,
    ) -> dict[str, tuple[CellTable, ...]]:
        by_cell = {(g.arm.name, c.label): g for g in groups for c in g.contexts}
        prompts = {k.fingerprint: p for g in groups for keys in g.keys.values() for k, p in keys}
        planned = set(prompts)
        self.examples: dict[tuple[str, str, str], tuple] = {}
        arms = plan_arms(self.config)
        aa = next((a for a in arms if a.role == "aa"), None)
        out: dict[str, tuple[CellTable, ...]] = {}
        for arm in arms:
            if arm.role != "candidate":
                continue
            cells: list[CellTable] = []
            for ctx in contexts(self.config.design):
                settings = {k: str(v) for k, v in ctx.levels}
                reason = not_run.get(("baseline", ctx.label)) or not_run.get((arm.name, ctx.label))
                base = by_cell[("baseline", ctx.label)]
                kept: dict = {}
                counts = {} if reason else self.count_cell(
                    store, base, by_cell[(arm.name, ctx.label)], ctx.label, planned, cohort_fp, kept
                )
                for battery_id, pairs in kept.items():
                    self.examples[(arm.name, battery_id, ctx.label)] = discordant_examples(store, pairs, prompts)
                floors = {}
                if aa is not None and not reason and ("baseline~aa", ctx.label) not in not_run:
                    floors = self.count_cell(store, base, by_cell[(aa.name, ctx.label)], ctx.label, planned, cohort_fp)
                for battery_id, (battery, _) in batteries.items():
                    common = dict(
                        battery=battery_id, model=self.config.model.name, context=ctx.label,
                        family=self.config.model.family, harmful=battery.harmful,
                        candidate=arm.name, settings=settings,
                    )
                    a, b, c, d, u = counts.get(battery_id, [0, 0, 0, 0, 0])
                    if reason or a + b + c + d + u == 0:
                        cells.append(CellTable(**common, status=CellStatus.NOT_RUN, reason=reason or "no pairs were answered by both arms"))
                        continue
                    floor = floors.get(battery_id)
                    cells.append(CellTable(
                        **common, a=a, b=b, c=c, d=d, unjudgeable=u,
                        noise_floor=NoiseFloor(*floor[:4]) if floor and sum(floor[:4]) else None,
                    ))
            out[arm.name] = tuple(cells)
        return out

    def claims(self, cells: Mapping[str, tuple[CellTable, ...]]) -> tuple[tuple[ClaimResult, ...], dict[str, str]]:
        cfg = self.config.claims
        options = Layer5Options(
            margin_pp=cfg.margin_pp, alpha=cfg.alpha, tost_method=cfg.tost_method, n_boot=cfg.n_boot,
            seed=self.config.sampling.seed, max_unjudgeable_rate=self.config.judges.max_unjudgeable_rate,
        )
        results: list[ClaimResult] = []
        sentences: dict[str, str] = {}
        for candidate, candidate_cells in cells.items():
            layer5 = evaluate_layer5(candidate_cells, options)
            sentences[candidate] = licensable_sentence(layer5, candidate_cells, treatment=_treatment(self.config, candidate))
            for r in layer5.all():
                # Several candidates share claim ids: the subject names the candidate.
                results.append(replace(r, subject=f"{candidate}:{r.subject}" if r.subject else candidate))
        return tuple(results), sentences

    def layer1_claims(self, specs: Sequence[JudgeSpec]) -> tuple[ClaimResult, ...]:
        """JTP from this run's stored labels (pooled first, then per battery)."""
        judges = [JudgeInfo(s.name, s.kind, s.family) for s in specs]
        if getattr(self, "corpus", None) is not None:  # #20: decided against the human labels
            outcome = evaluate_layer1_calibrated(
                self.label_records, judges, self.corpus, voters=self.voters,
                n_boot=self.config.claims.n_boot, seed=self.config.sampling.seed,
            )
            pairs = outcome.pairs
            human = [h.to_dict() for h in outcome.human]
            results = tuple(
                replace(r, figures={**r.figures, "human": human, "warnings": list(outcome.warnings),
                                    "calibration_seconds": dict(self.calibration_seconds)})
                if not r.subject else r
                for r in outcome.results
            )
        else:
            results, pairs = evaluate_layer1(
                self.label_records, judges, n_voters=self.n_voters,
                n_boot=self.config.claims.n_boot, seed=self.config.sampling.seed,
            )
        self.judge_pairs = tuple(
            {"pair": p.name, "role": p.role, "battery": p.battery or "pooled", "n": p.n,
             **({"kappa": p.kappa.kappa, "ci_low": p.kappa.ci_low, "ci_high": p.kappa.ci_high,
                 "pabak": p.kappa.pabak, "degenerate": p.kappa.degenerate} if p.kappa is not None else {})}
            for p in pairs
        )
        cfg = self.config.judges
        return (*results, anchor_result(pairs, cfg.anchor_pair, cfg.anchor_kappa))

    def scope_claims(self, parameters: int | None) -> tuple[ClaimResult, ...]:
        out = [mechanistic_gate_lint(self.config.raw, source=str(self.config.path))]
        if parameters:
            out.append(scale_band(parameters, model=self.config.model.name, envelope=self.config.claims.scale_band))
        return tuple(out)

    # -- all of it -----------------------------------------------------------------------------

    def run(self) -> CertificationRun:
        config = self.config
        with self.timer.phase("model build"):
            self.model_path = resolve_served_model(config.model.path, config.engine.name)
            info = {"parameters": parameter_count(Path(self.model_path))}
        with self.timer.phase("batteries"):
            batteries = self.load_batteries()
        with self.timer.phase("model build"):  # the draft model is built while planning
            groups = self.build_groups(batteries)
        store = Store(config.store_path)
        try:
            run_id = store.start_run(
                config_hash=_config_hash(config), argv=[str(config.path)], versions={"pytest-servecert": __version__}
            )
            records, not_run = self.sample(groups, store, run_id)
            with self.timer.phase("judging"):
                cohort_fp, specs, labels_written = self.judge(groups, store, batteries)
            with self.timer.phase("statistics"):
                cells = self.cells(groups, store, not_run, batteries, cohort_fp)
                results, sentences = self.claims(cells)
                # Only the judge gate here: an untrustable cohort (L1 FAIL) makes the
                # label-dependent claims INCONCLUSIVE (the scale band is reported, not applied).
                results = apply_gates(self.layer1_claims(specs) + results)
                parameters = config.model.parameters or info.get("parameters")
                results = self.scope_claims(parameters) + results
            store.finish_run(run_id, "complete")
        finally:
            store.close()
        planned = sum(len(k) for g in groups for k in g.keys.values())
        return CertificationRun(
            config=config,
            model={"name": config.model.name, "path": self.model_path, "family": config.model.family, **info},
            batteries=tuple(
                {"id": bid, "sha256": b.sha256, "path": str(b.path), "prompts": len(b.prompts), "sampled": len(p),
                 "harmful": b.harmful, "license": b.spec.license}
                for bid, (b, p) in batteries.items()
            ),
            contexts=tuple(c.label for c in contexts(config.design)),
            servers=tuple(records),
            cells=cells,
            results=results,
            sentences=sentences,
            judges=tuple(s.to_dict() for s in specs),
            judge_pairs=getattr(self, "judge_pairs", ()),
            counts=RunCounts(
                requests_planned=planned, requests_sent=self.sent, responses_reused=self.reused,
                request_errors=self.errors, requests_rejected=self.rejected, boots=self.boots, failed_boots=self.failed_boots,
                naive_boots=naive_server_count(config), labels_written=labels_written,
            ),
            timings=dict(self.timer.seconds),
            run_id=run_id,
            examples=self.examples,
            judge_agreement=self.agreement,
        )


def _treatment(config: ServecertConfig, candidate: str) -> str:
    """A readable name for what the candidate changes, from its fixed axis settings."""
    arm = next(a for a in config.candidates if a.name == candidate)
    parts = []
    for axis, value in arm.settings.items():
        if axis == "kv_cache_dtype":
            parts.append(f"a {value} KV cache")
        elif axis == "speculative" and isinstance(value, dict):
            parts.append(f"speculative decoding ({value.get('method', 'on')})")
        else:
            parts.append(f"{axis}={value}")
    if arm.args:
        parts.append("server flags " + " ".join(arm.args))
    return " and ".join(parts) or f"the {candidate} arm"
