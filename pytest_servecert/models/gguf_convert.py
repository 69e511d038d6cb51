"""Run llama.cpp's ``convert_hf_to_gguf.py`` from an extracted converter directory.

``python -m pytest_servecert.models.gguf_convert CONVERTER_DIR MODEL_DIR [converter args]``

One adaptation, and only where the converter gives up: it names a BPE tokenizer's
pre-tokenizer by hashing how a *known* published vocabulary splits a probe string, so a
tokenizer trained by its owner (servecert-tiny's) is "not recognized". When the tokenizer's
own ``tokenizer.json`` declares exactly GPT-2's split (a byte-level pre-tokenizer with the GPT-2
regex, no prefix space, no normalizer), the pre-tokenizer *is* ``gpt-2`` by construction; any
other unrecognized tokenizer still fails as the converter says.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

__all__ = ["declares_gpt2_split", "main"]


def declares_gpt2_split(model_dir: Path) -> bool:
    """True when ``model_dir/tokenizer.json`` pre-tokenizes exactly like GPT-2."""
    try:
        data = json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pre = data.get("pre_tokenizer") or {}
    return (
        data.get("normalizer") is None
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True) is True
        and pre.get("add_prefix_space", False) is False
    )


def main(argv: list[str]) -> None:
    converter = Path(argv[0])
    script = converter / "convert_hf_to_gguf.py"
    sys.path[:0] = [str(converter), str(converter / "gguf-py")]
    from conversion import TextModel  # type: ignore[import-not-found]

    recognized = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return recognized(self, tokenizer)
        except NotImplementedError:
            if declares_gpt2_split(self.dir_model):
                return "gpt-2"
            raise

    TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [str(script), *argv[1:]]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
