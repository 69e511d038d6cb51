"""Judge phase: every judge labels every planned answer it has not labelled yet; the cohort
vote is stored as one more label set (its fingerprint names members, voters and quorum).

Issue #20: before that, every judge labels the calibration corpus once (cached in the store,
:mod:`pytest_servecert.judge_calibration`); a voter below κ 0.40 vs human may not vote."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..batteries import Prompt
from ..claims.calibration import barred_voters, human_agreement
from ..claims.layer1 import CorpusLabels
from ..config import JudgesConfig
from ..judge_calibration import check_corpus_routing, corpus_labels, label_corpus
from ..judges.base import JudgeItem, JudgeSpec, judge_many_sync
from ..judges.cohort import Cohort
from ..judges.gate import check_judge_routing
from ..judges.health import JudgeFailedError, JudgeHealth
from ..judges.registry import build_judge
from ..store import Store
from .plan import Plan

Progress = Callable[[str], None]
#: Labels are stored per chunk of this many answers per judge: a killed run re-judges at most
#: one chunk per judge (answers are stored one by one as they arrive).
LABEL_CHUNK = 64


@dataclass(frozen=True)
class Judged:
    """The labels a run's claims and reports read."""

    cohort_fingerprint: str  # the label set the pairs are counted with
    specs: tuple[JudgeSpec, ...]  # the cohort's members
    labels_written: int
    n_voters: int
    # judge name -> {planned response fingerprint: label}
    member_labels: Mapping[str, Mapping[str, str]]
    # battery -> one {judge name: label} per answer (layer 1's input)
    label_records: Mapping[str, tuple[Mapping[str, str], ...]]
    # issue #15: judges whose error share exceeded [judges] max_error_rate (one line each;
    # only with on_judge_failure = "inconclusive", else the run stopped), requests that got
    # no answer (never stored: a re-run retries them), records short of the quorum
    judge_failures: tuple[str, ...] = ()
    judge_errors: int = 0
    short_of_quorum: int = 0
    # #20: the calibration corpus's human labels and each judge's labels of it (None: no corpus)
    corpus: CorpusLabels | None = None
    voters: tuple[str, ...] = ()  # voters before barring (layer 1 bars them again, with CIs)
    calibration_seconds: Mapping[str, float] | None = None  # judging time per judge on the corpus


def judge(config: JudgesConfig, plan: Plan, store: Store, progress: Progress) -> Judged:
    """Label every planned answer with every judge, then store the cohort vote."""
    judges = [build_judge(j) for j in config.cohort]
    # Refused before any request: adversarial prompts never leave the machine unasked.
    batteries = [b for b, _ in plan.batteries.values()]
    check_judge_routing(judges, batteries, config.allow_external_judges)
    planned = plan.prompts
    arm_fps = sorted({g.spec.fingerprint for g in plan.groups})
    corpus = plan.corpus
    if corpus is not None:
        check_corpus_routing(judges, corpus, config.allow_external_judges)
    corpus_got: dict[str, dict[str, str]] = {}
    seconds: dict[str, float] = {}
    health = JudgeHealth()
    written = 0
    for j in judges:
        if corpus is not None:  # before _label_with, which closes a judge's server
            corpus_got[j.spec.name], seconds[j.spec.name] = label_corpus(j, corpus, store, progress)
        written += _label_with(j, arm_fps, planned, store, progress, health)
    failures = tuple(health.failures(config.max_error_rate))
    if failures and config.on_judge_failure == "stop":
        raise JudgeFailedError(failures[0])
    specs = tuple(j.spec for j in judges)
    voters = Cohort.from_specs(specs, regex_role=config.regex_role).voters
    human = corpus_labels(corpus, corpus_got) if corpus is not None else None
    barred = (
        barred_voters(human_agreement(human.human, human.labels, n_boot=0), voters) if human else {}
    )
    live = [v for v in voters if v not in barred] or list(voters)
    quorum = config.min_votes or len(live) // 2 + 1  # default: a majority of the live voters
    cohort = Cohort.from_specs(specs, regex_role=config.regex_role, barred=barred,
                               quorum=min(quorum, len(live) or 1))
    cohort_fp = cohort_fingerprint(specs, cohort)
    member_labels = {s.name: store.labels_for(s.fingerprint, planned) for s in specs}
    votes_written, short = _store_votes(cohort, cohort_fp, member_labels, planned, store)
    written += votes_written
    return Judged(
        judge_failures=failures,
        judge_errors=sum(health.errors.values()),
        short_of_quorum=short,
        cohort_fingerprint=cohort_fp,
        specs=specs,
        labels_written=written,
        n_voters=len(cohort.voters),
        member_labels=member_labels,
        label_records=_label_records(member_labels, planned),
        corpus=human,
        voters=voters,
        calibration_seconds=seconds,
    )


