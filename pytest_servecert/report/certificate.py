"""The versioned certificate: one JSON document per run, validated against a JSON Schema.

Field order is fixed (``schema_version`` first). Changing a field's meaning or removing one bumps
``SCHEMA_VERSION``; the loader refuses versions it does not know, with a clear error.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..claims.cells import CellStatus
from ..session import _plain, result_to_dict
from .evidence import cell_examples, judge_agreement

SCHEMA_VERSION = 1
SCHEMA_FILE = f"certificate.v{SCHEMA_VERSION}.schema.json"


class CertificateError(ValueError):
    """A certificate file cannot be read (one line naming the file and the problem)."""


def schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def _status(results: list[dict[str, Any]]) -> str:
    verdicts = {r["verdict"] for r in results}
    if "FAIL" in verdicts:
        return "FAIL"
    if verdicts & {"NOT RUN", "INCONCLUSIVE", "UNTESTED", "SCAFFOLDED-ONLY"}:
        return "PARTIAL"
    return "CERTIFIED"


def certificate_dict(run: Any) -> dict[str, Any]:
    """Build the certificate for a ``runner.CertificationRun``."""
    config = run.config
    results = [result_to_dict(r) for r in run.results]
    cells = []
    discordant = run.discordant
    for candidate, candidate_cells in run.cells.items():
        for cell in candidate_cells:
            row = {
                "candidate": candidate,
                "battery": cell.battery,
                "model": cell.model,
                "context": cell.context,
                "harmful": cell.harmful,
                "status": cell.status.value,
                "reason": cell.reason,
                "a": cell.a, "b": cell.b, "c": cell.c, "d": cell.d,
                "n": cell.n,
                "unjudgeable": cell.unjudgeable,
                "delta_pp": None if cell.status is CellStatus.NOT_RUN or not cell.n else 100 * (cell.c - cell.b) / cell.n,
                "noise_floor": None if cell.noise_floor is None else {
                    "a": cell.noise_floor.a, "b": cell.noise_floor.b,
                    "c": cell.noise_floor.c, "d": cell.noise_floor.d,
                },
                "examples": _plain(list(cell_examples(
                    discordant.get((candidate, cell.battery, cell.context), ())
                ))),
            }
            cells.append(row)
    arms: dict[str, dict[str, Any]] = {}
    for server in run.servers:
        arm = arms.setdefault(server.arm, {"name": server.arm, "role": server.role, "servers": []})
        arm["servers"].append({
            "settings": _plain(dict(server.settings)),
            "spec_fingerprint": server.spec_fingerprint,
            "stack_fingerprint": server.stack_fingerprint,
            "stack": _plain(dict(server.stack)),
            "status": server.status,
            "reason": server.reason,
            "start_s": server.start_s,
            "requests_sent": server.requests_sent,
        })
    not_run = [
        {"candidate": c["candidate"], "battery": c["battery"], "context": c["context"], "reason": c["reason"]}
        for c in cells if c["status"] == CellStatus.NOT_RUN.value
    ]
    counts = run.counts
    return {
        "schema_version": SCHEMA_VERSION,
        "status": _status(results),
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "spec": {
            "config_path": str(config.path),
            "model": _plain(dict(run.model)),
            "engine": config.engine.name,
            "design": {"kind": config.design.kind, "axes": _plain(dict(config.design.axes)), "contexts": list(run.contexts)},
            "batteries": _plain(list(run.batteries)),
            "judges": _plain(list(run.judges)),
            "sampling": {
                "prompts_per_cell": config.sampling.prompts_per_cell,
                "max_tokens": config.sampling.max_tokens,
                "top_p": config.sampling.top_p,
                "seed": config.sampling.seed,
                "replicates": config.sampling.replicates,
            },
            "claims": {
                "alpha": config.claims.alpha,
                "margin_pp": config.claims.margin_pp,
                "tost_method": config.claims.tost_method,
                "spread_limit_pp": config.claims.spread_limit_pp,
            },
        },
        "arms": list(arms.values()),
        "cells": cells,
        "not_run": not_run,
        "claims": results,
        "licensable": dict(run.sentences),
        "judge_agreement": _plain(list(judge_agreement(run.judge_labels))),
        "counts": {
            "requests_planned": counts.requests_planned,
            "requests_sent": counts.requests_sent,
            "responses_reused": counts.responses_reused,
            "request_errors": counts.request_errors,
            "requests_rejected": counts.requests_rejected,
            "boots": counts.boots,
            "failed_boots": counts.failed_boots,
            "naive_boots": counts.naive_boots,
            "labels_written": counts.labels_written,
        },
        "timings_s": {k: round(v, 3) for k, v in run.timings.items()},
        "machine_info": {"node": platform.node(), "machine": platform.machine(), "python": platform.python_version()},
    }


def validate(certificate: Mapping[str, Any], *, source: str = "certificate") -> None:
    """Check the version, then the schema (jsonschema, when installed)."""
    version = certificate.get("schema_version") if isinstance(certificate, Mapping) else None
    if version != SCHEMA_VERSION:
        found = "no schema_version" if version is None else f"schema_version = {version!r}"
        raise CertificateError(
            f"{source}: {found}; this pytest-servecert reads certificate schema version "
            f"{SCHEMA_VERSION} only (render it with the version that wrote it)"
        )
    try:
        import jsonschema
    except ImportError:  # the report extra is optional; the version check above still runs
        return
    try:
        jsonschema.validate(certificate, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise CertificateError(f"{source}: {where}: {exc.message}") from None


def write_certificate(certificate: Mapping[str, Any], report_dir: Path) -> Path:
    """Validate and write ``certificate`` as ``<report_dir>/certificate-<run>.json`` (+ latest)."""
    validate(certificate)
    report_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(certificate, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path = report_dir / f"certificate-{certificate['run_id'][:12]}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    latest = report_dir / "certificate-latest.json"
    tmp = latest.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, latest)
    return path


def load_certificate(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CertificateError(f"{path}: certificate not found") from None
    except json.JSONDecodeError as exc:
        raise CertificateError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    validate(data, source=str(path))
    return data
