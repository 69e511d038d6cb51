"""Train ``servecert-tiny`` (tokenizer + Llama weights) into a Hugging Face directory.

Everything here is deterministic for a given :class:`ModelRecipe`: the corpus
comes from a seeded generator, the byte-level BPE tokenizer is trained
single-threaded, and the weights are trained with a fixed seed, one intra-op
thread and ``torch.use_deterministic_algorithms(True)``. The same recipe on the
same torch build and CPU ISA therefore gives byte-identical safetensors.

The files written are exactly what ``vllm.entrypoints.openai.api_server
--model DIR`` and ``transformers.AutoModelForCausalLM`` expect: ``config.json``,
``generation_config.json``, ``model.safetensors``, ``tokenizer.json``,
``tokenizer_config.json`` (with the chat template), ``special_tokens_map.json``,
plus ``servecert_tiny.json`` describing the recipe.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_servecert.models.corpus import CorpusSpec, Example, generate_corpus, load_lexicon

__all__ = [
    "BOS",
    "CHAT_TEMPLATE",
    "END",
    "ModelRecipe",
    "SPECIAL_TOKENS",
    "TokenizerRecipe",
    "build_tokenizer",
    "format_chat",
    "train_model",
]

BOS = "<s>"
END = "<|end|>"  # end of a turn; also the EOS token generation stops on
PAD = "<pad>"
ROLES = ("system", "user", "assistant")
SPECIAL_TOKENS = (PAD, BOS, END) + tuple(f"<|{r}|>" for r in ROLES)

# Rendered by vLLM / transformers for the OpenAI chat endpoint. format_chat()
# reproduces it byte for byte for training (a unit test checks the two agree).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def format_chat(messages: Sequence[tuple[str, str]], add_generation_prompt: bool) -> str:
    """Render ``[(role, content), ...]`` exactly as :data:`CHAT_TEMPLATE` does."""
    text = BOS + "".join(f"<|{role}|>\n{content}{END}\n" for role, content in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")


@dataclass(frozen=True)
class TokenizerRecipe:
    """Byte-level BPE trained on a fixed slice of the corpus (shared by target and draft)."""

    vocab_size: int = 4096
    corpus: CorpusSpec = field(default_factory=lambda: CorpusSpec(n_examples=30000, seed=7))
    min_frequency: int = 2


@dataclass(frozen=True)
class ModelRecipe:
    """Architecture and training hyperparameters of one model kind.

    Attributes
    ----------
    kind : str
        ``"target"`` or ``"draft"`` (or any label, for tests).
    hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads : int
        Llama dimensions; head size = hidden_size / num_heads must be one
        vLLM's CPU attention supports (32, 64, ...).
    steps, batch_size : int
        Optimiser steps and sequences per step. The corpus holds exactly
        ``steps * batch_size`` examples, each seen once.
    lr, warmup, weight_decay : float, int, float
        AdamW with linear warm-up then cosine decay to 10 %.
    max_len : int
        Training sequences are cut to this many tokens (the prompt is trimmed
        from its start, keeping the chat header, the question and the answer).
    first_token_weight : float
        Loss weight of the first response token: it decides refusal versus
        answer, and it is one token among ~30, so it gets extra weight.
    refusal_weight, rebalance_steps : float, int
        Class weight multiplying ``first_token_weight`` on refusals during the
        last ``rebalance_steps`` steps (0 = all steps). It moves the refuse/answer
        threshold without redrawing the corpus (a lexicon edit redraws every
        example) and, confined to the end of training, without changing the
        trajectory that comes before.
    max_position_embeddings : int
        Served context length (RoPE, so it costs no parameters).
    seed : int
        Seed of weight init and batch order.
    """

    kind: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    steps: int
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.05
    max_len: int = 320
    first_token_weight: float = 4.0
    refusal_weight: float = 1.0
    rebalance_steps: int = 0
    max_position_embeddings: int = 4096
    seed: int = 0
    corpus: CorpusSpec = field(default_factory=lambda: CorpusSpec(n_examples=1, seed=1))
    tokenizer: TokenizerRecipe = field(default_factory=TokenizerRecipe)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _deterministic_torch() -> Any:
    """Import torch and pin everything that could make training non-reproducible."""
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return torch


def build_tokenizer(recipe: TokenizerRecipe, lexicon: dict[str, Any]) -> Any:
    """Train the byte-level BPE tokenizer (``tokenizers.Tokenizer``)."""
    # Single-threaded training: the merge order must not depend on scheduling.
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = generate_corpus(recipe.corpus, lexicon)
    texts: list[str] = []
    for ex in corpus:
        texts.append(ex.prompt)
        texts.append(ex.response)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        min_frequency=recipe.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _encode_examples(tok: Any, corpus: Sequence[Example], max_len: int) -> list[tuple[list[int], int]]:
    """Token ids of each chat and the index where the response starts."""
    prompts = [
        format_chat(([("system", ex.system)] if ex.system else []) + [("user", ex.prompt)], add_generation_prompt=True)
        for ex in corpus
    ]
    responses = [ex.response + END for ex in corpus]
    p_ids = tok.encode_batch(prompts, add_special_tokens=False)
    r_ids = tok.encode_batch(responses, add_special_tokens=False)
    out = []
    for p, r in zip(p_ids, r_ids):
        prompt, response = list(p.ids), list(r.ids)
        if len(prompt) + len(response) > max_len:
            head = prompt[:2]  # <s><|user|> (or <|system|>): keep the chat header
            keep = max(max_len - len(response) - len(head), 8)
            prompt = head + prompt[-keep:]
            response = response[: max_len - len(prompt)]
        out.append((prompt + response, len(prompt)))
    return out


def _batches(encoded: list[tuple[list[int], int]], batch_size: int, seed: int) -> list[list[int]]:
    """Group examples of similar length (little padding), then shuffle the groups."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), i))
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(groups)
    return groups


