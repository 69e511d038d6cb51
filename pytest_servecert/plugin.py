"""pytest hooks for pytest-servecert: options, markers, fixtures, ladder. Glue only.

https://docs.pytest.org/en/latest/reference/reference.html#hooks
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import hookspec

if TYPE_CHECKING:
    from .config import ServecertConfig
    from .runner import CertificationRun
    from .session import CertSession

# Plain ints, not claims.Layer: importing the package core here would run it before
# pytest-cov starts and hide its coverage.
LAYER_MARKERS = {
    1: "judge validity: judge cohort agreement (JTP κ gate)",
    2: "behavioural screens: TAIS, RTSI, no mechanistic gate",
    3: "stack reproducibility: compile-latency CRI across stacks",
    4: "scale validity: model inside the certified parameter band",
    5: "serving-state validity: baseline vs candidate across the serving design",
}
SESSION_KEY = pytest.StashKey["CertSession"]()


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
    # layer 3 (CRI): recorded in every saved pytest-benchmark run's stack identity
    group.addoption("--servecert-compile-backend", dest="servecert_compile_backend",
                    default="inductor", metavar="NAME",
                    help="torch.compile backend of the layer-3 compiled path (default: inductor)")
    group.addoption("--servecert-compile-mode", dest="servecert_compile_mode", default="default",
                    metavar="MODE",
                    help="torch.compile mode of the layer-3 compiled path (inductor only; "
                    "default: default)")
    group.addoption("--servecert-stack-label", dest="servecert_stack_label", default="",
                    metavar="TEXT",
                    help="a name for this stack point in layer-3 runs (part of its identity)")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    from .session import CertSession

    for layer, description in LAYER_MARKERS.items():
        config.addinivalue_line("markers", f"layer{layer}: protocol layer {layer}, {description}")
    session = CertSession()
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(_ClaimCollector(session), "servecert-claim-collector")
    from .latency_stack import BenchmarkStackRecorder

    config.pluginmanager.register(BenchmarkStackRecorder(config), "servecert-benchmark-stack")


def config_path(config: pytest.Config) -> Path:
    """The certification config path: the option, else ``servecert.toml`` in the rootdir."""
    option = config.getoption("servecert_config")
    return Path(option) if option else Path(config.rootpath) / "servecert.toml"


@pytest.fixture(scope="session")
def servecert_session(pytestconfig: pytest.Config) -> "CertSession":
    """The run's collected claim results (controller-side view; per worker under xdist)."""
    return pytestconfig.stash[SESSION_KEY]


class _ClaimCollector:
    """Collects claim results from test reports; they ride on ``user_properties`` so they
    reach the controller under pytest-xdist."""

    def __init__(self, session: "CertSession") -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from .report.terminal import RUN_INFO_PROPERTY
        from .session import USER_PROPERTY, result_from_dict

        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                self.session.add(result_from_dict(json.loads(value)))
            elif name == RUN_INFO_PROPERTY:
                self.session.run_info.update(json.loads(value))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        """On an xdist worker, send the run info (sentences, report paths) to the controller
        once, on the first report after the run finished."""
        outcome = yield
        if call.when != "call" or not _is_xdist_worker(item.config):
            return
        info = self.session.run_info
        if info and not info.get("_sent"):
            from .report.terminal import RUN_INFO_PROPERTY

            outcome.get_result().user_properties.append((RUN_INFO_PROPERTY, json.dumps(info)))
            info["_sent"] = True


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
    from .report.terminal import run_lines

    ladder = ClaimLadder.from_results(session.ordered())
    writer = config.get_terminal_writer()
    terminalreporter.write_sep("-", "servecert claim ladder")
    for line in ladder.lines(color=writer.hasmarkup):
        terminalreporter.write_line(line)
    for line in run_lines(session.run_info, ladder.results, width=writer.fullwidth - 1):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def servecert_config(pytestconfig: pytest.Config) -> "ServecertConfig":
    """The certification config; a bad config ends the run with one line, no traceback."""
    from .config import ConfigError, load_config

    try:
        return load_config(config_path(pytestconfig))
    except ConfigError as exc:
        pytest.exit(f"servecert: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def _say(config: pytest.Config, message: str) -> None:
    """Progress lines on the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(message)
            reporter.flush()  # a CI log (a pipe, block-buffered) shows each line as it happens
    else:
        reporter.write_line(message)
        reporter.flush()


@pytest.fixture(scope="session")
def servecert_run(pytestconfig: pytest.Config, servecert_config: "ServecertConfig") -> "CertificationRun":
    """Run (or resume) the layer-5 certification once per session and write its certificate."""
    from .batteries import BatteryError
    from .calibration import CalibrationError
    from .config import ConfigError
    from .judges.base import JudgeError
    from .report.certificate import certificate_dict, write_certificate
    from .runner import certify
    from .store import StoreError

    def stack_extra(arm: str, stack: dict[str, Any]) -> None:
        pytestconfig.hook.pytest_servecert_stack_info(config=pytestconfig, arm=arm, stack=stack)

    try:
        run = certify(servecert_config, progress=lambda m: _say(pytestconfig, m), stack_extra=stack_extra)
    except (ConfigError, BatteryError, CalibrationError, JudgeError, StoreError) as exc:
        pytest.exit(f"servecert: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    certificate = certificate_dict(run)
    pytestconfig.hook.pytest_servecert_certificate(config=pytestconfig, certificate=certificate)
    option = pytestconfig.getoption("servecert_report_dir")
    report_dir = Path(option) if option else servecert_config.report_dir
    path = write_certificate(certificate, report_dir)
    _say(pytestconfig, f"servecert: certificate written to {path}")
    info = pytestconfig.stash[SESSION_KEY].run_info
    info.update(licensable=dict(run.sentences), certificate=str(path))
    try:
        from .report.html import write_report
    except ImportError as exc:  # the report extra (jinja2, matplotlib) is not installed
        info["html_error"] = f"not written ({exc.name} missing: pip install 'pytest-servecert[report]')"
    else:
        try:
            info["html"] = str(write_report(certificate, report_dir))
        except Exception as exc:  # noqa: BLE001 - the certificate stands; `servecert report` re-renders
            first = (str(exc).splitlines() or [""])[0]
            info["html_error"] = f"not written ({type(exc).__name__}: {first})"
            _say(pytestconfig, f"servecert: HTML report {info['html_error']}")
        else:
            _say(pytestconfig, f"servecert: HTML report written to {info['html']}")
    return run
