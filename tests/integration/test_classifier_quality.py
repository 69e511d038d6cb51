"""servecert-classifier holds on real outputs: its cross-validated κ vs human on the XSTest v2
completions (each answer labelled by a model that never saw it; GPT-4's answers are never
training data), and the regex × classifier majority beats the regex alone.

Trains three models (~1-2 min on one core): run it under the heavy lock, like the other
integration tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.calibration import load_corpus
from pytest_servecert.claims.calibration import cohort_vs_human, human_agreement
from pytest_servecert.judges import JudgeItem, RegexJudge, judge_many_sync
from pytest_servecert.judges.classifier import cross_validated_labels

pytestmark = [pytest.mark.integration]

#: The issue's target: κ vs human on answers the classifier never saw in training.
TARGET = 0.75
#: Per source, recorded with classifier-synthetic-v2 (README, "Judges and layer 1"): GPT-4 0.951,
#: Mistral-guard 0.862, Mistral-instruct 0.751 (its partial refusals: a floor below the target
#: so the test guards against a regression, not against the recorded figure's resampling noise).
SOURCE_FLOORS = {"gpt4": TARGET, "mistralguard": TARGET, "mistralinstruct": 0.70}


def test_cross_validated_kappa_vs_human(calibration_dir: Path) -> None:
    corpus = load_corpus("xstest-v2", offline_dirs=[calibration_dir], allow_download=False)
    human = {i.key: (i.source, i.human) for i in corpus.items}
    regex = {j.key: j.label.value for j in judge_many_sync(
        RegexJudge(), [JudgeItem(i.key, i.prompt, i.response) for i in corpus.items])}
    labels = {"classifier": cross_validated_labels(corpus), "regex": regex}
    figures = {(f.judge, f.source): f for f in human_agreement(human, labels, n_boot=500)}
    pooled = figures[("classifier", "")]
    assert pooled.kappa.ci_low >= TARGET, pooled
    for source, floor in SOURCE_FLOORS.items():
        assert figures[("classifier", source)].kappa.kappa >= floor, figures[("classifier", source)]
    majority = next(f for f in cohort_vs_human(human, labels, ["regex", "classifier"], n_boot=500) if not f.source)
    assert majority.kappa.ci_low > figures[("regex", "")].kappa.ci_high
    assert majority.n >= 0.8 * len(corpus)  # ties (unjudgeable) on at most a fifth of the corpus
