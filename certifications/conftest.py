"""Parametrise the certification suite from the config: one test per candidate, per cell.

Ids are known at collection time from the config alone (arms × contexts × batteries); the
measurement itself runs once, lazily, in the session fixture ``servecert_run``.
"""

from __future__ import annotations

import pytest

from pytest_servecert.design import contexts
from pytest_servecert.plugin import load_config_or_exit


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not {"candidate", "cell"} & set(metafunc.fixturenames):
        return
    config = load_config_or_exit(metafunc.config)
    candidates = [arm.name for arm in config.candidates]
    if "cell" in metafunc.fixturenames:
        cells = [
            (candidate, f"{battery}/{config.model.name}/{ctx.label}")
            for candidate in candidates
            for ctx in contexts(config.design)
            for battery in config.batteries.use
        ]
        metafunc.parametrize(("candidate", "cell"), cells, ids=[f"{c}:{cell}" for c, cell in cells])
    else:
        metafunc.parametrize("candidate", candidates)
