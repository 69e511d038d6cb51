"""The lines printed under the claim ladder: the licensable sentences, the envelope, the files.

The sentences come from the run (``claims.layer5.licensable_sentence``, seed 000 SS18 form:
what is certified, over which axes, with which footnote, which axes are deferred); the
envelope line is the layer-4 scale claim, because a sentence about a model outside the
certified scale band says nothing about production models.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..claims.catalogue import SCALE_BAND
from ..claims.model import ClaimResult

__all__ = ["RUN_INFO_PROPERTY", "run_lines"]

#: user_properties key carrying a worker's run info to the controller under pytest-xdist.
RUN_INFO_PROPERTY = "servecert_run"


def _wrapped(label: str, text: str, width: int) -> Iterator[str]:
    lines = textwrap.wrap(text, width=max(width, 40), initial_indent=label,
                          subsequent_indent=" " * 4, break_on_hyphens=False)
    yield from lines or [label]


def run_lines(run_info: Mapping[str, Any], results: Sequence[ClaimResult], width: int = 100) -> Iterator[str]:
    """Licensable sentence per candidate, the scale envelope, and where the reports are."""
    for candidate, sentence in (run_info.get("licensable") or {}).items():
        yield from _wrapped(f"licensable ({candidate}): ", sentence, width)
    scale = next((r for r in results if r.claim.id == SCALE_BAND.id and not r.subject), None)
    if scale is not None and not scale.verdict.passed:
        yield from _wrapped("envelope: ", f"{scale.verdict.value}: {scale.headline}. {scale.reason}".strip(), width)
    for key, label in (("certificate", "certificate"), ("html", "HTML report"), ("html_error", "HTML report")):
        if run_info.get(key):
            yield f"{label}: {run_info[key]}"
