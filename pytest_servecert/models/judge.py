"""``servecert-judge``: the embedded default LLM judge, a tiny model built like servecert-tiny.

It reads one (request, response) pair rendered with
:data:`~pytest_servecert.judge_prompt.TINY_JUDGE_PROMPT` as a chat user turn and answers
``REFUSAL`` or ``COMPLIANCE``; vLLM serves it over the OpenAI-compatible API like any judge.

Training corpus (project-written, deterministic, never battery data)
--------------------------------------------------------------------
* **Requests** are servecert-tiny's own synthetic prompts (``fixtures/tiny``), so the judge
  sees harmful, benign and borderline requests without any real battery prompt.
* **Responses** come from ``fixtures/judge/judge.toml``: refusals in many phrasings (with
  preambles, reasons and offers of alternatives), plain answers, hedged answers, answers that
  say "I can't ..." late, refusal-then-compliance, idioms that open like refusals, quoted
  refusals, word salad, curly apostrophes, markdown, truncation. A share of responses are
  servecert-tiny's own training answers and refusals (the outputs the judge labels in the
  embedded certification).
* **Labels** follow the regex detector's written rules (``judges/regex.py``): the judge is a
  second reader of the *same* construct, so regex × judge agreement measures reading errors,
  not a construct difference. ``fixtures/regex_labelled.jsonl`` is the held-out gold set and
  is never trained on (a unit test checks that none of its texts occur in the corpus).

The trainer reuses servecert-tiny's tokenizer files, chat template, batching and learning-rate
schedule (``models/train.py``); only the corpus and the loss (answer tokens only) differ. It is
deterministic for a given recipe (one thread, fixed seeds, deterministic algorithms).
"""

from __future__ import annotations

import json
import os
import random
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_servecert.models import corpus as tiny_corpus
from pytest_servecert.models import train as tiny_train
from pytest_servecert.models.corpus import Example

__all__ = [
    "JUDGE_RECIPE_FILES",
    "JudgeExample",
    "default_judge_dir",
    "generate_judge_corpus",
    "load_judge_lexicon",
    "train_judge",
]

JUDGE_RECIPE_FILES = ("judge.toml",)
REFUSAL, COMPLIANCE = "REFUSAL", "COMPLIANCE"

#: Response kinds and their shares of the corpus.
MIX: tuple[tuple[str, float], ...] = (
    ("tiny", 0.22),  # servecert-tiny's own training response for the request
    ("refusal", 0.30),
    ("compliance", 0.20),
    ("hedged", 0.05),
    ("refusal_then_compliance", 0.08),
    ("idiom", 0.05),
    ("quoted", 0.03),
    ("noise", 0.04),
    ("late_words", 0.03),
)
#: Share of examples whose request is empty.
EMPTY_REQUEST_SHARE = 0.1


@dataclass(frozen=True)
class JudgeExample:
    """One training pair: request, response, the gold label and the response kind."""

    request: str
    response: str
    label: str  # "REFUSAL" | "COMPLIANCE"
    kind: str


def default_judge_dir() -> Path:
    """``fixtures/judge`` next to the package (``SERVECERT_JUDGE_RECIPE_DIR`` overrides)."""
    env = os.environ.get("SERVECERT_JUDGE_RECIPE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "fixtures" / "judge"


def load_judge_lexicon(judge_dir: Path | None = None) -> dict[str, Any]:
    """Read ``judge.toml``; a missing file is named with the directory searched."""
    root = Path(judge_dir) if judge_dir is not None else default_judge_dir()
    path = root / "judge.toml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: judge recipe file missing (set SERVECERT_JUDGE_RECIPE_DIR to the directory "
            "holding fixtures/judge)"
        )
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _strip_opener(text: str, openers: Sequence[str]) -> str:
    for opener in sorted((o for o in openers if o), key=len, reverse=True):
        if text.startswith(opener):
            return text[len(opener):]
    return text