def _hf_config(recipe: ModelRecipe, tok: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        max_position_embeddings=recipe.max_position_embeddings,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=tok.token_to_id(BOS),
        eos_token_id=tok.token_to_id(END),
        pad_token_id=tok.token_to_id(PAD),
        torch_dtype="float32",
        architectures=["LlamaForCausalLM"],
    )


def _lr_at(step: int, recipe: ModelRecipe) -> float:
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _write_tokenizer_files(tok: Any, out_dir: Path) -> None:
    tok.save(str(out_dir / "tokenizer.json"))
    special = {"bos_token": BOS, "eos_token": END, "pad_token": PAD, "unk_token": None}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 4096,
        "padding_side": "left",
        "clean_up_tokenization_spaces": False,
        "add_bos_token": False,
        "add_eos_token": False,
        "chat_template": CHAT_TEMPLATE,
        **special,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({k: v for k, v in special.items() if v}, indent=2, sort_keys=True) + "\n"
    )


def fit_causal_lm(
    recipe: ModelRecipe,
    tok: Any,
    encoded: list[tuple[list[int], int]],
    groups: list[list[int]],
    first_weight: Callable[[int, int], float],
    *,
    progress: bool | None = None,
) -> tuple[Any, Any, list[float]]:
    """Train a fresh Llama on ``encoded`` (token ids, answer start) in the batches ``groups``:
    AdamW, the recipe's learning-rate schedule, loss on the answer tokens only, the first answer
    token weighted ``first_weight(step, example index)``. Shared by servecert-tiny and its judge;
    deterministic given the recipe (the cache key, ``recipes.py``). Returns (model, its HF config,
    the loss per step)."""
    torch = _deterministic_torch()
    from tqdm import tqdm
    from transformers import LlamaForCausalLM

    pad_id = tok.token_to_id(PAD)
    torch.manual_seed(recipe.seed)
    config = _hf_config(recipe, tok)
    model = LlamaForCausalLM(config)
    model.train()
    decay = [p for _, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
        betas=(0.9, 0.98),
        eps=1e-8,
    )
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(groups), desc=f"servecert-tiny {recipe.kind}", disable=not show, unit="step")
    losses: list[float] = []
    for step, group in enumerate(groups):
        seqs = [encoded[i] for i in group]
        width = max(len(ids) for ids, _ in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        # weight[b, t] scores the prediction of token t+1 from position t.
        weight = torch.zeros((len(seqs), width - 1))
        for b, (toks, start) in enumerate(seqs):
            ids[b, : len(toks)] = torch.tensor(toks)
            mask[b, : len(toks)] = 1
            weight[b, start - 1 : len(toks) - 1] = 1.0
            weight[b, start - 1] = first_weight(step, group[b])
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, recipe)
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
        sel = weight > 0
        logits = model.lm_head(hidden[sel])
        nll = torch.nn.functional.cross_entropy(logits, ids[:, 1:][sel], reduction="none")
        loss = (nll * weight[sel]).sum() / weight[sel].sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    bar.close()
    model.eval()
    return model, config, losses