def cohort_fingerprint(specs: tuple[JudgeSpec, ...], cohort: Cohort) -> str:
    return hashlib.sha256(
        json.dumps(
            {"members": [s.fingerprint for s in specs], "voters": list(cohort.voters),
             "min_votes": cohort.min_votes,
             **({"quorum": cohort.quorum} if cohort.quorum > 1 else {})},
            sort_keys=True,
        ).encode()
    ).hexdigest()


def _label_with(
    judge: Any, arm_fps: list[str], planned: Mapping[str, Prompt], store: Store, progress: Progress,
    health: JudgeHealth,
) -> int:
    """Labels ``judge`` wrote for the planned answers it had not labelled yet; its failed
    requests are counted in ``health``, never stored (a re-run retries them)."""
    spec = judge.spec
    written = 0
    try:
        for arm_fp in arm_fps:
            rows = [r for r in store.unlabelled(spec.fingerprint, arm_fingerprint=arm_fp)
                    if r.fingerprint in planned]
            if not rows:
                continue
            progress(f"servecert: judging {len(rows)} responses with {spec.name}")
            items = [JudgeItem(key=r.fingerprint, prompt=planned[r.fingerprint].text,
                               response=r.text or "") for r in rows]
            for start in range(0, len(items), LABEL_CHUNK):  # a kill loses one chunk at most
                judged = health.add(spec.name, judge_many_sync(judge, items[start:start + LABEL_CHUNK]))
                written += store.put_labels(
                    (j.key, spec.fingerprint, spec.name, j.label.value, j.raw or j.reason)
                    for j in judged
                )
    finally:
        if hasattr(judge, "close"):  # judges that run their own server (kind "embedded")
            judge.close()
    return written


def _store_votes(
    cohort: Cohort, cohort_fp: str, member_labels: Mapping[str, Mapping[str, str]],
    planned: Mapping[str, Prompt], store: Store,
) -> tuple[int, int]:
    """Store the cohort's vote for every planned answer whose vote is new or changed; returns
    (votes written, records short of the quorum)."""
    voted = store.labels_for(cohort_fp, planned)  # once: not once per answer
    votes = []
    short = 0
    for fp in planned:
        labels = {name: got[fp] for name, got in member_labels.items() if fp in got}
        if not labels:  # only answers are labelled; error rows are never voted on
            continue
        vote = cohort.combine(labels)
        short += vote.reason == "short of quorum"
        # rewritten when it changed: a judge that failed earlier and labelled this record
        # now turns a "short of quorum" unjudgeable into a real vote
        if voted.get(fp) != vote.label.value:
            votes.append((fp, cohort_fp, "cohort", vote.label.value,
                          json.dumps(labels, sort_keys=True)))
    return store.put_labels(votes, overwrite=True), short


def _label_records(
    member_labels: Mapping[str, Mapping[str, str]], planned: Mapping[str, Prompt]
) -> dict[str, tuple[Mapping[str, str], ...]]:
    """Layer 1 reads this run's stored labels per battery (answers only: every record a judge
    saw)."""
    records: dict[str, list[dict[str, str]]] = defaultdict(list)
    for fp, prompt in planned.items():
        labels = {name: got[fp] for name, got in member_labels.items() if fp in got}
        if labels:
            records[prompt.battery].append(labels)
    return {battery: tuple(rows) for battery, rows in records.items()}
