"""The embedded models, built by the project itself from ``fixtures/`` (nothing downloaded).

* :mod:`.recipes`  the built-in recipes, their hashes, the user-cache layout, ``ensure_model``
* :mod:`.corpus`   servecert-tiny's synthetic chat corpus (``fixtures/tiny``)
* :mod:`.train`    tokenizer and weight training of the chat models (target, draft)
* :mod:`.judge`    the embedded refusal judge's corpus and training (``fixtures/judge``)
* :mod:`.gguf`     GGUF conversion of a model directory for llama.cpp (offline, cached)

Serving a built model is :mod:`pytest_servecert.serving`'s job, judging with the embedded
judge :mod:`pytest_servecert.judges.embedded`'s. The judges import this package, never the
reverse (``tests/unit/test_purity.py`` checks it): the judge prompt both sides need lives in
the dependency-free :mod:`pytest_servecert.judge_prompt`.
"""

from __future__ import annotations

from .recipes import (
    KINDS,
    RECIPES,
    build_model,
    cache_root,
    ensure_model,
    model_dir,
    model_info,
    recipe_for,
    recipe_hash,
)

__all__ = [
    "KINDS",
    "RECIPES",
    "build_model",
    "cache_root",
    "ensure_model",
    "model_dir",
    "model_info",
    "recipe_for",
    "recipe_hash",
]
