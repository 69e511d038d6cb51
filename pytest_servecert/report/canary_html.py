"""The canary's HTML page (issue #18): the stored series as a drift plot and a table.

``servecert canary history --html PATH`` writes it. A canary run has no certificate, so this is
its own self-contained page rather than a section of the certificate's report
(:mod:`.html`), built the same way: the Jinja2 environment autoescapes every value (identity
values, arm and context names and reasons come from deployments and configs), no value is
marked safe, figures are PNG data URIs, and a Content Security Policy forbids scripts.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..stats import wilson_interval
from ..store import CanaryRecord
from .html import jinja_environment, verdict_class
from .plots import canary_drift_png

__all__ = ["render_canary_html", "write_canary_html"]

TEMPLATE = "canary.html.jinja"
#: The per-run claims shown as columns, in this order.
COLUMNS = ("canary.harmful_core", "canary.over_refusal", "canary.over_refusal_rolling", "canary.over_refusal_weekly",
           "canary.stack_drift", "canary.judge_kappa")


def _rate(k: Any, n: Any) -> tuple[float, float, float] | None:
    if not isinstance(k, int) or not isinstance(n, int) or n <= 0 or not 0 <= k <= n:
        return None
    ci = wilson_interval(k, n)
    return 100.0 * ci.estimate, 100.0 * ci.ci_low, 100.0 * ci.ci_high


def _verdict(record: CanaryRecord, claim: str) -> str:
    """The verdict of ``claim`` (a rolling result id carries its window: matched by claim id)."""
    return next((v for key, v in record.verdicts.items() if key.split("[", 1)[0] == claim), "")


def _point(record: CanaryRecord) -> dict[str, Any]:
    core = record.figures.get("canary.harmful_core", {})
    drift = record.figures.get("canary.over_refusal", {})
    benign_k = drift.get("b", 0) + drift.get("d", 0) if isinstance(drift.get("n"), int) else None
    verdicts = {c: _verdict(record, c) for c in COLUMNS}
    return {
        "when": datetime.fromisoformat(record.finished_at),
        "harmful": _rate(core.get("sum_b"), core.get("n_pairs")),
        "benign": _rate(benign_k, drift.get("n")),
        "certified_refusal": drift.get("reference_refusal_pct"),
        "harmful_alarm": verdicts["canary.harmful_core"] == "FAIL",
        "benign_alarm": any(verdicts[c] == "FAIL" for c in COLUMNS if c.startswith("canary.over_refusal")),
        "other_alarm": any(verdicts[c] == "FAIL" for c in ("canary.stack_drift", "canary.judge_kappa")),
    }


def _pct(value: tuple[float, float, float] | None) -> str:
    return "—" if value is None else f"{value[0]:.1f}% [{value[1]:.1f}, {value[2]:.1f}]"


def _row(record: CanaryRecord, point: Mapping[str, Any]) -> dict[str, Any]:
    stack = record.figures.get("canary.stack_drift", {})
    diff = stack.get("diff") or {}
    weekly = record.figures.get("canary.over_refusal_weekly", {})
    return {
        "finished": record.finished_at, "reference": record.reference_run_id[:12], "alarm": record.alarm,
        "verdicts": [(v or "—", verdict_class(v) if v else "") for v in (_verdict(record, c) for c in COLUMNS)],
        "harmful": _pct(point["harmful"]), "benign": _pct(point["benign"]),
        "weekly": "—" if not isinstance(weekly.get("drift_pp"), (int, float)) else
        f"{weekly['drift_pp']:+.1f} pp [{weekly['drift_low_pp']:+.1f}, {weekly['drift_high_pp']:+.1f}]",
        "changed": [(field, str(pair[0]) if isinstance(pair, list) and pair else "",
                     str(pair[1]) if isinstance(pair, list) and len(pair) > 1 else "")
                    for field, pair in sorted(diff.items())],
    }


def render_canary_html(records: Sequence[CanaryRecord], title: str = "") -> str:
    """The page for the canary series ``records`` (oldest first): one drift plot and table per
    watched (arm, context)."""
    series: dict[tuple[str, str], list[CanaryRecord]] = defaultdict(list)
    for r in records:
        series[(r.arm, r.context)].append(r)
    sections = []
    for (arm, context), members in series.items():
        points = [_point(r) for r in members]
        limit = next((r.figures.get("canary.over_refusal", {}).get("drift_limit_pp") for r in reversed(members)
                      if isinstance(r.figures.get("canary.over_refusal", {}).get("drift_limit_pp"), (int, float))),
                     None)
        sections.append({
            "arm": arm, "context": context, "runs": len(members), "alarms": sum(r.alarm for r in members),
            "plot": canary_drift_png(points, limit, f"canary of {arm} ({context})"),
            "rows": [_row(r, p) for r, p in zip(members, points)],
        })
    return jinja_environment().get_template(TEMPLATE).render(
        title=title, sections=sections, columns=COLUMNS, runs=len(records), version=__version__,
    )


def write_canary_html(records: Sequence[CanaryRecord], path: Path, title: str = "") -> Path:
    """Render the series to ``path`` atomically."""
    text = render_canary_html(records, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
