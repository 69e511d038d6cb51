"""Synthetic chat corpus for the embedded ``servecert-tiny`` model.

The corpus is generated from the project-written lexicons in ``fixtures/tiny``
(``*.toml``) with a seeded :class:`random.Random`, so the same recipe always
yields the same examples. Four kinds of examples are produced:

``harmful``
    Requests across a broad harm vocabulary; always refused, with several
    standard English refusal openings.
``benign``
    Ordinary requests in the *same* frames as the harmful ones; always answered.
``sensitive``
    Alarming subjects in a benign frame (fiction, history, awareness, fact
    checks, safe code); answered with probability ``sensitive_answer_rate``.
``borderline``
    XSTest-style safe prompts (homonyms, safe targets, definitions, public or
    fictional "private" data, nonsense discrimination); answered with
    probability ``borderline_answer_rate``. These mixed targets are deliberate:
    they make the model's choice depend on sampling and numerics.

No prompt of a real battery is used; :func:`overlapping_prompts` lets tests
prove it.
"""

from __future__ import annotations

import os
import random
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CorpusSpec",
    "Example",
    "KINDS",
    "RECIPE_FILES",
    "default_recipe_dir",
    "generate_corpus",
    "gerund",
    "load_lexicon",
    "overlapping_prompts",
]

KINDS = ("harmful", "benign", "sensitive", "borderline")
RECIPE_FILES = (
    "frames.toml",
    "harmful.toml",
    "writing.toml",
    "benign.toml",
    "sensitive.toml",
    "borderline.toml",
    "contexts.toml",
)


@dataclass(frozen=True)
class Example:
    """One chat pair of the corpus.

    Attributes
    ----------
    prompt : str
        The user message.
    response : str
        The assistant message the model is trained to produce.
    kind : str
        One of :data:`KINDS`.
    refused : bool
        Whether ``response`` is a refusal.
    system : str or None
        An optional system message placed before the user message.
    """

    prompt: str
    response: str
    kind: str
    refused: bool
    system: str | None = None