class _ResponseGenerator:
    def __init__(
        self, lexicon: Mapping[str, Any], seed: int, tiny_lexicon: Mapping[str, Mapping[str, Any]],
        tiny_examples: Sequence[Example],
    ) -> None:
        self.lx = lexicon
        self.rng = random.Random(seed)
        self.acts = [act for cat in tiny_lexicon["harmful"]["category"] for act in cat["acts"]]
        self.benign_acts = sorted(tiny_lexicon["benign"]["acts"])
        # Answer bodies servecert-tiny is trained on (benign, sensitive, borderline), without
        # their "Sure. " openers: many more subjects than judge.toml's generic bodies.
        openers = tiny_lexicon["frames"]["answer_open"]
        self.bodies = sorted({_strip_opener(ex.response, openers) for ex in tiny_examples if not ex.refused})

    def pick(self, key: str) -> str:
        seq = self.lx[key]
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def body(self) -> str:
        if self.bodies and self.chance(0.6):
            return self.bodies[self.rng.randrange(len(self.bodies))]
        return self.pick("body").format(thing=self.pick("thing"))

    def slots(self) -> dict[str, str]:
        act = self.acts[self.rng.randrange(len(self.acts))]
        benign = self.benign_acts[self.rng.randrange(len(self.benign_acts))]
        return {"act": act, "ing": tiny_corpus.gerund(act), "benign": benign}

    def opening(self) -> str:
        slots = self.slots()
        topic = self.pick("act_topic") if self.chance(0.5) else self.pick("topic")
        return self.pick("refusal_open").format(topic=topic.format(**slots), **slots)

    def refusal(self) -> str:
        if self.chance(0.04):
            return self.pick("foreign_refusal")
        opening = self.opening()
        if self.chance(0.25):
            pre = self.pick("refusal_preamble").format(**self.slots())
            opening = pre + (opening[:1].lower() + opening[1:] if pre.endswith(", ") else opening)
        tail = self.pick("refusal_reason") + self.pick("refusal_alternative").format(**self.slots())
        if len(tail) > 12 and self.chance(0.12):  # truncated after the refusal, never inside it
            tail = tail[: self.rng.randrange(1, len(tail))]
        return opening + tail

    def noise(self) -> str:
        words = [self.pick("noise_words") for _ in range(self.rng.randrange(4, 30))]
        return " ".join(words).capitalize()

    def draw(self, kind: str, tiny: Example) -> tuple[str, str]:
        if kind == "tiny":
            return tiny.response, REFUSAL if tiny.refused else COMPLIANCE
        if kind == "refusal":
            return self.refusal(), REFUSAL
        if kind == "compliance":
            return self.pick("answer_open") + self.body(), COMPLIANCE
        if kind == "hedged":
            tail = self.pick("hedge_body") if self.chance(0.5) else self.body()
            return self.pick("hedge") + tail[:1].lower() + tail[1:], COMPLIANCE
        if kind == "refusal_then_compliance":
            return self.opening() + self.pick("pivot") + self.body(), COMPLIANCE
        if kind == "idiom":
            return self.pick("idiom_open") + self.body(), COMPLIANCE
        if kind == "quoted":
            said = self.opening()
            return f'The guard said, "{said}" and closed the door. ' + self.body(), COMPLIANCE
        if kind == "noise":
            return self.noise(), COMPLIANCE
        if kind == "late_words":
            return self.pick("answer_open") + self.body() + self.pick("late_refusal_words"), COMPLIANCE
        raise ValueError(f"unknown response kind {kind!r}")

    def perturb(self, text: str, kind: str) -> str:
        """Surface variation the judge must see through (the label does not change)."""
        if self.chance(0.3):
            text = text.replace("'", "\u2019")
        if self.chance(0.06):
            first, dot, rest = text.partition(". ")
            text = f"**{first.rstrip('.')}.**" + (" " + rest if dot else "")
        if self.chance(0.03):
            text = text.upper()
        elif self.chance(0.03):
            text = text.title()
        # Truncated answers stay answers (refusals are cut after their opening, in refusal()).
        if kind in ("compliance", "noise") and len(text) > 40 and self.chance(0.12):
            text = text[: self.rng.randrange(30, len(text))]
        if self.chance(0.04):
            text = "\n" + text
        return text


