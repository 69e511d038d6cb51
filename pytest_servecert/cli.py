"""The ``servecert`` console script.

Subcommands are argparse subparsers registered by small ``_add_*`` functions,
so new command groups (``servecert report ...``) plug in beside ``model``::

    servecert model build [--kind target|draft|judge|all] [--cache-dir DIR] [--force]
    servecert model info DIR
    servecert report CERT.json [-o OUT.html]

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
            futures = {k: pool.submit(_build_one, k, args.cache_dir, args.force) for k in sorted(kinds, key=lambda k: k != "target")}
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
    build.add_argument("--cache-dir", type=Path, default=None, help="cache root (default: SERVECERT_CACHE_DIR/tiny or the user cache)")
    build.add_argument("--force", action="store_true", help="rebuild even if a cached build exists")
    build.set_defaults(handler=_model_build)

    info = msub.add_parser("info", help="print a built model's parameter count, weights sha256 and recipe hash")
    info.add_argument("path", type=Path)
    info.set_defaults(handler=_model_info)


def _report(args: argparse.Namespace) -> int:
    from pytest_servecert.report.certificate import load_certificate

    try:
        from pytest_servecert.report.html import write_html
    except ImportError as exc:
        raise UsageError(f"{exc.name} is missing: pip install 'pytest-servecert[report]'") from None
    certificate = load_certificate(args.certificate)  # CertificateError: one line (main)
    out = args.output or args.certificate.with_suffix(".html")
    print(write_html(certificate, out))
    return 0


def _add_report_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("report", help="render the HTML report of a certificate")
    report.add_argument("certificate", type=Path, metavar="CERT.json")
    report.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.html",
                        help="where to write the page (default: beside the certificate, .html)")
    report.set_defaults(handler=_report)


# Command groups, in the order ``--help`` lists them; append to extend the CLI.
COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [_add_model_commands, _add_report_commands]  # type: ignore[type-arg]


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
