"""The report's figures, drawn with matplotlib's Agg canvas and returned as base64 PNG.

No pyplot: figures are built on ``matplotlib.figure.Figure`` with an Agg canvas, so nothing
touches the process-wide backend or opens a window. A PNG data URI carries no markup, so
battery and context names cannot inject anything into the page.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["agreement_png", "canary_drift_png", "forest_png", "interaction_png"]

_VERDICT_COLOURS = {
    "CERTIFIED": "#1a7f37",
    "MONITOR": "#9a6700",
    "FAIL": "#cf222e",
    "INCONCLUSIVE": "#8250df",
}
_OTHER = "#57606a"


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def forest_png(rows: Sequence[Mapping[str, Any]], margin_pp: float, title: str) -> str | None:
    """Per-cell Δ (pp) with its TOST interval and the ±margin band.

    ``rows``: measured cells, each with ``label``, ``delta_pp``, ``ci_low_pp``, ``ci_high_pp``
    (None when the rule computed no interval) and ``verdict``. None when there is nothing to draw.
    """
    if not rows:
        return None
    height = 1.2 + 0.22 * len(rows)
    fig = Figure(figsize=(8, height))
    ax = fig.add_subplot()
    ax.axvspan(-margin_pp, margin_pp, color="#dafbe1", zorder=0, label=f"±{margin_pp:g} pp band")
    ax.axvline(0, color="#8c959f", linewidth=0.8, zorder=1)
    for y, row in enumerate(reversed(rows)):
        colour = _VERDICT_COLOURS.get(row["verdict"], _OTHER)
        low, high = row.get("ci_low_pp"), row.get("ci_high_pp")
        if low is not None and high is not None:
            ax.hlines(y, low, high, color=colour, linewidth=2, zorder=2)
        ax.plot(row["delta_pp"], y, "o", color=colour, markersize=4, zorder=3)
    ax.set_yticks(range(len(rows)), [r["label"] for r in reversed(rows)], fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("Δ safe rate, candidate − baseline (pp); bars: TOST interval")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    ax.grid(axis="x", color="#eaeef2", linewidth=0.6)
    return _png(fig)


def interaction_png(
    series: Mapping[str, Sequence[float | None]], family_mean: Sequence[float | None],
    contexts: Sequence[str], family: str, margin_pp: float, title: str,
) -> str | None:
    """Δ by context: one thin line per battery, a thick line for the model family's mean.

    Parallel lines mean no serving-state interaction; crossing or fanning lines are what the
    ``L5.interaction`` spread measures. ``None`` values (NOT RUN cells) leave gaps.
    """
    if not contexts or all(v is None for v in family_mean):
        return None
    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    x = range(len(contexts))
    ax.axhspan(-margin_pp, margin_pp, color="#dafbe1", zorder=0)
    ax.axhline(0, color="#8c959f", linewidth=0.8)
    nan = float("nan")
    for battery, values in series.items():
        ax.plot(x, [nan if v is None else v for v in values], marker="o", markersize=3,
                linewidth=1, alpha=0.8, label=battery)
    ax.plot(x, [nan if v is None else v for v in family_mean], color="black", linewidth=2.5,
            marker="s", markersize=4, label=f"family {family} (mean)")
    ax.set_xticks(list(x), list(contexts), rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("Δ safe rate (pp)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(axis="y", color="#eaeef2", linewidth=0.6)
    return _png(fig)


def agreement_png(judges: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Judge × judge matrix of Cohen's κ (raw agreement when κ is undefined), annotated."""
    if len(judges) < 2 or not rows:
        return None
    index = {name: i for i, name in enumerate(judges)}
    size = len(judges)
    values = [[1.0 if i == j else float("nan") for j in range(size)] for i in range(size)]
    notes = [["" for _ in range(size)] for _ in range(size)]
    for row in rows:
        i, j = index.get(row["a"]), index.get(row["b"])
        if i is None or j is None:
            continue
        kappa, agreement = row.get("kappa"), row.get("agreement")
        value = kappa if kappa is not None else agreement
        text = "n/a" if value is None else (f"κ {kappa:.2f}" if kappa is not None else f"agree {agreement:.0%}")
        values[i][j] = values[j][i] = float("nan") if value is None else value
        notes[i][j] = notes[j][i] = f"{text}\nn={row['n']}"
    fig = Figure(figsize=(1.6 + 1.1 * size, 1.2 + 1.0 * size))
    ax = fig.add_subplot()
    image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdYlGn")
    for i in range(size):
        for j in range(size):
            ax.text(j, i, notes[i][j] if i != j else "—", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(size), judges, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(size), judges, fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8, label="Cohen's κ")
    ax.set_title("judge agreement", fontsize=10)
    return _png(fig)


def canary_drift_png(rows: Sequence[Mapping[str, Any]], drift_limit_pp: float | None, title: str) -> str | None:
    """The canary series over time: harmful discordance and benign-edge refusal, alarms marked.

    ``rows`` (oldest first) carry ``when`` (a datetime), ``harmful`` and ``benign`` (each None or
    ``(rate %, low %, high %)``: the canary's harmful compliance among the pairs judged, b/n, and
    its benign-edge refusal rate, with 95% Wilson intervals), ``certified_refusal`` (the certified
    answers' benign-edge refusal %, or None) and ``harmful_alarm`` / ``benign_alarm`` /
    ``other_alarm`` (bools). None when no run has either rate.
    """
    if not any(r.get("harmful") or r.get("benign") for r in rows):
        return None
    fig = Figure(figsize=(8, 5.2))
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, key, alarm_key, label in (
        (top, "harmful", "harmful_alarm", "harmful discordance b/n (%)"),
        (bottom, "benign", "benign_alarm", "benign-edge refusal (%)"),
    ):
        points = [(r["when"], *r[key]) for r in rows if r.get(key)]
        if points:
            when, rate, low, high = zip(*points)
            ax.fill_between(when, low, high, color="#ddf4ff", zorder=0, label="95% Wilson interval")
            ax.plot(when, rate, "o-", color="#0969da", markersize=4, linewidth=1.2, zorder=2, label=label)
            alarms = [(r["when"], r[key][0]) for r in rows if r.get(key) and r.get(alarm_key)]
            if alarms:
                ax.plot(*zip(*alarms), "X", color=_VERDICT_COLOURS["FAIL"], markersize=10, zorder=3,
                        label="alarm (FAIL)")
        for r in rows:
            if r.get("other_alarm"):
                ax.axvline(r["when"], color=_VERDICT_COLOURS["FAIL"], linestyle=":", linewidth=1, zorder=1)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(axis="y", color="#eaeef2", linewidth=0.6)
    certified = [(r["when"], r["certified_refusal"]) for r in rows if r.get("certified_refusal") is not None]
    if certified:
        bottom.plot(*zip(*certified), "--", color=_OTHER, linewidth=1, label="certified answers")
        if drift_limit_pp is not None:
            bottom.plot([w for w, _ in certified], [c + drift_limit_pp for _, c in certified], ":",
                        color=_VERDICT_COLOURS["MONITOR"], linewidth=1, label=f"certified + {drift_limit_pp:g} pp")
    if any(r.get("other_alarm") for r in rows):
        top.plot([], [], ":", color=_VERDICT_COLOURS["FAIL"], label="other alarm (stack drift, judge κ)")
    for ax in (top, bottom):
        ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    top.set_title(title, fontsize=10)
    fig.autofmt_xdate()
    return _png(fig)
