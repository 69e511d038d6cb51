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
#: The validated certification config, or the ConfigError that refused it (checked once).
CONFIG_KEY = pytest.StashKey[Any]()
#: True once the session started: a config error found later is a collection error.
STARTED_KEY = pytest.StashKey[bool]()


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
    group.addoption(
        "--servecert-gate",
        dest="servecert_gate",
        default=None,
        choices=("strict", "report"),
        help="release gate: 'strict' (the default; CI) exits non-zero unless every required claim "
        "([gate] require, default every layer-1 and layer-5 claim) is CERTIFIED or MONITOR; "
        "'report' prints the same block and leaves the exit status to the test outcomes",
    )
    group.addoption("--servecert-stack-label", dest="servecert_stack_label", default="",
                    metavar="TEXT",
                    help="a name for this stack point in layer-3 runs (part of its identity)")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    from .session import CertSession

    for layer, description in LAYER_MARKERS.items():
        config.addinivalue_line("markers", f"layer{layer}: protocol layer {layer}, {description}")
    config.addinivalue_line("markers", "canary: production canary, the deployed candidate re-asked a pinned set "
                            "of a certified run's prompts (issue #18; `servecert canary`)")
    session = CertSession()
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(_ClaimCollector(session), "servecert-claim-collector")
    from .latency_stack import BenchmarkStackRecorder

    config.pluginmanager.register(BenchmarkStackRecorder(config), "servecert-benchmark-stack")


def config_path(config: pytest.Config) -> Path:
    """The certification config path: the option, else ``servecert.toml`` in the rootdir."""
    option = config.getoption("servecert_config")
    return Path(option) if option else Path(config.rootpath) / "servecert.toml"


def load_config_or_exit(config: pytest.Config) -> ServecertConfig:
    """The validated certification config; a bad one ends the run with one line per problem,
    no traceback (pytest's usage error). Collection hooks use :func:`certification_config`,
    which reports the same lines as a collection error instead of ``pytest.exit``."""
    from .config import ConfigError

    checked = _checked(config)
    if isinstance(checked, ConfigError):
        pytest.exit(_message(checked), returncode=pytest.ExitCode.USAGE_ERROR)
    return checked


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


GATE_KEY = pytest.StashKey[Any]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The release gate (DESIGN §7): under ``strict`` a required claim that is not CERTIFIED or
    MONITOR makes the session exit non-zero; the verdicts themselves are never changed.

    ``trylast``: syrupy ORs the original status into ``session.exitstatus`` (2 | 4 = 6), so
    the gate sets the final status after it."""
    from .config import ConfigError

    config = session.config
    checked = config.stash.get(CONFIG_KEY, None)
    if isinstance(checked, ConfigError) and exitstatus != pytest.ExitCode.USAGE_ERROR:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR  # found during collection
        return
    if _is_xdist_worker(config):
        return
    results = config.stash[SESSION_KEY].ordered()
    if not results:
        return  # not a certification session (unit tests, layer 3 only, ...)
    from .claims.release_gate import DEFAULT_POLICY, DEFAULT_REQUIRE, decide, require_for

    require, policy = DEFAULT_REQUIRE, DEFAULT_POLICY
    if checked is None and config_path(config).is_file():
        from .config import load_config

        try:
            checked = load_config(config_path(config))
        except ConfigError as exc:
            checked = exc
    if isinstance(checked, ConfigError):
        # fail closed: without a readable [gate] nothing can be certified
        config.stash[GATE_KEY] = [_message(checked)]
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    if checked is not None:
        require, policy = checked.gate.require, checked.gate.policy
    policy = config.getoption("servecert_gate") or policy
    decision = decide(results, require_for(require, results), policy)  # `-m canary`: as `servecert canary`
    config.stash[GATE_KEY] = decision.lines()
    if decision.blocks_exit and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(
    terminalreporter: Any, exitstatus: int, config: pytest.Config
) -> None:
    """Print the claim ladder, grouped by layer, then the release gate's closing block."""
    if _is_xdist_worker(config):
        return  # the controller prints the ladder once
    session = config.stash[SESSION_KEY]
    gate = config.stash.get(GATE_KEY, None)
    if not session.results:
        if gate:
            terminalreporter.write_sep("-", "servecert gate")
            for line in gate:
                terminalreporter.write_line(line)
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
    if gate:
        terminalreporter.write_sep("-", "servecert gate")
        for i, line in enumerate(gate):
            passed = i == 0 and "PASSED" in line and "NOT PASSED" not in line
            terminalreporter.write_line(line, green=passed, red=i == 0 and not passed, bold=i == 0)


