"""pytest hooks for pytest-servecert: options, markers, fixtures, ladder. Glue only.

https://docs.pytest.org/en/latest/reference/reference.html#hooks
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from . import hookspec
from .claims.model import Layer
from .session import USER_PROPERTY, CertSession, result_from_dict

SESSION_KEY = pytest.StashKey[CertSession]()

LAYER_MARKERS = {
    Layer.JUDGE_VALIDITY: "judge validity: judge cohort agreement (JTP κ gate)",
    Layer.BEHAVIOURAL_SCREENS: "behavioural screens: TAIS, RTSI, no mechanistic gate",
    Layer.STACK_REPRODUCIBILITY: "stack reproducibility: compile-latency CRI across stacks",
    Layer.SCALE: "scale validity: model inside the certified parameter band",
    Layer.SERVING_STATE: "serving-state validity: baseline vs candidate across the serving design",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("servecert", "serving-state safety certification")
    group.addoption(
        "--servecert-config",
        dest="servecert_config",
        default=None,
        metavar="PATH",
        help="certification config (default: servecert.toml in the rootdir)",
    )
    group.addoption(
        "--servecert-report-dir",
        dest="servecert_report_dir",
        default=None,
        metavar="DIR",
        help="where certificates and HTML reports are written (default: the config's "
        "report_dir, else reports/ in the rootdir)",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    for layer, description in LAYER_MARKERS.items():
        config.addinivalue_line("markers", f"{layer.marker}: protocol layer {int(layer)}, {description}")
    session = CertSession()
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(_ClaimCollector(session), "servecert-claim-collector")


def config_path(config: pytest.Config) -> Path:
    """The certification config path: the option, else ``servecert.toml`` in the rootdir."""
    option = config.getoption("servecert_config")
    return Path(option) if option else Path(config.rootpath) / "servecert.toml"


@pytest.fixture(scope="session")
def servecert_session(pytestconfig: pytest.Config) -> CertSession:
    """The run's collected claim results (controller-side view; per worker under xdist)."""
    return pytestconfig.stash[SESSION_KEY]


class _ClaimCollector:
    """Collects claim results from test reports; they ride on ``user_properties`` so they
    reach the controller under pytest-xdist."""

    def __init__(self, session: CertSession) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                self.session.add(result_from_dict(json.loads(value)))


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_terminal_summary(
    terminalreporter: Any, exitstatus: int, config: pytest.Config
) -> None:
    """Print the claim ladder, grouped by layer."""
    if _is_xdist_worker(config):
        return  # the controller prints the ladder once
    session = config.stash[SESSION_KEY]
    if not session.results:
        return
    from .claims.ladder import ClaimLadder

    ladder = ClaimLadder.from_results(session.ordered())
    color = config.get_terminal_writer().hasmarkup
    terminalreporter.write_sep("-", "servecert claim ladder")
    for line in ladder.lines(color=color):
        terminalreporter.write_line(line)