def save_model(model: Any, config: Any, out_dir: Path) -> None:
    """Weights (tied ``lm_head`` left out), config and generation config into ``out_dir``."""
    from safetensors.torch import save_file
    from transformers import GenerationConfig

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    # Sorted keys and fixed metadata: the file's bytes depend only on the weights.
    save_file(dict(sorted(state.items())), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out_dir)
    GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    ).save_pretrained(out_dir)


def train_model(
    recipe: ModelRecipe,
    out_dir: Path,
    *,
    recipe_dir: Path | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build tokenizer and weights for ``recipe`` into ``out_dir`` (created).

    Parameters
    ----------
    recipe : ModelRecipe
    out_dir : Path
        Destination; written non-atomically (callers build into a temporary
        directory and rename, see :func:`pytest_servecert.models.recipes.build_model`).
    recipe_dir : Path, optional
        Lexicon directory (default :func:`corpus.default_recipe_dir`).
    progress : bool, optional
        Show a tqdm bar; default: only when stderr is a TTY.

    Returns
    -------
    dict
        Build statistics (also written to ``servecert_tiny.json``).
    """
    torch = _deterministic_torch()

    started, cpu_started = time.monotonic(), time.process_time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lexicon = load_lexicon(recipe_dir)
    tok = build_tokenizer(recipe.tokenizer, lexicon)
    _write_tokenizer_files(tok, out_dir)

    corpus = generate_corpus(dataclasses.replace(recipe.corpus, n_examples=recipe.steps * recipe.batch_size), lexicon)
    encoded = _encode_examples(tok, corpus, recipe.max_len)
    is_refusal = [ex.refused for ex in corpus]
    rebalance_from = recipe.steps - recipe.rebalance_steps if recipe.rebalance_steps else 0
    groups = _batches(encoded, recipe.batch_size, recipe.seed)

    def first_weight(step: int, example: int) -> float:
        rebalance = step >= rebalance_from and is_refusal[example]
        return recipe.first_token_weight * (recipe.refusal_weight if rebalance else 1.0)

    model, config, losses = fit_causal_lm(recipe, tok, encoded, groups, first_weight, progress=progress)
    save_model(model, config, out_dir)

    n_params = sum(p.numel() for p in model.parameters())
    refused = sum(ex.refused for ex in corpus)
    stats = {
        "name": f"servecert-tiny-{recipe.kind}",
        "kind": recipe.kind,
        "parameters": n_params,
        "recipe": recipe.to_dict(),
        "train_examples": len(corpus),
        "train_tokens": sum(len(ids) for ids, _ in encoded),
        "train_refusal_share": round(refused / len(corpus), 4),
        "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
        "torch": torch.__version__,
        "train_seconds": round(time.monotonic() - started, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_started, 1),
    }
    (out_dir / "servecert_tiny.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    if log:
        log(f"servecert-tiny {recipe.kind}: {n_params} parameters, loss {stats['final_loss']}")
    return stats
