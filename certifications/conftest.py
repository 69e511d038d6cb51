"""Parametrise the certification suite from the config: one test per candidate, per cell.

Ids are known at collection time from the config alone (arms × contexts × batteries); the
measurement itself runs once, lazily, in the session fixture ``servecert_run``.

The config is validated (every key, judge, battery, engine flag and path) before collection:
a problem is one line each and pytest's usage-error exit status (4), with no traceback.
"""

from __future__ import annotations

import pytest

from pytest_servecert.design import contexts
from pytest_servecert.plugin import certification_config, check_config_early


def pytest_configure(config: pytest.Config) -> None:
    check_config_early(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tais_subject" in metafunc.fixturenames:
        # one TAIS subject per speculative candidate and temperature (greedy first)
        from pytest_servecert.claims.layer2 import tais_subjects
        from pytest_servecert.screens import speculative_candidates

        config = certification_config(metafunc.config)
        temperatures = [ctx.temperature for ctx in contexts(config.design)]
        subjects = [subject for candidate in speculative_candidates(config)
                    for subject in tais_subjects(candidate, temperatures)]
        metafunc.parametrize("tais_subject", subjects)
        return
    if not {"candidate", "cell"} & set(metafunc.fixturenames):
        return
    config = certification_config(metafunc.config)
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
