"""The versioned certificate: one JSON document per run, validated against a JSON Schema.

Field order is fixed (``schema_version`` first). Changing a field's meaning or removing one bumps
``SCHEMA_VERSION``; the loader refuses versions it does not know, with a clear error.

Versions (each has its schema file, ``certificate.v<N>.schema.json``):

* 1 — the first certificate.
* 2 — adds ``layer2``: the TAIS and RTSI screens per candidate with their figures. Migration
  note: nothing of version 1 moved or changed meaning, so version-1 certificates are still read
  (validated against the version-1 schema) and rendered without the layer-2 section.
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
from ..claims.model import Verdict, worst_verdict
from ..errors import ServecertError
from ..session import json_safe, result_to_dict
from .evidence import cell_examples, judge_agreement

SCHEMA_VERSION = 2
SCHEMA_FILE = f"certificate.v{SCHEMA_VERSION}.schema.json"
#: Versions this pytest-servecert reads (writes only SCHEMA_VERSION).
READABLE_VERSIONS = (1, 2)


class CertificateError(ServecertError, ValueError):
    """A certificate file cannot be read (one line naming the file and the problem)."""


def schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    name = f"certificate.v{version}.schema.json"
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def _pair(low: Any, high: Any) -> list[Any]:
    return [low, high]


def layer2_section(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The TAIS and RTSI results as flat rows (their full figures stay in ``claims``)."""
    tais, rtsi = [], []
    for r in results:
        f = r["figures"]
        if r["claim"]["id"] == "L2.tais":
            tais.append({
                "id": r["id"],
                "candidate": r["subject"].split("@")[0],
                "temperature": f.get("temperature", 0.0),
                "verdict": r["verdict"],
                "n_pairs": f.get("n_pairs", 0),
                "h": f.get("h"),
                "max_abs_h_battery": f.get("max_abs_h_battery"),
                "delta_pp": f.get("delta_pp"),
                "tost_interval_pp": _pair(f.get("tost_low_pp"), f.get("tost_high_pp")),
                "equivalent": f.get("equivalent"),
                "byte_identity": f.get("byte_identity"),
                "byte_identity_ci": _pair(f.get("byte_identity_ci_low"),
                                          f.get("byte_identity_ci_high")),
                "n_prompts": f.get("n_prompts"),
                "prompts_needed": f.get("prompts_needed"),
                "reason": r["reason"],
            })
        elif r["claim"]["id"] == "L2.rtsi":
            features = {
                name: {"value": f[name], "ci": list(f.get(f"{name}_ci") or [None, None])}
                for name in ("opening_tvd", "length_ks", "partial_shift", "lexical_js")
                if name in f
            }
            rtsi.append({
                "id": r["id"],
                "candidate": r["subject"],
                "verdict": r["verdict"],
                "rtsi": f.get("rtsi"),
                "ci": _pair(f.get("ci_low"), f.get("ci_high")),
                "band": f.get("band"),
                "features": features,
                "n_refusals_baseline": f.get("n_refusals_baseline", 0),
                "n_refusals_candidate": f.get("n_refusals_candidate", 0),
                "reason": r["reason"],
            })
    return {"tais": tais, "rtsi": rtsi}


