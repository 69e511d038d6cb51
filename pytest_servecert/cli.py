"""The ``servecert`` console script.

Subcommands are argparse subparsers registered by small ``_add_*`` functions,
so new command groups (``servecert report ...``) plug in beside ``model``::

    servecert model build [--kind target|draft|judge|all] [--cache-dir DIR] [--force]
    servecert model info DIR
    servecert report CERT.json [-o OUT.html]
    servecert plan [--servecert-config F] [--mde-pp 3] [--power 0.8]
    servecert check [CONFIG]
    servecert calibrate [--config servecert.toml] [--store PATH] [--judge NAME] [--json OUT.json]
    servecert canary [history [--html PATH]] [--servecert-config F] [--reference RUN] [--gate strict|report]

``model build`` prints the model directory as its last line (with
``--kind all``: the judge's, the draft's, then the target's), so scripts can do
``MODEL=$(servecert model build | tail -n1)``. User errors print one line on
stderr and exit 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pytest_servecert.errors import ServecertError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


class UsageError(ServecertError):
    """A user mistake: reported as one line, exit status 2."""


def _build_one(kind: str, cache_dir: Path | None, force: bool) -> str:
    from pytest_servecert.models import build_model, model_dir

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    return str(build_model(kind, model_dir(kind, cache_dir), force=force, log=log))


def _model_build(args: argparse.Namespace) -> int:
    kinds = ["judge", "draft", "target"] if args.kind == "all" else [args.kind]
    if len(kinds) == 1:
        paths = [_build_one(kinds[0], args.cache_dir, args.force)]
    else:
        # Each build trains single-threaded (bit-reproducibility), so kinds build side by
        # side, one per core (the small judge and draft share one, then the target).
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            # The longest build (the target) starts first.
            futures = {k: pool.submit(_build_one, k, args.cache_dir, args.force)
                       for k in sorted(kinds, key=lambda k: k != "target")}
            paths = [futures[k].result() for k in kinds]
    for path in paths:
        print(path)
    return 0


def _model_info(args: argparse.Namespace) -> int:
    from pytest_servecert.models import model_info

    try:
        info = model_info(args.path)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(info, indent=2, sort_keys=True))
    return 0


def _add_model_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    model = sub.add_parser("model", help="build or inspect the embedded servecert-tiny model")
    msub = model.add_subparsers(dest="model_command", required=True, metavar="COMMAND")

    build = msub.add_parser("build", help="build (or reuse) servecert-tiny; prints the model directory last")
    build.add_argument("--kind", choices=("target", "draft", "judge", "all"), default="target")
    build.add_argument("--cache-dir", type=Path, default=None,
                       help="cache root (default: SERVECERT_CACHE_DIR/tiny or the user cache)")
    build.add_argument("--force", action="store_true", help="rebuild even if a cached build exists")
    build.set_defaults(handler=_model_build)

    info = msub.add_parser("info", help="print a built model's parameter count, weights sha256 and recipe hash")
    info.add_argument("path", type=Path)
    info.set_defaults(handler=_model_info)


def _report(args: argparse.Namespace) -> int:
    from pytest_servecert.report.certificate import load_certificate

    out = args.output or args.certificate.with_suffix(".html")
    # never overwrite the input (``-o CERT.json`` once replaced the certificate with HTML)
    if out.resolve() == args.certificate.resolve() or out.suffix.lower() == ".json":
        raise UsageError(f"-o {out}: would overwrite a certificate; expected an .html path")
    if out.is_dir():
        raise UsageError(f"-o {out}: is a directory; expected an .html file path")
    certificate = load_certificate(args.certificate)  # CertificateError: one line (main)
    try:
        from pytest_servecert.report.html import write_html
    except ImportError as exc:
        raise UsageError(f"{exc.name} is missing: pip install 'pytest-servecert[report]'") from None
    try:
        written = write_html(certificate, out)
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot write it ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - schema-valid but incomplete: one line, no traceback
        first = (str(exc).splitlines() or [""])[0][:200]
        raise UsageError(
            f"{args.certificate}: cannot render it ({type(exc).__name__}: {first}); is it a "
            "complete certificate written by pytest-servecert?"
        ) from None
    print(written)
    return 0


def _add_report_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("report", help="render the HTML report of a certificate")
    report.add_argument("certificate", type=Path, metavar="CERT.json")
    report.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.html",
                        help="where to write the page (default: beside the certificate, .html)")
    report.set_defaults(handler=_report)


def _plan(args: argparse.Namespace) -> int:
    import math

    from pytest_servecert.config import ConfigError, load_config
    from pytest_servecert.planner import plan, plan_lines

    for name, value, low, high in (("--mde-pp", args.mde_pp, 0.0, 100.0),
                                   ("--power", args.power, 0.0, 1.0)):
        if value is not None and not (math.isfinite(value) and low < value < high):
            raise UsageError(f"{name} {value}: expected a number in ({low:g}, {high:g})")
    try:
        config = load_config(args.servecert_config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    mde = args.mde_pp if args.mde_pp is not None else config.claims.margin_pp
    power = args.power if args.power is not None else config.claims.power
    print("\n".join(plan_lines(config, plan(config, mde, power), mde, power)))
    return 0


def _add_plan_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("plan", help="prompts per cell, requests, boots and time a config "
                         "needs, before anything boots")
    cmd.add_argument("--servecert-config", type=Path, default=Path("servecert.toml"),
                     metavar="F", help="the config (default: servecert.toml)")
    cmd.add_argument("--mde-pp", type=float, default=None,
                     help="effect to detect, percentage points (default: [claims] margin_pp)")
    cmd.add_argument("--power", type=float, default=None,
                     help="power to detect it with (default: [claims] power, 0.8)")
    cmd.set_defaults(handler=_plan)



#: Exit status of a refused config: pytest's usage error, as under ``pytest certifications``.
CONFIG_ERROR_EXIT = 4


def _check(args: argparse.Namespace) -> int:
    from pytest_servecert.config import ConfigError, check_config

    try:
        config = check_config(args.config)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"servecert: {line}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    print(f"{config.path}: ok ({len(config.arms)} arms, {len(config.batteries.use)} batteries, "
          f"{len(config.judges.cohort)} judges; gate {config.gate.policy}: "
          f"{', '.join(config.gate.require) or 'nothing required'})")
    return 0


def _add_check_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    check = sub.add_parser(
        "check", help="validate a certification config (every key, judge, battery, engine flag, "
        "path) without starting anything; exit 4 with one line per problem")
    check.add_argument("config", type=Path, nargs="?", default=Path("servecert.toml"), metavar="CONFIG")
    check.set_defaults(handler=_check)


def _fmt_kappa(row: dict) -> str:
    if row["kappa"] is None:
        return "n/a"
    if row["degenerate"]:
        return f"{row['kappa']:.3f} (degenerate)"
    return f"{row['kappa']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def _calibrate(args: argparse.Namespace) -> int:
    """κ vs human of every cohort judge on the configured corpus (labels cached in the store)."""
    from pytest_servecert.calibration import CalibrationError
    from pytest_servecert.claims.calibration import (
        cohort_vs_human,
        human_agreement,
        pair_kappa_on_corpus,
    )
    from pytest_servecert.config import ConfigError, load_config
    from pytest_servecert.judge_calibration import (
        check_corpus_routing,
        configured_corpus,
        corpus_labels,
        label_corpus,
    )
    from pytest_servecert.judges import Cohort, JudgeError, build_judge
    from pytest_servecert.store import Store

    try:
        config = load_config(args.config)
        corpus = configured_corpus(config.judges.calibration)
    except (ConfigError, CalibrationError) as exc:
        raise UsageError(str(exc)) from None
    if corpus is None:
        raise UsageError(f'{args.config}: [judges.calibration] corpus = "none": nothing to calibrate against')
    judges = [build_judge(j) for j in config.judges.cohort]
    names = args.judge or [j.spec.name for j in judges]
    judges = [j for j in judges if j.spec.name in names]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    got: dict[str, dict[str, str]] = {}
    seconds: dict[str, float] = {}
    store = Store(args.store or config.store_path)
    try:
        check_corpus_routing(judges, corpus, config.judges.allow_external_judges)
        for judge in judges:
            try:
                got[judge.spec.name], seconds[judge.spec.name] = label_corpus(judge, corpus, store, log)
            finally:
                if hasattr(judge, "close"):
                    judge.close()
    except JudgeError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    labels = corpus_labels(corpus, got)
    rows = [h.to_dict() for h in human_agreement(labels.human, labels.labels, n_boot=args.n_boot)]
    voters = [v for v in Cohort.from_specs([j.spec for j in judges], regex_role=config.judges.regex_role).voters
              if v in got]
    if len(voters) > 1:
        rows += [h.to_dict() for h in cohort_vs_human(labels.human, labels.labels, voters,
                                                      name="cohort majority (all voters)", n_boot=args.n_boot)]
    print(f"corpus {corpus.id} (sha256 {corpus.sha256[:16]}, {len(corpus)} answers; partial refusals count as "
          "refusals; a judge trained on part of the corpus is scored on cross-validated labels)")
    print("| judge | source | n (unjudgeable) | agreement | κ vs human [95% CI] | "
          "confusion [[hr→r, hr→c], [hc→r, hc→c]] |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['judge']} | {r['source']} | {r['n']} ({r['n_unjudgeable']}) | {r['agreement']:.3f} | "
              f"{_fmt_kappa(r)} | {r['confusion']} |")
    names = list(got)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            k = pair_kappa_on_corpus(labels.labels, a, b, n_boot=args.n_boot)
            if k is not None:
                print(f"pair {a} × {b} on the corpus: κ {k.kappa:.3f} [{k.ci_low:.3f}, {k.ci_high:.3f}] (n={k.n})")
    for name, secs in seconds.items():
        print(f"judging time {name}: {secs:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"corpus": corpus.id, "sha256": corpus.sha256, "rows": rows,
                                               "seconds": seconds}, indent=2, allow_nan=True))
    return 0


def _add_calibrate_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cal = sub.add_parser("calibrate", help="κ vs human of every cohort judge on the calibration corpus")
    cal.add_argument("--config", type=Path, default=Path("servecert.toml"))
    cal.add_argument("--store", type=Path, default=None, help="label store (default: the config's store path)")
    cal.add_argument("--judge", action="append", default=None, help="only this cohort judge (repeatable)")
    cal.add_argument("--n-boot", type=int, default=2000)
    cal.add_argument("--json", type=Path, default=None, metavar="OUT.json")
    cal.set_defaults(handler=_calibrate)


def _canary(args: argparse.Namespace) -> int:
    from pytest_servecert.config import ConfigError, load_config
    from pytest_servecert.run.canary import canary_lines, exit_status, history_lines, run_canary
    from pytest_servecert.store import Store

    try:
        config = load_config(args.servecert_config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.action == "history":
        if not config.store_path.exists():
            raise UsageError(f"{config.store_path}: no store yet; run `servecert canary` first")
        with Store(config.store_path) as store:
            records = store.canary_runs()
        print("\n".join(history_lines(records)))
        if args.html is not None:
            try:
                from pytest_servecert.report.canary_html import write_canary_html
            except ModuleNotFoundError as exc:
                raise UsageError(f"--html needs {exc.name}: pip install 'pytest-servecert[report]'") from None
            path = write_canary_html(records, args.html, title=str(config.model.name))
            print(f"servecert canary: drift plot and series written to {path}", file=sys.stderr)
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    run = run_canary(config, reference=args.reference, progress=log, policy=args.gate)
    print("\n".join(canary_lines(run, gate_option="--gate")))
    return exit_status(run)


def _add_canary_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("canary", help="re-ask the deployed candidate a pinned set of a certified run's prompts "
                         "(alarms: harmful core, over-refusal, stack drift, judge κ); 'history' prints the series")
    cmd.add_argument("action", nargs="?", choices=("run", "history"), default="run")
    cmd.add_argument("--servecert-config", type=Path, default=Path("servecert.toml"), metavar="F",
                     help="the config (default: servecert.toml)")
    cmd.add_argument("--reference", default=None, metavar="RUN",
                     help='the certified run: a run id, "latest" or "certified" (default: [canary] reference)')
    cmd.add_argument("--gate", choices=("strict", "report"), default=None,
                     help="strict: exit 1 unless every required canary claim is CERTIFIED/MONITOR ([gate] require's "
                     "canary.* entries; none: harmful_core, over_refusal, stack_drift); report: exit 1 only on an "
                     "alarm (default: [gate] policy)")
    cmd.add_argument("--html", type=Path, default=None, metavar="PATH",
                     help="history: also write the series as an HTML page with the drift plot")
    cmd.set_defaults(handler=_canary)


# Command groups, in the order ``--help`` lists them; append to extend the CLI.
COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [  # type: ignore[type-arg]
    _add_model_commands, _add_report_commands, _add_check_commands, _add_plan_commands,
    _add_calibrate_commands, _add_canary_commands,
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``servecert`` argument parser."""
    parser = argparse.ArgumentParser(prog="servecert", description="pytest-servecert command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMAND_GROUPS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``servecert`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ServecertError as exc:  # UsageError, CertificateError, GGUFError ...: one line, exit 2
        print(f"servecert: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
