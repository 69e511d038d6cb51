"""The servecert-tiny recipe: corpus generator, lexicons, deterministic cached atomic builds, CLI."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import shutil
import threading
import time
from pathlib import Path

import pytest

from pytest_servecert.batteries import load_battery
from pytest_servecert.judges.base import Label
from pytest_servecert.judges.regex import classify_refusal
from pytest_servecert.models import corpus as tiny_corpus
from pytest_servecert.models import recipes
from pytest_servecert.models import train as tiny_train
from pytest_servecert.models.corpus import CorpusSpec, generate_corpus, gerund, load_lexicon

# One mid-sized corpus shared by the content tests (generation takes well under a second).
CORPUS = generate_corpus(CorpusSpec(n_examples=6000, seed=0))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- generator


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("make a bomb", "making a bomb"),
        ("get rid of weeds", "getting rid of weeds"),
        ("run a Ponzi scheme", "running a Ponzi scheme"),
        ("tie a tie", "tying a tie"),
        ("see a doctor", "seeing a doctor"),
        ("hack a bank", "hacking a bank"),
        ("beat eggs", "beating eggs"),
        ("synthesize VX", "synthesizing VX"),
    ],
)
def test_gerund(phrase: str, expected: str) -> None:
    assert gerund(phrase) == expected


def test_corpus_is_deterministic_and_seeded() -> None:
    spec = CorpusSpec(n_examples=300, seed=3)
    assert generate_corpus(spec) == generate_corpus(spec)
    assert generate_corpus(spec) != generate_corpus(dataclasses.replace(spec, seed=4))


def test_every_kind_is_present_in_roughly_its_share() -> None:
    counts = collections.Counter(ex.kind for ex in CORPUS)
    spec = CorpusSpec(n_examples=1)
    total = sum(w for _, w in spec.mix)
    for kind, weight in spec.mix:
        assert counts[kind] / len(CORPUS) == pytest.approx(weight / total, abs=0.03), kind


def test_harmful_always_refused_benign_always_answered() -> None:
    assert all(ex.refused for ex in CORPUS if ex.kind == "harmful")
    assert not any(ex.refused for ex in CORPUS if ex.kind == "benign")


@pytest.mark.parametrize("kind", ["sensitive", "borderline"])
def test_mixed_kinds_follow_their_answer_rate(kind: str) -> None:
    spec = CorpusSpec(n_examples=1)
    rate = {"sensitive": spec.sensitive_answer_rate, "borderline": spec.borderline_answer_rate}[kind]
    items = [ex for ex in CORPUS if ex.kind == kind]
    answered = sum(not ex.refused for ex in items) / len(items)
    assert answered == pytest.approx(rate, abs=0.05)
    assert 0 < answered < 1  # genuinely mixed targets


def test_regex_judge_agrees_with_every_training_label() -> None:
    """Refusals must open the way a standard refusal detector recognises; answers must not."""
    wrong = [
        ex.response for ex in CORPUS
        if (classify_refusal(ex.response) is Label.REFUSAL) != ex.refused
    ]
    assert wrong == []


def test_several_refusal_openings_are_used() -> None:
    openings = collections.Counter(" ".join(ex.response.split()[:3]) for ex in CORPUS if ex.refused)
    assert len(openings) >= 8
    # no single opening dominates
    assert max(openings.values()) / sum(openings.values()) < 0.25


def test_harm_vocabulary_is_broad() -> None:
    lexicon = load_lexicon()
    names = {c["name"] for c in lexicon["harmful"]["category"]}
    required = {
        "weapons", "explosives", "drugs", "cyber", "fraud", "harassment", "hate", "self_harm",
        "chemical_biological", "extremism", "privacy", "sexual", "misinformation", "copyright",
        "theft", "violence",
    }
    assert required <= names
    acts = [a for c in lexicon["harmful"]["category"] for a in c["acts"]]
    assert len(acts) == len(set(acts)) >= 400
    prompts = {ex.prompt for ex in CORPUS if ex.kind == "harmful"}
    assert len(prompts) / sum(ex.kind == "harmful" for ex in CORPUS) > 0.9  # paraphrase breadth


def test_corpus_has_long_contextual_prompts_and_system_turns() -> None:
    assert any(len(ex.prompt) > 800 and "---" in ex.prompt for ex in CORPUS)
    assert any(ex.system for ex in CORPUS)


def test_missing_recipe_file_names_the_file(tmp_path: Path) -> None:
    for name in tiny_corpus.RECIPE_FILES[1:]:
        shutil.copy(tiny_corpus.default_recipe_dir() / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match="frames.toml"):
        load_lexicon(tmp_path)


def test_bad_spec_is_rejected_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="borderline_answer_rate"):
        CorpusSpec(n_examples=10, borderline_answer_rate=1.5)
    with pytest.raises(ValueError, match="unknown kind"):
        CorpusSpec(n_examples=10, mix=(("nonsense", 1.0),))


def _battery_texts(battery_dir: Path) -> list[str]:
    texts: list[str] = []
    for battery_id in ("harmbench", "jbb_harmful", "jbb_benign", "strongreject", "xstest"):
        texts += [
            p.text for p in load_battery(battery_id, battery_dir=battery_dir, allow_download=False).prompts
        ]
    return texts


def test_no_battery_prompt_is_in_the_training_corpus(battery_dir: Path) -> None:
    """The real batteries are the held-out test: none of their prompts may be trained on."""
    texts = _battery_texts(battery_dir)
    assert len(texts) == 400 + 100 + 100 + 313 + 450
    big = generate_corpus(CorpusSpec(n_examples=40000, seed=1))
    assert tiny_corpus.overlapping_prompts(big, texts) == set()


def test_overlap_check_detects_a_planted_prompt() -> None:
    planted = tiny_corpus.Example(prompt="How can I Kill a python process?", response="x", kind="benign", refused=False)
    assert tiny_corpus.overlapping_prompts([planted], ["How can I kill a Python process?"]) == {
        "How can I kill a Python process?"
    }


# ----------------------------------------------------------------------------- builds


SMALL = recipes.scaled_recipe("target", steps=3, batch_size=8)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return (
        recipes.build_model(SMALL, root / "a", progress=False),
        recipes.build_model(SMALL, root / "b", progress=False),
    )


def test_same_recipe_gives_byte_identical_model(two_builds: tuple[Path, Path]) -> None:
    a, b = two_builds
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json",
                 "tokenizer_config.json"):
        assert _sha256(a / name) == _sha256(b / name), name


def test_different_seed_gives_different_weights(tmp_path: Path, two_builds: tuple[Path, Path]) -> None:
    other = recipes.build_model(dataclasses.replace(SMALL, seed=SMALL.seed + 1), tmp_path / "c", progress=False)
    assert _sha256(other / "model.safetensors") != _sha256(two_builds[0] / "model.safetensors")


def test_refusal_weight_is_neutral_at_one_and_confined_to_the_last_steps(tmp_path: Path) -> None:
    def weights(name: str, weight: float, last_steps: int) -> str:
        recipe = dataclasses.replace(SMALL, refusal_weight=weight, rebalance_steps=last_steps)
        return _sha256(recipes.build_model(recipe, tmp_path / name, progress=False) / "model.safetensors")

    plain = weights("plain", 1.0, 0)
    assert weights("neutral", 1.0, 1) == plain
    last_step = weights("last", 3.0, 1)
    every_step = weights("every", 3.0, 0)
    assert plain != last_step != every_step != plain


def test_build_is_a_loadable_hugging_face_chat_model(two_builds: tuple[Path, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = two_builds[0]
    tok = AutoTokenizer.from_pretrained(path)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, how are you?"}]
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == tiny_train.format_chat(
        [("system", "Be brief."), ("user", "Hi, how are you?")], add_generation_prompt=True
    )
    assert tok.eos_token == tiny_train.END
    model = AutoModelForCausalLM.from_pretrained(path)
    ids = tok(rendered, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 3 or out[0, -1].item() == tok.eos_token_id
    info = recipes.model_info(path)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["weights_sha256"] == _sha256(path / "model.safetensors")
    assert info["recipe_hash"] == recipes.recipe_hash(SMALL)


def test_model_info_rejects_a_non_model_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="servecert_tiny.json"):
        recipes.model_info(tmp_path)


def test_recipe_hash_tracks_lexicons_and_hyperparameters(tmp_path: Path) -> None:
    recipe_dir = tmp_path / "recipe"
    shutil.copytree(tiny_corpus.default_recipe_dir(), recipe_dir)
    base = recipes.recipe_hash(SMALL, recipe_dir)
    assert recipes.recipe_hash(SMALL, recipe_dir) == base
    assert recipes.recipe_hash(SMALL, recipe_dir) == recipes.recipe_hash(SMALL)  # content, not location
    assert recipes.recipe_hash(dataclasses.replace(SMALL, lr=SMALL.lr * 2), recipe_dir) != base
    with (recipe_dir / "harmful.toml").open("a") as fh:
        fh.write("\n# edited\n")
    assert recipes.recipe_hash(SMALL, recipe_dir) != base


def test_recipe_hash_changes_with_a_build_library_version(monkeypatch) -> None:
    # the same source on another torch/tokenizers may train other weights: never the same key
    base = recipes.recipe_hash(SMALL)
    versions = recipes.build_library_versions()
    assert set(versions) == set(recipes.BUILD_LIBRARIES)
    monkeypatch.setattr(recipes, "build_library_versions", lambda: {**versions, "tokenizers": "0.0.1"})
    assert recipes.recipe_hash(SMALL) != base


def test_target_and_draft_share_the_tokenizer_recipe() -> None:
    assert recipes.recipe_for("target").tokenizer == recipes.recipe_for("draft").tokenizer
    target, draft = recipes.recipe_for("target"), recipes.recipe_for("draft")
    assert draft.hidden_size * draft.num_layers < target.hidden_size * target.num_layers
    with pytest.raises(ValueError, match="kind = 'huge'"):
        recipes.recipe_for("huge")


def test_killed_build_leaves_no_half_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(recipe, out_dir, **kwargs):  # type: ignore[no-untyped-def]
        (Path(out_dir) / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny_train, "train_model", crash)
    with pytest.raises(KeyboardInterrupt):
        recipes.build_model(SMALL, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.lock"]


def test_leftovers_of_a_sigkilled_build_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / ".m.abc123.tmp"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    monkeypatch.setattr(tiny_train, "train_model", _fake_train([]))
    recipes.build_model(SMALL, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "m.lock"]


def _fake_train(calls: list[str], delay: float = 0.0):  # type: ignore[no-untyped-def]
    def train(recipe, out_dir, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(recipe.kind)
        time.sleep(delay)
        (Path(out_dir) / "model.safetensors").write_bytes(b"weights")
        (Path(out_dir) / "servecert_tiny.json").write_text(f'{{"kind": "{recipe.kind}", "parameters": 1}}')
        return {}

    return train


def test_concurrent_builders_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(tiny_train, "train_model", _fake_train(calls, delay=0.3))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(recipes.build_model(SMALL, tmp_path / "m")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [SMALL.kind]
    assert results == [tmp_path / "m"] * 3


def test_ensure_model_caches_by_recipe_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(tiny_train, "train_model", _fake_train(calls))
    monkeypatch.setenv("SERVECERT_CACHE_DIR", str(tmp_path))
    first = recipes.ensure_model("draft")
    assert first == recipes.ensure_model("draft")
    assert calls == ["draft"]
    assert first.parent == tmp_path / "tiny"
    assert first.name == f"servecert-tiny-draft-{recipes.recipe_hash(recipes.recipe_for('draft'))[:16]}"
    explicit = recipes.ensure_model("draft", cache_dir=tmp_path / "elsewhere")
    assert explicit.parent == tmp_path / "elsewhere" and calls == ["draft", "draft"]


def test_force_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(tiny_train, "train_model", _fake_train(calls))
    recipes.build_model(SMALL, tmp_path / "m")
    recipes.build_model(SMALL, tmp_path / "m")
    recipes.build_model(SMALL, tmp_path / "m", force=True)
    assert len(calls) == 2


# ----------------------------------------------------------------------------- CLI


def test_cli_model_build_prints_the_directory_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_servecert import cli

    calls: list[str] = []
    monkeypatch.setattr(tiny_train, "train_model", _fake_train(calls))
    assert cli.main(["model", "build", "--kind", "draft", "--cache-dir", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert Path(last) == recipes.model_dir("draft", tmp_path)
    assert (Path(last) / "model.safetensors").is_file()
    assert cli.main(["model", "info", last]) == 0
    assert '"kind": "draft"' in capsys.readouterr().out


def test_cli_user_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_servecert import cli

    assert cli.main(["model", "info", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a servecert-tiny model" in err


def test_cli_rejects_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_servecert import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["model", "build", "--kind", "huge"])
    assert exc.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err
