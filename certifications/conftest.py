"""Parametrise the certification suite from the config: one test per candidate, per cell.

Ids are known at collection time from the config alone (arms × contexts × batteries); the
measurement itself runs once, lazily, in the session fixture ``servecert_run``.
"""

from __future__ import annotations

import pytest

from pytest_servecert.design import contexts
from pytest_servecert.plugin import load_config_or_exit


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tais_subject" in metafunc.fixturenames:
        # one TAIS subject per speculative candidate and temperature (greedy first)
        from pytest_servecert.claims.layer2 import tais_subjects
        from pytest_servecert.screens import speculative_candidates

        config = load_config_or_exit(metafunc.config)
        temperatures = [ctx.temperature for ctx in contexts(config.design)]
        subjects = [subject for candidate in speculative_candidates(config)
                    for subject in tais_subjects(candidate, temperatures)]
        metafunc.parametrize("tais_subject", subjects)
        return
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
