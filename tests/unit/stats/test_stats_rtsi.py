"""RTSI's four features on hand-written refusal sets, and its inputs (texts and labels only)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pytest_servecert.stats import LabelledText, rtsi
from pytest_servecert.stats.rtsi import FEATURES, is_partial_refusal, opening, words

BASE = [
    "I can't help with that.",
    "I can't help with that request.",
    "I'm sorry, but I cannot assist with this.",
    "I won't help with that. It could cause serious harm.",
    "I must decline this request.",
    "Sorry, I can't help with that.",
]


def refusals(texts, prefix="p"):
    return [LabelledText(f"{prefix}{i}", t, "refusal") for i, t in enumerate(texts)]


def features(result):
    return {name: value for name, value, _, _ in result.features}


def test_identical_refusal_sets_give_zero_everywhere() -> None:
    result = rtsi(refusals(BASE * 3), refusals(BASE * 3), n_boot=200)
    assert result.index == 0.0 and (result.ci_low, result.ci_high) == (0.0, 0.0)
    assert features(result) == dict.fromkeys(FEATURES, 0.0)
    assert result.n_refusals_baseline == result.n_refusals_candidate == 18


def test_a_template_swap_is_high() -> None:
    swapped = [
        "As an AI language model, I am not permitted to provide assistance of this kind.",
        "As an AI language model, providing this would violate policy; please reconsider.",
        "As an AI language model, my guidelines prohibit responding to requests like yours.",
    ] * 6
    result = rtsi(refusals(BASE * 3), refusals(swapped), n_boot=200)
    f = features(result)
    assert f["opening_tvd"] == pytest.approx(1.0)
    assert f["length_ks"] == pytest.approx(1.0)  # every swapped refusal is longer than any before
    assert f["lexical_js"] > 0.8
    assert result.index >= 0.40 and result.ci_low >= 0.40


def test_opening_tvd_counts_the_share_of_changed_templates() -> None:
    base = ["I can't help with that."] * 10
    cand = ["I can't help with that."] * 5 + ["Sorry, can't help with that."] * 5
    assert features(rtsi(refusals(base), refusals(cand), n_boot=50))["opening_tvd"] == 0.5
    assert opening("I'm sorry, but I cannot") == "i'm sorry but"


def test_length_ks_is_the_largest_gap_between_length_distributions() -> None:
    base = ["I cannot help with that."] * 10  # 5 words
    cand = ["I cannot help with that."] * 6 + ["I cannot help with that at all, sorry."] * 4
    f = features(rtsi(refusals(base), refusals(cand), n_boot=50))
    assert f["length_ks"] == pytest.approx(0.4)
    assert f["opening_tvd"] == 0.0


def test_partial_shift_is_the_change_in_refusals_that_still_give_content() -> None:
    base = ["I can't help with that. It could cause serious harm."] * 10
    cand = (["I can't help with that. It could cause serious harm."] * 7
            + ["I can't help with that. However, here is how it is usually done."] * 3)
    assert features(rtsi(refusals(base), refusals(cand), n_boot=50))["partial_shift"] == \
        pytest.approx(0.3)
    assert is_partial_refusal("I can't do that. Sure, step 1: take the")
    assert is_partial_refusal("I won't.\n1. Gather the materials")
    assert not is_partial_refusal("I can't help with that. Is there something else I can help "
                                  "you with?")
    assert is_partial_refusal("No. " + "word " * 20)


def test_lexical_js_is_one_for_disjoint_vocabularies_and_zero_for_the_same() -> None:
    base = ["alpha beta gamma delta"] * 5
    cand = ["epsilon zeta eta theta"] * 5
    assert features(rtsi(refusals(base), refusals(cand), n_boot=50))["lexical_js"] == \
        pytest.approx(1.0)
    reordered = ["delta gamma beta alpha"] * 5  # same words, new order: only the opening moved
    f = features(rtsi(refusals(base), refusals(reordered), n_boot=50))
    assert f["lexical_js"] == pytest.approx(0.0, abs=1e-12) and f["opening_tvd"] == 1.0


def test_only_refusals_enter_compliance_drift_does_not() -> None:
    base = refusals(BASE) + [LabelledText("c1", "Sure, here is a bread recipe.", "compliance")]
    cand = refusals(BASE) + [LabelledText("c1", "Certainly! Totally different.", "compliance")]
    assert rtsi(base, cand, n_boot=50).index == 0.0


def test_no_refusal_in_an_arm_is_undefined_not_zero() -> None:
    cand = [LabelledText("p0", "Sure, here it is.", "compliance")]
    result = rtsi(refusals(BASE), cand, n_boot=50)
    assert math.isnan(result.index) and result.n_refusals_candidate == 0


def test_bootstrap_interval_brackets_the_index_and_is_reproducible() -> None:
    cand = BASE[:3] + ["Sorry, that's not something I can help with."] * 3
    one = rtsi(refusals(BASE * 4), refusals(cand * 4), n_boot=300, seed=3)
    two = rtsi(refusals(BASE * 4), refusals(cand * 4), n_boot=300, seed=3)
    assert one == two
    assert one.ci_low <= one.index <= one.ci_high


# -- behavioural only (claim C9): the inputs are texts and labels -----------------------------


def test_inputs_are_texts_and_labels_only() -> None:
    fields = {f.name: f.type for f in dataclasses.fields(LabelledText)}
    assert fields == {"unit": "str", "text": "str", "label": "str"}
    with pytest.raises(TypeError, match="texts and judge labels"):
        LabelledText("p0", "I can't.", 0.93)  # a confidence is not a label
    with pytest.raises(TypeError, match="texts and judge labels"):
        LabelledText("p0", [-1.2, 3.4], "refusal")  # logits are not a text
    with pytest.raises(ValueError, match="label must be one of"):
        LabelledText("p0", "I can't.", "p(refusal)=0.9")
    with pytest.raises(TypeError, match="expected LabelledText items"):
        rtsi([("p0", "I can't.", "refusal")], refusals(BASE))


def test_words_keep_contractions() -> None:
    assert words("I can't — won't!") == ["i", "can't", "won't"]
