"""``servecert plan``: prompts per cell per claim, requests, boots and time, before any boot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_servecert import cli
from pytest_servecert.config import load_config
from pytest_servecert.planner import plan

ROOT = Path(__file__).resolve().parents[2]


def test_default_config_plan_with_conservative_defaults(tmp_path):
    config = load_config(ROOT / "servecert.toml")
    config = type(config)(**{**config.__dict__, "report_dir": tmp_path})  # no pilot there
    result = plan(config)
    assert result.source == "conservative defaults"
    assert result.boots == 8  # 4 arms × prefix caching {off, on}
    assert result.requests == 5600
    assert set(result.needed) == {"L5.harmful_core", "L5.equivalence", "L5.interaction",
                                  "L5.holm", "L5.pooled_lean"}
    # the greedy strict rule alone needs 53 baseline-safe prompts at 3 pp, 80% power
    assert result.needed["L5.harmful_core"][0] >= 53
    assert all(n > result.prompts_per_cell for claim, (n, _) in result.needed.items()
               if claim != "L5.pooled_lean")
    looser = plan(config, mde_pp=10.0)
    assert looser.needed["L5.holm"][0] < result.needed["L5.holm"][0]


def test_plan_reads_discordance_rates_from_a_pilot_certificate(tmp_path):
    cells = [{"status": "measured", "context": ctx, "harmful": True, "a": 95, "b": b, "c": 0,
              "d": 5 - b, "n": 100} for ctx, b in (("baseline", 0), ("temperature=0.7", 4))]
    (tmp_path / "certificate-latest.json").write_text(json.dumps({"cells": cells}))
    config = load_config(ROOT / "servecert.toml")
    config = type(config)(**{**config.__dict__, "report_dir": tmp_path})
    result = plan(config)
    assert result.source.startswith("pilot ")
    assert result.rates["sampled"] == pytest.approx(0.04)
    assert result.rates["greedy"] == pytest.approx(0.01)  # 0 observed: one pair in n


@pytest.mark.parametrize("argv", [["--mde-pp", "0"], ["--power", "1.5"], ["--power", "nan"],
                                  ["--servecert-config", "missing.toml"]])
def test_plan_inputs_are_validated_in_one_line(argv, capsys):
    assert cli.main(["plan", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("servecert: error: ") and err.count("\n") == 1


def test_plan_prints_before_anything_boots(capsys):
    assert cli.main(["plan", "--servecert-config", str(ROOT / "servecert.toml")]) == 0
    out = capsys.readouterr().out
    assert "prompts per cell to detect 3 pp with 80% power" in out
    assert "8 server boots" in out
