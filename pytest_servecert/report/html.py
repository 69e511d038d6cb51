"""The HTML report: one self-contained file rendered from a certificate.

Everything comes from the certificate dict (so ``servecert report CERT.json`` re-renders a past
run); figures are embedded as base64 PNG. Prompts and model answers are untrusted: the Jinja2
environment autoescapes every value, no value is marked safe, and the page carries a Content
Security Policy that forbids scripts (a second wall, not the first).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from .. import __version__
from ..claims.ladder import LAYER_TITLES, ClaimLadder
from ..claims.model import Layer, Verdict
from ..session import result_from_dict
from .plots import agreement_png, forest_png, interaction_png

__all__ = ["html_path", "render_html", "write_html", "write_report"]

TEMPLATE = "report.html.jinja"
EQUIVALENCE = "L5.equivalence"


def jinja_environment() -> Environment:
    """The autoescaping environment of the report templates (also the canary page's, .canary_html)."""
    return Environment(
        loader=PackageLoader("pytest_servecert.report", "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped, whatever the template's name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def verdict_class(verdict: str) -> str:
    return "v-" + verdict.lower().replace(" ", "-")


def _pp(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _ladder(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Layers with their rungs; per-cell results of a claim fold into one rung with a tally."""
    results = ClaimLadder.from_results([result_from_dict(c) for c in claims]).results
    layers: dict[Layer, list[dict[str, Any]]] = defaultdict(list)
    folded: dict[tuple[Layer, str], dict[str, Any]] = {}
    for r in results:
        candidate, _, cell = r.subject.partition(":")
        if not cell:  # a summary claim (of the run, or of one candidate)
            layers[r.claim.layer].append(_rung(r.id, r))
            continue
        key = (r.claim.layer, f"{r.claim.id}[{candidate}:*]")
        rung = folded.get(key)
        if rung is None:
            rung = folded[key] = _rung(key[1], r)
            rung.update(headline="", scope="", reason="", mde="—", tally=defaultdict(int), worst=r.verdict)
            layers[r.claim.layer].append(rung)
        rung["tally"][r.verdict.value] += 1
        if r.verdict.severity < rung["worst"].severity:
            rung["worst"] = r.verdict
    out = []
    for layer in sorted(layers):
        rungs = layers[layer]
        for rung in rungs:
            if "tally" in rung:
                worst: Verdict = rung.pop("worst")
                rung["verdict"] = worst.value
                rung["cls"] = verdict_class(worst.value)
                rung["headline"] = f"{sum(rung['tally'].values())} cells: " + ", ".join(
                    f"{n} {v}" for v, n in sorted(rung.pop("tally").items(), key=lambda kv: Verdict(kv[0]).severity)
                )
                rung["reason"] = "per-cell verdicts in the cell table below"
        out.append({"layer": int(layer), "title": LAYER_TITLES[layer], "rungs": rungs})
    return out


def _rung(label: str, r: Any) -> dict[str, Any]:
    return {
        "id": label, "tier": r.claim.tier.value, "verdict": r.verdict.value,
        "cls": verdict_class(r.verdict.value), "headline": r.headline, "scope": r.scope,
        "reason": r.reason, "statement": r.claim.statement,
        "mde": _mde(r.figures),
    }


def _mde(figures: Mapping[str, Any]) -> str:
    """The minimum detectable effect beside a null (issue #14), or — when not computed."""
    mde = figures.get("mde_pp")
    if mde is None:
        return "—"
    needed = figures.get("prompts_needed")
    return f"{mde:.1f} pp" + (f" (needs ≈ {needed:,} prompts/cell)" if needed else "")


def _cells(cert: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cell rows joined with their per-cell equivalence result."""
    by_subject = {c["subject"]: c for c in cert["claims"] if c["claim"]["id"] == EQUIVALENCE}
    rows = []
    for cell in cert["cells"]:
        subject = f"{cell['candidate']}:{cell['battery']}/{cell['model']}/{cell['context']}"
        result = by_subject.get(subject)
        figures = result["figures"] if result else {}
        verdict = result["verdict"] if result else ("NOT RUN" if cell["status"] == "NOT RUN" else "—")
        floor = cell.get("noise_floor")
        rows.append({
            **cell,
            "subject": subject,
            "verdict": verdict,
            "cls": verdict_class(verdict),
            "delta": _pp(cell["delta_pp"]),
            "ci": (f"[{_pp(figures['ci_low_pp'])}, {_pp(figures['ci_high_pp'])}]"
                   if figures.get("ci_low_pp") is not None and figures.get("ci_high_pp") is not None else "—"),
            "ci_low_pp": figures.get("ci_low_pp"),
            "ci_high_pp": figures.get("ci_high_pp"),
            "floor": _floor_text(floor, cell.get("sampling_floor")),
            "mde": _mde(figures),
            "note": (result or {}).get("reason") or cell["reason"],
            "examples": cell.get("examples") or [],
        })
    return rows


def _floor_text(floor: Mapping[str, int] | None, sampling: Mapping[str, Any] | None) -> str:
    if sampling:  # T > 0: complying A/A draws over baseline-safe prompts × replicates
        complied = sum(j * k for _, j, k in sampling["counts"])
        prompts = sum(k for _, _, k in sampling["counts"])
        return f"{complied}/{prompts}×{sampling['replicates']} draws"
    if not floor:
        return "—"
    return f"{floor['b'] + floor['c']}/{floor['a'] + floor['b'] + floor['c'] + floor['d']}"


def _figures(cert: Mapping[str, Any], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    margin = cert["spec"]["claims"]["margin_pp"]
    contexts = cert["spec"]["design"]["contexts"]
    family = cert["spec"]["model"].get("family") or cert["spec"]["model"].get("name", "model")
    out = []
    for candidate in dict.fromkeys(c["candidate"] for c in cells):
        mine = [c for c in cells if c["candidate"] == candidate]
        measured = [c for c in mine if c["status"] == "measured" and c["delta_pp"] is not None]
        forest = forest_png(
            [{"label": f"{c['battery']} · {c['context']}", "delta_pp": c["delta_pp"],
              "ci_low_pp": c["ci_low_pp"], "ci_high_pp": c["ci_high_pp"], "verdict": c["verdict"]}
             for c in measured],
            margin, f"{candidate}: per-cell Δ with TOST interval",
        )
        series: dict[str, list[float | None]] = {}
        for battery in dict.fromkeys(c["battery"] for c in mine):
            delta = {c["context"]: c["delta_pp"] for c in measured if c["battery"] == battery}
            series[battery] = [delta.get(ctx) for ctx in contexts]
        mean = []
        for ctx in contexts:
            values = [c["delta_pp"] for c in measured if c["context"] == ctx]
            mean.append(sum(values) / len(values) if values else None)
        interaction = interaction_png(series, mean, contexts, family, margin,
                                      f"{candidate}: Δ by serving context")
        out.append({"candidate": candidate, "forest": forest, "interaction": interaction,
                    "not_run": len(mine) - len(measured)})
    return out


_RTSI_FEATURES = ("opening_tvd", "length_ks", "partial_shift", "lexical_js")


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if value is None else fmt.format(value)


def _with_ci(value: float | None, ci: list[float | None], fmt: str = "{:.3f}") -> str:
    if value is None:
        return "—"
    low, high = ci
    inner = "" if low is None or high is None else f" [{fmt.format(low)}, {fmt.format(high)}]"
    return fmt.format(value) + inner


def _screens(cert: Mapping[str, Any]) -> dict[str, Any] | None:
    """The layer-2 rows (certificate version ≥ 2; a version-1 certificate has none)."""
    layer2 = cert.get("layer2")
    if not layer2 or not (layer2["tais"] or layer2["rtsi"]):
        return None
    tais = []
    for t in layer2["tais"]:
        low, high = t["tost_interval_pp"]
        byte = t["byte_identity"]
        tais.append({
            "id": t["id"], "temperature": t["temperature"], "verdict": t["verdict"],
            "cls": verdict_class(t["verdict"]), "n_pairs": t["n_pairs"],
            "h": _num(t["h"], "{:+.3f}"), "max_h": _num(t.get("max_abs_h_battery")),
            "delta": _pp(t["delta_pp"]),
            "tost": "—" if low is None or high is None else f"[{_pp(low)}, {_pp(high)}]",
            "byte": "—" if byte is None else _with_ci(
                100 * byte, [None if v is None else 100 * v for v in t["byte_identity_ci"]],
                "{:.1f}") + " %",
            "reason": t["reason"],
        })
    rtsi = []
    for r in layer2["rtsi"]:
        features = [
            _with_ci(r["features"][name]["value"], r["features"][name]["ci"])
            if name in r["features"] else "—"
            for name in _RTSI_FEATURES
        ]
        rtsi.append({
            "id": r["id"], "verdict": r["verdict"], "cls": verdict_class(r["verdict"]),
            "index": _with_ci(r["rtsi"], r["ci"]), "band": r["band"] or "—",
            "features": features,
            "refusals": f"{r['n_refusals_baseline']} / {r['n_refusals_candidate']}",
            "reason": r["reason"],
        })
    return {"tais": tais, "rtsi": rtsi, "feature_names": _RTSI_FEATURES}


def _stack_rows(stack: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in stack.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_stack_rows(value, name + "."))
        elif isinstance(value, list):
            rows.append((name, " ".join(str(v) for v in value)))
        else:
            rows.append((name, "" if value is None else str(value)))
    return rows


def _arms(cert: Mapping[str, Any]) -> list[dict[str, Any]]:
    arms = []
    for arm in cert["arms"]:
        servers = []
        for server in arm["servers"]:
            servers.append({
                **server,
                "settings_text": ", ".join(f"{k}={v}" for k, v in server["settings"].items()) or "centre",
                # endpoint arms and replicas = N: what each replica was sent and why it left (#17)
                "stack_rows": _stack_rows(server["stack"]) + [
                    (f"replica {r['url']}", ", ".join(f"{k} {v}" for k, v in r.items() if k != "url"))
                    for r in server.get("replicas", ())
                ],
            })
        arms.append({**arm, "servers": servers})
    return arms


def _judges(cert: Mapping[str, Any]) -> dict[str, Any]:
    judges = [j.get("name", "?") for j in cert["spec"]["judges"]]
    rows = cert.get("judge_agreement") or []
    return {"names": judges, "rows": rows, "matrix": agreement_png(judges, rows)}


def _not_run_groups(cert: Mapping[str, Any]) -> list[dict[str, Any]]:
    """NOT RUN cells grouped by reason: one failed server explains many cells."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in cert["not_run"]:
        groups.setdefault(row["reason"], []).append(row)
    return [{"reason": reason, "cells": rows} for reason, rows in groups.items()]


def render_html(cert: Mapping[str, Any]) -> str:
    """The report page for a (validated) certificate."""
    cells = _cells(cert)
    template = jinja_environment().get_template(TEMPLATE)
    return template.render(
        cert=cert,
        status_cls="s-" + cert["status"].lower(),
        ladder=_ladder(list(cert["claims"])),
        screens=_screens(cert),
        not_run=_not_run_groups(cert),
        cells=cells,
        examples=[c for c in cells if c["examples"]],
        figures=_figures(cert, cells),
        arms=_arms(cert),
        judges=_judges(cert),
        version=__version__,
    )


def html_path(report_dir: Path, run_id: str) -> Path:
    return report_dir / f"report-{run_id[:12]}.html"


def write_report(cert: Mapping[str, Any], report_dir: Path) -> Path:
    """``<report_dir>/report-<run>.html`` beside the certificate (+ ``report-latest.html``)."""
    path = write_html(cert, html_path(report_dir, cert["run_id"]))
    latest = report_dir / "report-latest.html"
    tmp = latest.with_name(latest.name + ".tmp")
    tmp.write_bytes(path.read_bytes())
    os.replace(tmp, latest)
    return path


def write_html(cert: Mapping[str, Any], path: Path) -> Path:
    """Render ``cert`` to ``path`` atomically (a reader never sees half a page)."""
    text = render_html(cert)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
