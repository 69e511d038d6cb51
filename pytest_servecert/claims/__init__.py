"""Claims: the catalogue of certification statements, their verdict rules and the ladder.

Pure (stdlib + the pure ``stats`` core). Data flows in as :class:`CellTable` s and statistics
results, and out as :class:`ClaimResult` s:

* :mod:`.model`     Layer, Tier, Verdict, Claim, ClaimResult
* :mod:`.cells`     CellTable (one McNemar table per battery × model × context), NoiseFloor
* :mod:`.catalogue` every claim as data, with remedies
* :mod:`.scope`     what a set of cells covers, and what NOT RUN cells subtract
* :mod:`.layer2`    the behavioural screens (TAIS, RTSI)
* :mod:`.layer5`    the serving-state rules and the licensable sentence
* :mod:`.rules`     layers 1, 3, 4, the layer-2 config lint and the inheritance gates
* :mod:`.ladder`    ClaimLadder

The rule modules import ``stats`` (numpy/scipy/statsmodels).
"""

from __future__ import annotations

import importlib
from typing import Any

# Every name loads on first use: the plugin imports ``claims.model`` at pytest start-up and
# should not pay for the catalogue, the ladder or (through the rules) numpy and scipy.
_LAZY = {
    "Claim": "model",
    "ClaimResult": "model",
    "Layer": "model",
    "Tier": "model",
    "Verdict": "model",
    "CellStatus": "cells",
    "CellTable": "cells",
    "NoiseFloor": "cells",
    "CATALOGUE": "catalogue",
    "claim": "catalogue",
    "remedy": "catalogue",
    "ClaimLadder": "ladder",
    "Layer5Options": "layer5",
    "Layer5Results": "layer5",
    "evaluate_layer5": "layer5",
    "licensable_sentence": "layer5",
    "apply_gates": "rules",
    "judge_validity": "rules",
    "integrity_anchor": "rules",
    "Layer2Options": "layer2",
    "ScreenPair": "layer2",
    "evaluate_layer2": "layer2",
    "mechanistic_gate_lint": "rules",
    "latency_reproducibility": "rules",
    "scale_band": "rules",
}

__all__ = [
    "CATALOGUE",
    "CellStatus",
    "CellTable",
    "Claim",
    "ClaimLadder",
    "ClaimResult",
    "Layer",
    "Layer2Options",
    "Layer5Options",
    "Layer5Results",
    "NoiseFloor",
    "ScreenPair",
    "Tier",
    "Verdict",
    "apply_gates",
    "claim",
    "evaluate_layer2",
    "evaluate_layer5",
    "integrity_anchor",
    "judge_validity",
    "latency_reproducibility",
    "licensable_sentence",
    "mechanistic_gate_lint",
    "remedy",
    "scale_band",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