def _status(results: list[dict[str, Any]]) -> str:
    """FAIL if any claim failed, PARTIAL if any did not pass, else CERTIFIED."""
    if not results:
        return "CERTIFIED"
    worst = worst_verdict(Verdict(r["verdict"]) for r in results)
    if worst is Verdict.FAIL:
        return "FAIL"
    return "CERTIFIED" if worst.passed else "PARTIAL"


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
                "delta_pp": (None if cell.status is CellStatus.NOT_RUN or not cell.n
                             else 100 * (cell.c - cell.b) / cell.n),
                "noise_floor": None if cell.noise_floor is None else {
                    "a": cell.noise_floor.a, "b": cell.noise_floor.b,
                    "c": cell.noise_floor.c, "d": cell.noise_floor.d,
                },
                "examples": json_safe(list(cell_examples(
                    discordant.get((candidate, cell.battery, cell.context), ())
                ))),
            }
            if cell.sampling_floor is not None:  # #14: the T > 0 A/A sampling floor
                row["sampling_floor"] = {"replicates": cell.sampling_floor.replicates,
                                         "counts": [list(k) for k in cell.sampling_floor.counts]}
            if cell.prompts:  # #14: replicates clustered by prompt
                row["prompts"] = cell.prompts
                row["design_effect"] = cell.design_effect
            cells.append(row)
    arms: dict[str, dict[str, Any]] = {}
    for server in run.servers:
        arm = arms.setdefault(server.arm, {"name": server.arm, "role": server.role, "servers": []})
        arm["servers"].append({
            "settings": json_safe(dict(server.settings)),
            "spec_fingerprint": server.spec_fingerprint,
            "stack_fingerprint": server.stack_fingerprint,
            "stack": json_safe(dict(server.stack)),
            "status": server.status,
            "reason": server.reason,
            "start_s": server.start_s,
            "requests_sent": server.requests_sent,
            # endpoint arms (#17): per replica what it was sent, answered, failed, and why it left
            **({"replicas": json_safe([dict(r) for r in server.replicas])} if getattr(server, "replicas", ()) else {}),
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
            "model": json_safe(dict(run.model)),
            "engine": config.engine.name,
            "design": {"kind": config.design.kind, "axes": json_safe(dict(config.design.axes)),
                       "contexts": list(run.contexts)},
            "batteries": json_safe(list(run.batteries)),
            "judges": json_safe(list(run.judges)),
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
        "layer2": layer2_section(results),
        "judge_agreement": json_safe(list(judge_agreement(run.judge_labels))),
        "counts": {
            "requests_planned": counts.requests_planned,
            "requests_sent": counts.requests_sent,
            "responses_reused": counts.responses_reused,
            "request_errors": counts.request_errors,
            "requests_rejected": counts.requests_rejected,
            "boots": counts.boots,
            "failed_boots": counts.failed_boots,
            "naive_boots": counts.naive_boots,
            "judge_errors": counts.judge_errors,
            "votes_short_of_quorum": counts.votes_short_of_quorum,
            "labels_written": counts.labels_written,
        },
        "timings_s": {k: round(v, 3) for k, v in run.timings.items()},
        "machine_info": {"node": platform.node(), "machine": platform.machine(), "python": platform.python_version()},
    }


def validate(certificate: Mapping[str, Any], *, source: str = "certificate") -> None:
    """Check the version, then the schema (jsonschema, when installed)."""
    version = certificate.get("schema_version") if isinstance(certificate, Mapping) else None
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        found = "no schema_version" if version is None else f"schema_version = {version!r}"
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise CertificateError(
            f"{source}: {found}; this pytest-servecert reads certificate schema versions "
            f"{readable} only (render it with the version that wrote it)"
        )
    try:
        import jsonschema
    except ImportError:  # the report extra is optional; the version check above still runs
        return
    try:
        jsonschema.validate(certificate, schema(version))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise CertificateError(f"{source}: {where}: {exc.message}") from None


def write_certificate(certificate: Mapping[str, Any], report_dir: Path) -> Path:
    """Validate and write ``certificate`` as ``<report_dir>/certificate-<run>.json`` (+ latest)."""
    if certificate.get("schema_version") != SCHEMA_VERSION:
        raise CertificateError(f"certificate: writes schema version {SCHEMA_VERSION} only")
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
    except IsADirectoryError:
        raise CertificateError(f"{path}: is a directory; expected a certificate JSON file") from None
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CertificateError(f"{path}: not UTF-8 text; expected a certificate JSON file") from None
    except json.JSONDecodeError as exc:
        raise CertificateError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise CertificateError(f"{path}: JSON nested too deeply; expected a certificate") from None
    if not isinstance(data, dict):
        raise CertificateError(f"{path}: expected a JSON object (a certificate), got {type(data).__name__}")
    validate(data, source=str(path))
    return data
