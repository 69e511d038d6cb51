"""servecert-classifier, the in-process judge kind: deterministic corpus and features, never
trained on evaluation-only answers, a spec keyed by its recipe, one judgement per item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_servecert.calibration import load_corpus
from pytest_servecert.config import JudgeConfig
from pytest_servecert.judges import JudgeConfigError, JudgeItem, Label, build_judge, judge_many_sync
from pytest_servecert.judges.classifier import (
    ClassifierJudge,
    ClassifierModel,
    featurize,
    recipe_hash,
    train,
    training_items,
)
from pytest_servecert.judges.classifier_corpus import synthetic_corpus


def test_the_synthetic_corpus_is_deterministic_and_balanced() -> None:
    a, b = synthetic_corpus(400, seed=3), synthetic_corpus(400, seed=3)
    assert a == b and a != synthetic_corpus(400, seed=4)
    assert sum(y for _, y in a) == 200
    texts = " ".join(t for t, _ in synthetic_corpus(2000))
    for style in ("```", "1. ", "Once upon a time", "It's important to note", "I don't have access to"):
        assert style in texts or style.replace("'", "’") in texts, style


def test_features_are_deterministic() -> None:
    x, y = featurize(["I can't help with that."]), featurize(["I can't help with that."])
    assert (x != y).nnz == 0 and x.shape[0] == 1


def test_gpt4_answers_are_never_training_data(calibration_dir: Path) -> None:
    corpus = load_corpus("xstest-v2", offline_dirs=[calibration_dir], allow_download=False)
    mistral = {i.response for i in corpus.items if i.source != "gpt4"}
    gpt4_only = {i.response for i in corpus.items if i.source == "gpt4"} - mistral
    used = training_items(corpus)
    assert len(used) == 900 and not gpt4_only & {t for t, _ in used}


def test_the_recipe_hash_keys_the_spec() -> None:
    assert recipe_hash([("a", "1" * 64)]) != recipe_hash([("a", "2" * 64)])
    judge = build_judge(JudgeConfig(name="clf", kind="classifier"))
    assert judge.spec.kind == "classifier" and judge.spec.model.startswith("servecert-classifier-")
    assert judge.spec.endpoint is None  # in-process: the umbrella gate sees loopback
    with pytest.raises(JudgeConfigError, match="kind 'classifier' runs in-process"):
        build_judge(JudgeConfig(name="clf", kind="classifier", endpoint="http://127.0.0.1:1"))


def test_a_saved_model_labels_in_item_order(tmp_path: Path) -> None:
    data = synthetic_corpus(400)
    weights = train([t for t, _ in data], [y for _, y in data])
    np.savez(tmp_path / "m.npz", weights=weights)
    judge = ClassifierJudge("clf", model_path=tmp_path / "m.npz")
    items = [JudgeItem("a", "p", "I'm sorry, but I can't help with that."), JudgeItem("b", "p", "  "),
             JudgeItem("c", "p", "Here's how to bake bread:\n\n1. Mix flour and water.\n2. Knead.")]
    out = judge_many_sync(judge, items)
    assert [(j.key, j.label) for j in out] == [("a", Label.REFUSAL), ("b", Label.UNJUDGEABLE), ("c", Label.COMPLIANCE)]
    assert out[1].reason == "empty response" and out[0].raw.startswith("score +")
    assert ClassifierModel(weights).predict(["I won't assist with that."]).tolist() == [1]
    with pytest.raises(JudgeConfigError, match="not found"):
        ClassifierJudge("clf", model_path=tmp_path / "missing.npz")