def _checked(config: pytest.Config) -> Any:
    """The validated config or the ConfigError that refused it, computed once per process."""
    from .config import ConfigError, check_config, writable_dir_issue

    if CONFIG_KEY not in config.stash:
        try:
            loaded: Any = check_config(config_path(config))
            option = config.getoption("servecert_report_dir")
            if option and (issue := writable_dir_issue(Path(option))):
                raise ConfigError(f"--servecert-report-dir {option!r}: {issue}; expected a writable directory")
        except ConfigError as exc:
            loaded = exc
        config.stash[CONFIG_KEY] = loaded
    return config.stash[CONFIG_KEY]


def _message(exc: Exception) -> str:
    return "\n".join(f"servecert: {line}" for line in str(exc).splitlines())


def check_config_early(config: pytest.Config) -> None:
    """Validate the certification config before collection (``certifications/conftest.py``'s
    ``pytest_configure``): a bad config is a usage error (exit 4), one line per problem."""
    from .config import ConfigError

    if config.stash.get(STARTED_KEY, False):
        return  # loaded during collection: certification_config reports it without a traceback
    checked = _checked(config)
    if isinstance(checked, ConfigError):
        raise pytest.UsageError(_message(checked))


def certification_config(config: pytest.Config) -> ServecertConfig:
    """The validated config for collection hooks (``pytest_generate_tests``); a bad config is a
    collection error of one line per problem, and the session exits with pytest's usage error."""
    from .config import ConfigError

    checked = _checked(config)
    if isinstance(checked, ConfigError):
        raise pytest.Collector.CollectError(_message(checked))
    return checked


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[STARTED_KEY] = True


@pytest.fixture(scope="session")
def servecert_config(pytestconfig: pytest.Config) -> ServecertConfig:
    """The certification config; a bad config ends the run with one line, no traceback."""
    return load_config_or_exit(pytestconfig)


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
def servecert_run(pytestconfig: pytest.Config, servecert_config: ServecertConfig) -> CertificationRun:
    """Run (or resume) the layer-5 certification once per session and write its certificate."""
    from .errors import ServecertError
    from .report.certificate import certificate_dict, write_certificate
    from .runner import certify

    def stack_extra(arm: str, stack: dict[str, Any]) -> None:
        pytestconfig.hook.pytest_servecert_stack_info(config=pytestconfig, arm=arm, stack=stack)

    try:
        run = certify(servecert_config, progress=lambda m: _say(pytestconfig, m), stack_extra=stack_extra)
    except ServecertError as exc:  # bad config or data, judge, store: one line, no traceback
        pytest.exit(f"servecert: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    certificate = certificate_dict(run)
    pytestconfig.hook.pytest_servecert_certificate(config=pytestconfig, certificate=certificate)
    option = pytestconfig.getoption("servecert_report_dir")
    report_dir = Path(option) if option else servecert_config.report_dir
    try:
        path = write_certificate(certificate, report_dir)
    except OSError as exc:  # checked before the run; the disk may still fill up or vanish
        pytest.exit(f"servecert: {report_dir}: cannot write the certificate ({exc.strerror or exc}); "
                    "the answers and labels are in the store: re-run to write it",
                    returncode=pytest.ExitCode.USAGE_ERROR)
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


@pytest.fixture(scope="session")
def servecert_canary(pytestconfig: pytest.Config, servecert_config: ServecertConfig) -> Any:
    """Run one production canary of the config's watched deployment (``pytest -m canary``).

    Only when the marker expression selects it: a certification session (``-m "layer1 or
    layer5"``, or no ``-m``) never samples the deployment as a canary by accident."""
    from .errors import ServecertError
    from .run.canary import CanaryError, canary_lines, run_canary

    if "canary" not in (pytestconfig.getoption("markexpr") or ""):
        pytest.skip("the canary runs only when selected: pytest certifications -m canary")

    def stack_extra(arm: str, stack: dict[str, Any]) -> None:
        pytestconfig.hook.pytest_servecert_stack_info(config=pytestconfig, arm=arm, stack=stack)

    try:
        run = run_canary(servecert_config, progress=lambda m: _say(pytestconfig, m), stack_extra=stack_extra,
                         policy=pytestconfig.getoption("servecert_gate"))
    except CanaryError as exc:  # no reference run: the canary claims are NOT RUN, with the reason
        pytest.skip(f"NOT RUN: {exc}")
    except ServecertError as exc:  # bad config, unreachable store: one line
        pytest.exit(f"servecert: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    for line in canary_lines(run):
        _say(pytestconfig, line)
    return run
