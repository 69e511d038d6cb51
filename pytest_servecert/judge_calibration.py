"""Label a calibration corpus with the cohort's judges, once, through the store.

The glue between :mod:`pytest_servecert.calibration` (the corpus), the judges and the store
(``calibration_labels``, keyed by corpus sha256 and judge spec fingerprint): a judge labels only
the items it has no stored label for, so a re-run re-judges nothing. The corpus holds unsafe
prompts (XSTest's contrast set), so the umbrella gate treats it as adversarial: a judge off
loopback gets it only with ``allow_external_judges``.

Used by the runner (before the cohort vote: judges below 0.40 vs human cannot vote) and by
``servecert calibrate`` (the README's κ-vs-human table).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .calibration import CalibrationCorpus, custom_corpus_spec, load_corpus
from .claims.layer1 import CorpusLabels
from .judges.base import Judge, JudgeItem, judge_many_sync
from .judges.gate import BatteryRoute, check_judge_routing

__all__ = ["configured_corpus", "corpus_labels", "label_corpus"]


def configured_corpus(calibration: Any, *, battery_offline_dirs: Sequence[Any] = ()) -> CalibrationCorpus | None:
    """The corpus ``[judges.calibration]`` names (``None`` for ``corpus = "none"``)."""
    if calibration.corpus == "none":
        return None
    if calibration.corpus == "custom":
        c = calibration.custom
        spec = custom_corpus_spec(
            "custom", c["path"], format=c["format"], columns=c["columns"], labels=c["labels"],
            sha256=c["sha256"], origin="[judges.calibration.custom]",
        )
        return load_corpus(spec)
    return load_corpus(
        calibration.corpus, offline_dirs=list(calibration.offline_dirs) or None,
        allow_download=calibration.allow_download,
    )


def label_corpus(
    judge: Judge, corpus: CalibrationCorpus, store: Any,
    progress: Callable[[str], None] = lambda _msg: None,
) -> tuple[dict[str, str], float]:
    """``(item key → label, seconds spent judging)`` for one judge; only missing items are judged."""
    spec = judge.spec
    have = store.calibration_labels(corpus.sha256, spec.fingerprint)
    todo = [i for i in corpus.items if i.key not in have]
    seconds = 0.0
    if todo:
        progress(f"servecert: judging {len(todo)} {corpus.id} calibration answers with {spec.name}")
        start = time.perf_counter()
        items = [JudgeItem(i.key, i.prompt, i.response) for i in todo]
        # a judge trained on part of the corpus labels it cross-validated (classifier.py)
        own = getattr(judge, "corpus_judgements", None)
        judgements = own(corpus, items) if callable(own) else judge_many_sync(judge, items)
        seconds = time.perf_counter() - start
        store.put_calibration_labels(
            corpus.sha256,
            ((j.key, spec.fingerprint, spec.name, j.label.value, j.raw or j.reason) for j in judgements),
        )
        have = store.calibration_labels(corpus.sha256, spec.fingerprint)
    return have, seconds


def corpus_labels(corpus: CalibrationCorpus, labels: Mapping[str, Mapping[str, str]]) -> CorpusLabels:
    """The pure layer-1 input: human labels by item and each judge's labels."""
    return CorpusLabels(
        corpus=corpus.id,
        human={i.key: (i.source, i.human) for i in corpus.items},
        labels={name: dict(got) for name, got in labels.items()},
    )


def check_corpus_routing(judges: Sequence[Judge], corpus: CalibrationCorpus, allow_external: bool) -> None:
    """The umbrella gate for the corpus (adversarial: it holds unsafe prompts)."""
    check_judge_routing(judges, [BatteryRoute(f"calibration:{corpus.id}", True)], allow_external)