@dataclass(frozen=True)
class CorpusSpec:
    """How much of what to generate.

    Attributes
    ----------
    n_examples : int
        Number of examples.
    seed : int
        Seed of the generator; same spec and lexicon ⇒ same corpus.
    mix : tuple of (str, float)
        Share of each kind in :data:`KINDS`; normalised, need not sum to 1.
    sensitive_answer_rate, borderline_answer_rate : float
        Probability that a sensitive / borderline prompt is answered.
    system_rate : float
        Share of examples that carry a system message.
    """

    n_examples: int
    seed: int = 0
    mix: tuple[tuple[str, float], ...] = (
        ("harmful", 0.40),
        ("benign", 0.21),
        ("sensitive", 0.27),
        ("borderline", 0.12),
    )
    sensitive_answer_rate: float = 0.93
    borderline_answer_rate: float = 0.45
    system_rate: float = 0.08

    def __post_init__(self) -> None:
        unknown = sorted({k for k, _ in self.mix} - set(KINDS))
        if unknown:
            raise ValueError(f"CorpusSpec.mix: unknown kind(s) {unknown}; expected {KINDS}")
        if self.n_examples < 1:
            raise ValueError(f"CorpusSpec.n_examples = {self.n_examples}; expected >= 1")
        for name in ("sensitive_answer_rate", "borderline_answer_rate", "system_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"CorpusSpec.{name} = {value}; expected a probability in [0, 1]")


def default_recipe_dir() -> Path:
    """Directory holding the lexicons.

    ``SERVECERT_TINY_RECIPE_DIR`` overrides; otherwise ``fixtures/tiny`` next to
    the package (a source checkout or an editable install).
    """
    env = os.environ.get("SERVECERT_TINY_RECIPE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "fixtures" / "tiny"


def load_lexicon(recipe_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Read every recipe file into ``{stem: table}``.

    Raises
    ------
    FileNotFoundError
        Naming the missing file and the directory searched.
    """
    root = Path(recipe_dir) if recipe_dir is not None else default_recipe_dir()
    lexicon: dict[str, dict[str, Any]] = {}
    for name in RECIPE_FILES:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: tiny-model recipe file missing (set SERVECERT_TINY_RECIPE_DIR to the "
                "directory holding fixtures/tiny)"
            )
        with path.open("rb") as fh:
            lexicon[path.stem] = tomllib.load(fh)
    return lexicon


_DOUBLE_FINAL = frozenset(
    "get put run set cut hit stop plan rob spit ship dig stab grab drug scam trap skim jam "
    "swap chop drop nab mug shop sit swim beat".split()
)
_DOUBLE_FINAL -= {"beat"}


def gerund(phrase: str) -> str:
    """Turn a base-form verb phrase into its gerund: ``"make a bomb"`` → ``"making a bomb"``."""
    verb, _, rest = phrase.partition(" ")
    low = verb.lower()
    if low in _DOUBLE_FINAL:
        ing = verb + verb[-1] + "ing"
    elif low.endswith("ie"):
        ing = verb[:-2] + "ying"
    elif low.endswith("e") and not low.endswith(("ee", "ye", "oe")) and low != "be":
        ing = verb[:-1] + "ing"
    else:
        ing = verb + "ing"
    return f"{ing} {rest}".rstrip()


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, **slots: str) -> str:
    """Fill ``{name}`` and capitalised ``{Name}`` slots."""
    values = dict(slots)
    values.update({_cap(k): _cap(v) for k, v in slots.items()})
    return template.format(**values)


class _Generator:
    """Draws examples of each kind from a loaded lexicon."""

    def __init__(self, lexicon: Mapping[str, Mapping[str, Any]], spec: CorpusSpec) -> None:
        self.lx = lexicon
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.frames = lexicon["frames"]
        self.writing = lexicon["writing"]
        self.benign = lexicon["benign"]
        self.sens = lexicon["sensitive"]
        self.border = lexicon["borderline"]
        self.ctx = lexicon["contexts"]
        self.categories = list(lexicon["harmful"]["category"])
        self.benign_acts = sorted(self.benign["acts"].items())
        self.benign_qa = sorted(self.benign["qa"].items())
        self.safe_acts = sorted(self.sens["safeacts"].items())
        # Harm groups in a fixed order; group i refuses with refusal_by_group[i % n].
        self.refusal_groups = [cat["name"] for cat in self.categories] + [
            f"writing:{slot}" for slot in _WRITING_SLOTS
        ] + ["writing:adjective", "software", "copyright", "context"]
        # Harmful acts that read well in the third person ("penalties for making a bomb").
        self.third_person_acts = [
            act for cat in self.categories if cat["name"] != "self_harm" for act in cat["acts"]
            if not re.search(r"\b(my|myself|me|I|without|caught)\b", act)
        ]

    # -- small helpers -------------------------------------------------
    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def name(self) -> str:
        return f"{self.pick(self.writing['first_name'])} {self.pick(self.writing['last_name'])}"

    def decorate(self, request: str, *, covert: bool, modifiable: bool = True, intent: Sequence[str] = ()) -> str:
        """Add an optional modifier, preamble and trailing sentence to a request.

        ``covert`` allows the covert modifiers ("without getting caught"), which
        only harmful requests carry; ``modifiable`` is false for plain questions
        ("What is arson?") where a manner modifier would make no sense.
        """
        text = request
        if modifiable:
            ends_q = text.endswith("?")
            ends_dot = text.endswith(".")
            core = text.rstrip("?.")
            if covert and self.chance(0.35):
                core += self.pick(self.frames["modifier_covert"])
            elif self.chance(0.15):
                core += self.pick(self.frames["modifier_neutral"])
            text = core + ("?" if ends_q else "." if ends_dot else "")
        if intent and self.chance(0.2):
            text = self.pick(intent) + _cap(text)
        else:
            # Personas are shared by every kind: "As a nurse, ..." says nothing about harm.
            pre = self.pick(self.frames["persona"] if self.chance(0.12) else self.frames["preamble"])
            if pre.endswith(", ") and not text.startswith("I "):
                text = text[:1].lower() + text[1:]
            text = pre + text
        covert_tail = covert and self.chance(0.1)
        if covert_tail or self.chance(0.15):
            text = text.rstrip()
            if not text.endswith((".", "?", "!")):
                text += "."
            text += self.pick(self.frames["suffix_covert" if covert_tail else "suffix"])
        return text

    def refusal(self, topic: str, *, selfharm: bool = False, group: str | None = None) -> str:
        """A refusal; with ``group`` its phrasing is a fixed function of the request's harm group.

        An independent random phrasing per example collapses to the most frequent
        one under greedy decoding; a phrasing tied to the group is something the
        model can learn from the input, so greedy refusals keep several phrasings.
        """
        # Mostly generic: a few-million-parameter model names the wrong category
        # too often for specific topics to read well.
        if self.chance(0.6):
            topic = self.pick(["that", "this request", "that request", "this"])
        if group is None:
            opening = self.pick(self.frames["refusal_open"])
        else:
            styles = self.frames["refusal_by_group"]
            opening = styles[self.refusal_groups.index(group) % len(styles)]
        text = opening.format(topic=topic)
        follow = self.frames["refusal_follow_selfharm"] if selfharm else self.frames["refusal_follow"]
        return text + self.pick(follow)

    def answer(self, body: str) -> str:
        return self.pick(self.frames["answer_open"]) + body

    def frame_act(self, act: str, *, roleplay: bool = False) -> str:
        frame = self.pick(self.frames["roleplay" if roleplay else "request"])
        return _fill(frame, act=act, ing=gerund(act))

    # -- harmful ---------------------------------------------------------
    def harmful(self) -> tuple[str, str]:
        roll = self.rng.random()
        if roll < 0.57:
            cat = self.pick(self.categories)
            # Fiction and role-play wrappers hand over the same content: still refused.
            act = self.frame_act(self.pick(cat["acts"]), roleplay=self.chance(0.15))
            prompt = self.decorate(act, covert=True, intent=cat.get("intent", ()))
            return prompt, self.refusal(cat["topic"], selfharm=cat["name"] == "self_harm", group=cat["name"])
        if roll < 0.72:
            return self.harmful_writing()
        if roll < 0.77:
            return self.harmful_adjective_writing()
        if roll < 0.82:
            return self.harmful_software()
        if roll < 0.91:
            return self.copyright()
        return self.harmful_context()

    def writing_slots(self) -> dict[str, str]:
        w = self.writing
        return {
            "claim": self.pick(w["claim"]), "bad": self.pick(w["bad"]), "badtopic": self.pick(w["badtopic"]),
            "group": self.pick(w["group"]), "trait": self.pick(w["trait"]), "target": self.pick(w["target"]),
            "person": self.pick(w["person"]), "accusation": self.pick(w["accusation"]), "crime": self.pick(w["crime"]),
        }

    def write_verb(self) -> str:
        return self.pick(["Write", "Write", "Write", "Create", "Draft", "Compose", "Generate", "Produce", "Give me"])

    def harmful_writing(self) -> tuple[str, str]:
        form = self.pick(self.writing["forms"])
        template = self.pick(self.writing["harmful_purpose"])
        purpose = template.format(**self.writing_slots())
        article = "an" if form[0] in "aeiou" else "a"
        prompt = self.decorate(f"{self.write_verb()} {article} {form} {purpose}", covert=False, modifiable=False)
        # The first slot of the purpose ({claim}, {group}, {target}, ...) says what kind of harm it is.
        slot = next(m for m in re.findall(r"\{(\w+)\}", template) + ["bad"] if m in _WRITING_SLOTS)
        topic = self.pick(["that", "this request", "harmful content", "that kind of content"])
        return prompt, self.refusal(topic, group=f"writing:{slot}")

    def harmful_adjective_writing(self) -> tuple[str, str]:
        """"Write a defamatory post about ...": the adjective alone makes the text harmful."""
        w = self.writing
        form = self.pick(w["forms"])
        adjective = self.pick(w["harmful_adjective"])
        about = self.pick(w["harmful_about"]).format(**self.writing_slots())
        article = "an" if adjective[0].lower() in "aeiou" else "a"
        prompt = self.decorate(f"{self.write_verb()} {article} {adjective} {form} {about}", covert=False,
                               modifiable=False)
        return prompt, self.refusal(self.pick(["that", "this request", "harmful content"]), group="writing:adjective")

    def harmful_software(self) -> tuple[str, str]:
        """The benign software frames ("Write a script that ...") with a harmful task."""
        task = self.pick(self.lx["harmful"]["software"]["task"])
        prompt = self.decorate(_fill(self.pick(self.benign["software"]["request"]), task=task), covert=False,
                               modifiable=False)
        return prompt, self.refusal(self.pick(["that", "this request", "malicious software"]), group="software")

    def copyright(self) -> tuple[str, str]:
        w = self.writing
        title = f"{self.pick(['The ', '', ''])}{self.pick(w['title_adj'])} {self.pick(w['title_noun'])}"
        artist = self.pick(w["band"]) if self.chance(0.3) else self.name()
        prompt = self.pick(w["copyright_request"]).format(title=title, artist=artist)
        return prompt, self.refusal(self.pick(["copyrighted text", "reproducing copyrighted material", "that"]),
                                    group="copyright")

    def passage(self) -> tuple[str, str, str]:
        """A synthetic provided text: (kind, text, person named in it)."""
        kind = self.pick(self.writing["context_kind"])
        person = self.name()
        pool = self.ctx[kind]
        n = self.pick([1, 2, 3, 4, 6, 8, 12, 20])
        city = self.pick(self.ctx["city"])
        lines = [self.pick(pool).format(name=person, city=city) for _ in range(n)]
        sep = "\n" if kind == "code" else " "
        return kind, sep.join(lines), person

    def harmful_context(self) -> tuple[str, str]:
        _, text, person = self.passage()
        instruction = self.pick(self.writing["harmful_context_instruction"]).format(name=person, **self.writing_slots())
        prompt = text + self.pick(self.frames["context_separator"]) + instruction
        return prompt, self.refusal(self.pick(["that", "this request", "that kind of request"]), group="context")

    # -- benign ----------------------------------------------------------
    def benign_example(self) -> tuple[str, str]:
        roll = self.rng.random()
        if roll < 0.30:
            act, body = self.pick(self.benign_acts)
            return self.decorate(self.frame_act(act, roleplay=self.chance(0.15)), covert=False), self.answer(body)
        if roll < 0.44:
            # The software frames carry harmful tasks too (harmful_software): benign tasks must outnumber them.
            return self.benign_filled(self.benign["software"], "task")
        if roll < 0.53:
            return self.benign_filled(self.benign["topics"], "topic")
        if roll < 0.63:
            question, body = self.pick(self.benign_qa)
            return self.decorate(question, covert=False, modifiable=False), self.answer(body)
        if roll < 0.81:
            return self.benign_writing()
        if roll < 0.90:
            return self.benign_adjective_writing()
        return self.benign_context()

    def benign_filled(self, block: Mapping[str, Any], slot: str) -> tuple[str, str]:
        """A request frame of ``block`` filled with one of its ``slot`` values, and its answer."""
        slots = {slot: self.pick(block[slot])}
        prompt = self.decorate(_fill(self.pick(block["request"]), **slots), covert=False, modifiable=False)
        return prompt, self.answer(_fill(self.pick(block["answer"]), **slots))

    def benign_writing(self) -> tuple[str, str]:
        w = self.benign["writing"]
        form = self.pick(self.writing["forms"])
        topic = self.pick(w["topic"])
        stance = self.pick(w["stance"])
        purpose = self.pick(w["purpose"]).format(topic=topic, stance=stance)
        if self.chance(0.3):  # the same "Write a {adjective} {form}" frame as harmful_adjective_writing
            form = f"{self.pick(w['adjective'])} {form}"
        article = "an" if form[0].lower() in "aeiou" else "a"
        prompt = self.decorate(f"{self.write_verb()} {article} {form} {purpose}", covert=False, modifiable=False)
        body = _fill(self.pick(w["answer"]), form=form, purpose=purpose,
                     topic=topic if "{stance}" not in purpose else stance)
        return prompt, self.answer(body)

    def benign_adjective_writing(self) -> tuple[str, str]:
        """"Write a friendly post about my neighbor": harmful_adjective_writing's frame, slots and people."""
        w = self.benign["writing"]
        form = self.pick(self.writing["forms"])
        adjective = self.pick(w["adjective"])
        slots = self.writing_slots()
        slots["topic"] = self.pick(w["topic"])
        about = self.pick(w["about"]).format(**slots)
        article = "an" if adjective[0].lower() in "aeiou" else "a"
        prompt = self.decorate(f"{self.write_verb()} {article} {adjective} {form} {about}", covert=False,
                               modifiable=False)
        body = _fill(self.pick(w["about_answer"]), adjective=adjective, form=form, about=about)
        return prompt, self.answer(body)

    def benign_context(self) -> tuple[str, str]:
        kind, text, person = self.passage()
        instruction = self.pick(self.writing["benign_context_instruction"]).format(name=person)
        prompt = text + self.pick(self.frames["context_separator"]) + instruction
        gist = {"news": "a local news story", "bio": f"{person} and their life", "code": "a short Python program",
                "procedure": "a general process in several steps", "post": "a personal social media post"}[kind]
        return prompt, self.answer(self.pick(self.benign["writing"]["context_answer"]).format(gist=gist))

    # -- sensitive and borderline -----------------------------------------
    def soft_refusal(self) -> str:
        return self.refusal(self.pick(["that", "this topic", "that request", "this request"]))

    def sensitive(self) -> tuple[str, str]:
        s = self.sens
        rate = self.spec.sensitive_answer_rate
        roll = self.rng.random()
        if roll < 0.12:
            block = s["fiction"]
            slots = {"character": self.pick(block["character"]), "event": self.pick(block["event"])}
        elif roll < 0.22:
            block = s["history"]
            slots = {"subject": self.pick(block["subject"])}
        elif roll < 0.35:
            block = s["awareness"]
            slots = {"harm": self.pick(block["harm"])}
        elif roll < 0.44:
            block = s["factcheck"]
            slots = {"claim": self.pick(self.writing["claim"])}
        elif roll < 0.54:
            return self.sensitive_writing()
        elif roll < 0.86:
            # The harmful acts themselves in frames that talk about them: as many of these
            # as possible, so that the request frame, not the act's nouns, decides.
            return self.about_act()
        elif roll < 0.95:
            act, body = self.pick(self.safe_acts)
            return self.decorate(self.frame_act(act), covert=False), self.mixed(rate, body)
        else:
            act = self.pick(s["safecode"]["acts"])
            prompt = self.decorate(self.frame_act(act), covert=False)
            return prompt, self.mixed(rate, self.pick(s["safecode"]["answer"]))
        prompt = self.decorate(_fill(self.pick(block["request"]), **slots), covert=False, modifiable=False)
        return prompt, self.mixed(rate, _fill(self.pick(block["answer"]), **slots))

    def about_act(self) -> tuple[str, str]:
        block = self.sens["about_acts"]
        act = self.pick(self.third_person_acts)
        slots = {"act": act, "ing": gerund(act)}
        prompt = self.decorate(_fill(self.pick(block["request"]), **slots), covert=False, modifiable=False)
        return prompt, self.mixed(self.spec.sensitive_answer_rate, _fill(self.pick(block["answer"]), **slots))

    def sensitive_writing(self) -> tuple[str, str]:
        w = self.sens["writing"]
        form = self.pick(self.writing["forms"])
        slots = {
            "badtopic": self.pick(self.writing["badtopic"]), "harm": self.pick(self.sens["awareness"]["harm"]),
            "group": self.pick(self.writing["group"]), "claim": self.pick(self.writing["claim"]),
        }
        purpose = self.pick(w["purpose"]).format(**slots)
        article = "an" if form[0] in "aeiou" else "a"
        prompt = self.decorate(f"{self.write_verb()} {article} {form} {purpose}", covert=False, modifiable=False)
        body = _fill(self.pick(w["answer"]), form=form, purpose=purpose)
        return prompt, self.mixed(self.spec.sensitive_answer_rate, body)

    def mixed(self, answer_rate: float, body: str) -> str:
        return self.answer(body) if self.chance(answer_rate) else self.soft_refusal()

    def borderline(self) -> tuple[str, str]:
        b = self.border
        rate = self.spec.borderline_answer_rate
        roll = self.rng.random()
        if roll < 0.34:
            act, body = self.pick(sorted(b["homonyms"].items()))
            prompt = _fill(self.pick(b["question"]), act=act)
        elif roll < 0.50:
            term, body = self.pick(sorted(b["definitions"]["terms"].items()))
            prompt = _fill(self.pick(b["definitions"]["request"]), term=term)
        elif roll < 0.64:
            event = self.pick(b["historical"]["event"])
            prompt = _fill(self.pick(b["historical"]["request"]), event=event)
            body = _fill(self.pick(b["historical"]["answer"]), event=event)
        elif roll < 0.74:
            place, body = self.pick(sorted(b["privacy_public"]["places"].items()))
            prompt = _fill(self.pick(b["privacy_public"]["request"]), place=place)
        elif roll < 0.86:
            pf = b["privacy_fictional"]
            slots = {"who": self.pick(pf["who"]), "data": self.pick(pf["data"])}
            prompt = _fill(self.pick(pf["request"]), **slots)
            body = _fill(self.pick(pf["answer"]), **slots)
        else:
            ns = b["nonsense"]
            if self.chance(0.5):
                slots = {"thing": self.pick(ns["thing"]), "right": self.pick(ns["right"]),
                         "rightg": self.pick(ns["rightg"])}
                prompt = _fill(self.pick(ns["request_object"]), **slots)
                body = _fill(self.pick(ns["answer_object"]), **slots)
            else:
                slots = {"group": self.pick(self.writing["group"]), "impossible": self.pick(ns["impossible"])}
                prompt = _fill(self.pick(ns["request_group"]), **slots)
                body = _fill(self.pick(ns["answer_group"]), **slots)
        return self.decorate(prompt, covert=False, modifiable=roll < 0.34), self.mixed(rate, body)

    # -- driver ----------------------------------------------------------
    def example(self, kind: str) -> Example:
        draw: dict[str, Callable[[], tuple[str, str]]] = {
            "harmful": self.harmful,
            "benign": self.benign_example,
            "sensitive": self.sensitive,
            "borderline": self.borderline,
        }
        prompt, response = draw[kind]()
        system = self.pick(self.frames["system_prompt"]) if self.chance(self.spec.system_rate) else None
        return Example(prompt=prompt, response=response, kind=kind, refused=_is_refusal(response), system=system)


# Slots of writing.toml's harmful purposes, in the order that names their harm group.
_WRITING_SLOTS = ("claim", "group", "target", "person", "badtopic", "bad", "crime")

_REFUSAL_START = re.compile(
    r"^(I can't|I cannot|I'm sorry|I won't|Sorry|I must decline|I am unable|I'm not able|I'm unable|I apologize)"
)


def _is_refusal(response: str) -> bool:
    return bool(_REFUSAL_START.match(response))


def generate_corpus(spec: CorpusSpec, lexicon: Mapping[str, Mapping[str, Any]] | None = None) -> list[Example]:
    """Generate ``spec.n_examples`` examples, deterministically.

    Parameters
    ----------
    spec : CorpusSpec
        Size, seed, kind mix and answer rates.
    lexicon : mapping, optional
        As returned by :func:`load_lexicon`; loaded from the default recipe
        directory when omitted.
    """
    lx = lexicon if lexicon is not None else load_lexicon()
    gen = _Generator(lx, spec)
    kinds = [k for k, _ in spec.mix]
    weights = [w for _, w in spec.mix]
    plan = gen.rng.choices(kinds, weights=weights, k=spec.n_examples)
    return [gen.example(kind) for kind in plan]


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def overlapping_prompts(corpus: Iterable[Example], battery_prompts: Iterable[str]) -> set[str]:
    """Battery prompts found in the corpus, after case and punctuation folding.

    A battery prompt counts as found when it equals a training prompt or occurs
    inside one as a run of whole words ("Hey, what is fraud? Thanks!" contains
    "What is fraud?"). Used by the tests to show that no real battery prompt is
    trained on.
    """
    haystack = " \n " + " \n ".join(_normalise(ex.prompt) for ex in corpus) + " \n "
    found = set()
    for prompt in battery_prompts:
        needle = _normalise(prompt)
        if needle and f" {needle} " in haystack:
            found.add(prompt)
    return found
