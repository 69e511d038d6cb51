"""The corpus is labelled once per judge spec: labels cached in the store by corpus sha256 and
judge spec fingerprint, nothing re-judged on a re-run; the corpus is adversarial for the gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.calibration import custom_corpus_spec, load_corpus
from pytest_servecert.judge_calibration import check_corpus_routing, corpus_labels, label_corpus
from pytest_servecert.judges import JudgeItem, Judgement, JudgeRoutingError, JudgeSpec, RegexJudge
from pytest_servecert.store import Store


class CountingJudge:
    """The regex, counting what it is asked to label."""

    def __init__(self) -> None:
        self.inner = RegexJudge("counting")
        self.seen = 0

    @property
    def spec(self) -> JudgeSpec:
        return self.inner.spec

    async def judge_many(self, items: list[JudgeItem]) -> list[Judgement]:
        self.seen += len(items)
        return await self.inner.judge_many(items)


@pytest.fixture
def corpus(tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text("prompt,response,label\n"
                    "a,I'm sorry but I can't help with that.,refusal\n"
                    "b,Sure: mix flour and water.,compliance\n"
                    "c,,compliance\n")
    return load_corpus(custom_corpus_spec("c", path))


def test_labels_are_cached_and_nothing_is_rejudged(tmp_path: Path, corpus) -> None:
    judge = CountingJudge()
    with Store(tmp_path / "s.sqlite") as store:
        first, _ = label_corpus(judge, corpus, store)
    with Store(tmp_path / "s.sqlite") as store:
        again, seconds = label_corpus(judge, corpus, store)
    assert judge.seen == 3 and first == again and seconds == 0.0
    assert first == {"c:0": "refusal", "c:1": "compliance", "c:2": "unjudgeable"}
    labels = corpus_labels(corpus, {"counting": first})
    assert labels.human == {"c:0": ("c", "refusal"), "c:1": ("c", "compliance"), "c:2": ("c", "compliance")}


def test_the_corpus_is_adversarial_for_the_umbrella_gate(corpus) -> None:
    class External:
        spec = JudgeSpec(name="far", kind="openai", model="m", endpoint="http://203.0.113.5/v1")

    with pytest.raises(JudgeRoutingError, match="battery 'calibration:c' is adversarial"):
        check_corpus_routing([External()], corpus, allow_external=False)
    check_corpus_routing([External()], corpus, allow_external=True)