def generate_judge_corpus(
    n_examples: int,
    seed: int,
    tiny_lexicon: Mapping[str, Mapping[str, Any]] | None = None,
    judge_lexicon: Mapping[str, Any] | None = None,
) -> list[JudgeExample]:
    """``n_examples`` (request, response, label) pairs, deterministically from ``seed``."""
    tiny_lx = tiny_lexicon if tiny_lexicon is not None else tiny_corpus.load_lexicon()
    judge_lx = judge_lexicon if judge_lexicon is not None else load_judge_lexicon()
    requests = tiny_corpus.generate_corpus(tiny_corpus.CorpusSpec(n_examples=n_examples, seed=seed), tiny_lx)
    gen = _ResponseGenerator(judge_lx, seed, tiny_lx, requests)
    kinds = gen.rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=n_examples)
    out = []
    for kind, tiny in zip(kinds, requests, strict=True):
        response, label = gen.draw(kind, tiny)
        # Some requests are left out: the gold set (and some callers) judge a response alone.
        request = "" if gen.chance(EMPTY_REQUEST_SHARE) else tiny.prompt
        out.append(JudgeExample(request, gen.perturb(response, kind), label, kind))
    return out


def _chat_examples(corpus: Sequence[JudgeExample]) -> list[Example]:
    """The judge corpus as chat pairs: the rendered judge prompt in, the label word out."""
    from pytest_servecert.judge_prompt import TINY_JUDGE_PROMPT

    return [
        Example(
            prompt=TINY_JUDGE_PROMPT.render(ex.request, ex.response),
            response=ex.label,
            kind=ex.kind,
            refused=ex.label == REFUSAL,
        )
        for ex in corpus
    ]


def _train_tokenizer(recipe: tiny_train.TokenizerRecipe, examples: Sequence[Example]) -> Any:
    """Byte-level BPE over the rendered prompts and answers (single-threaded: deterministic)."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        min_frequency=recipe.min_frequency,
        special_tokens=list(tiny_train.SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [t for ex in examples[: recipe.corpus.n_examples] for t in (ex.prompt, ex.response)]
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def train_judge(
    recipe: tiny_train.ModelRecipe,
    out_dir: Path,
    *,
    recipe_dir: Path | None = None,
    judge_dir: Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the judge's tokenizer and weights into ``out_dir`` (same files as servecert-tiny).

    ``recipe.corpus.seed`` seeds the corpus; it holds ``steps * batch_size`` examples, each
    seen once. The loss covers the answer tokens only (the label word and the end token),
    the first of them weighted by ``recipe.first_token_weight``.
    """
    torch = tiny_train._deterministic_torch()

    started, cpu_started = time.monotonic(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = recipe.steps * recipe.batch_size
    corpus = generate_judge_corpus(
        n, recipe.corpus.seed, tiny_corpus.load_lexicon(recipe_dir), load_judge_lexicon(judge_dir)
    )
    examples = _chat_examples(corpus)
    tok = _train_tokenizer(recipe.tokenizer, examples)
    tiny_train._write_tokenizer_files(tok, out_dir)
    encoded = tiny_train._encode_examples(tok, examples, recipe.max_len)
    groups = tiny_train._batches(encoded, recipe.batch_size, recipe.seed)
    model, config, losses = tiny_train.fit_causal_lm(
        recipe, tok, encoded, groups, lambda step, example: recipe.first_token_weight, progress=progress
    )
    tiny_train.save_model(model, config, out_dir)

    from pytest_servecert.judge_prompt import TINY_JUDGE_PROMPT

    stats = {
        "name": f"servecert-tiny-{recipe.kind}",
        "kind": recipe.kind,
        "parameters": sum(p.numel() for p in model.parameters()),
        "recipe": recipe.to_dict(),
        "judge_prompt_version": TINY_JUDGE_PROMPT.version,
        "judge_prompt_sha256": TINY_JUDGE_PROMPT.sha256,
        "train_examples": len(corpus),
        "train_tokens": sum(len(ids) for ids, _ in encoded),
        "train_refusal_share": round(sum(ex.label == REFUSAL for ex in corpus) / len(corpus), 4),
        "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
        "torch": torch.__version__,
        "train_seconds": round(time.monotonic() - started, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_started, 1),
    }
    (out_dir / "servecert_tiny.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    if log:
        log(f"servecert-tiny {recipe.kind}: {stats['parameters']} parameters, loss {stats['final_loss']}")
    return stats


def corpus_stats(corpus: Sequence[JudgeExample]) -> dict[str, Any]:
    """Counts by kind and label (for the README and tests)."""
    by_kind: dict[str, int] = {}
    for ex in corpus:
        by_kind[ex.kind] = by_kind.get(ex.kind, 0) + 1
    return {"n": len(corpus), "refusal": sum(ex.label == REFUSAL for ex in corpus), "by_kind": by_kind}

