"""The canary's Prometheus textfile (issue #18), for the node exporter's textfile collector.

Every gauge is named ``servecert_canary_*`` and labelled with the watched ``arm`` (README
"Monitor a deployment" lists them). The file is written atomically by ``prometheus_client``
(a temporary file renamed over the old one), so the collector never reads half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ..claims.model import ClaimResult, Verdict
from ..store import CanaryRecord

#: Each verdict's value in ``servecert_canary_verdict`` (higher is worse; FAIL is an alarm).
VERDICT_CODES = {Verdict.CERTIFIED: 0, Verdict.MONITOR: 0, Verdict.UNTESTED: 1, Verdict.SCAFFOLDED_ONLY: 1,
                 Verdict.NOT_RUN: 2, Verdict.INCONCLUSIVE: 3, Verdict.FAIL: 4}

#: name -> help text of every gauge the file holds.
METRICS = {
    "servecert_canary_alarm": "1 when the canary claim FAILs (an alarm), else 0",
    "servecert_canary_verdict": "the verdict: 0 CERTIFIED/MONITOR, 1 UNTESTED, 2 NOT RUN, 3 INCONCLUSIVE, 4 FAIL",
    "servecert_canary_false_alarm_rate": "the alarm's false-alarm rate under an unchanged deployment (alpha)",
    "servecert_canary_harmful_compliance_pairs": "harmful prompts the certified answer refused and the canary complied",
    "servecert_canary_harmful_pairs": "harmful canary pairs judged",
    "servecert_canary_harmful_mde_pp": "harmful flip rate (pp) the canary detects at the stated power",
    "servecert_canary_benign_refusal_pct": "benign-edge refusal rate (%) of the certified answers and the canary",
    "servecert_canary_refusal_drift_pp": "benign-edge refusal drift, canary minus certified (pp)",
    "servecert_canary_weekly_refusal_drift_pp": "benign-edge refusal rate of the last 7 days' canaries minus the 7 "
    "days before (pp)",
    "servecert_canary_stack_drift_fields": "identity fields that differ from the certified identity",
    "servecert_canary_judge_kappa": "Cohen's kappa of two cohort members on the canary labels",
    "servecert_canary_last_run_timestamp_seconds": "when the canary finished (Unix time)",
}


def write_canary_textfile(path: Path, record: CanaryRecord, results: Sequence[ClaimResult]) -> None:
    """Write the canary's gauges for ``record`` to ``path`` (directories created)."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, METRICS[name], ("arm", *labels), registry=registry)

    arm = record.arm
    alarm, verdict, rate = gauge("servecert_canary_alarm", ("claim",)), \
        gauge("servecert_canary_verdict", ("claim",)), gauge("servecert_canary_false_alarm_rate", ("claim",))
    by_id = {}
    for r in results:
        by_id[r.id] = r
        alarm.labels(arm, r.claim.id).set(int(r.verdict is Verdict.FAIL))
        verdict.labels(arm, r.claim.id).set(VERDICT_CODES[r.verdict])
        if "false_alarm_rate" in r.figures:
            rate.labels(arm, r.claim.id).set(r.figures["false_alarm_rate"])
    core = by_id.get("canary.harmful_core")
    if core is not None and "sum_b" in core.figures:
        gauge("servecert_canary_harmful_compliance_pairs").labels(arm).set(core.figures["sum_b"])
        gauge("servecert_canary_harmful_pairs").labels(arm).set(core.figures["n_pairs"])
        gauge("servecert_canary_harmful_mde_pp").labels(arm).set(core.figures["mde_pp"])
    drift = by_id.get("canary.over_refusal")
    if drift is not None and "drift_pp" in drift.figures:
        refusal = gauge("servecert_canary_benign_refusal_pct", ("source",))
        refusal.labels(arm, "certified").set(drift.figures["reference_refusal_pct"])
        refusal.labels(arm, "canary").set(drift.figures["canary_refusal_pct"])
        gauge("servecert_canary_refusal_drift_pp").labels(arm).set(drift.figures["drift_pp"])
    weekly = by_id.get("canary.over_refusal_weekly")
    if weekly is not None and "drift_pp" in weekly.figures:
        gauge("servecert_canary_weekly_refusal_drift_pp").labels(arm).set(weekly.figures["drift_pp"])
    stack = by_id.get("canary.stack_drift")
    if stack is not None:
        gauge("servecert_canary_stack_drift_fields").labels(arm).set(len(stack.figures.get("changed", ())))
    kappa = by_id.get("canary.judge_kappa")
    if kappa is not None and isinstance(kappa.figures.get("kappa"), float):
        gauge("servecert_canary_judge_kappa").labels(arm).set(kappa.figures["kappa"])
    finished = datetime.fromisoformat(record.finished_at).timestamp()
    gauge("servecert_canary_last_run_timestamp_seconds").labels(arm).set(finished)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
