"""``[canary]`` (issue #18): defaults, and every bad value is one line naming file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.config import CanaryConfig, ConfigError, load_config

MINIMAL = """
[arms.baseline]
[arms.fp8]
kv_cache_dtype = "fp8"
[design.axes]
batch_size = [1, 8]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "servecert.toml"
    path.write_text(MINIMAL + text)
    return path


def test_defaults(tmp_path):
    assert load_config(write(tmp_path, "")).canary == CanaryConfig()
    config = load_config(write(tmp_path, '[canary]\narm = "fp8"\ncontext = "batch_size=8"\nreference = "latest"\n'
                                         "harmful_prompts = 10\nbenign_prompts = 0\ndrift_pp = 2.5\n"))
    assert (config.canary.arm, config.canary.context, config.canary.reference) == ("fp8", "batch_size=8", "latest")
    assert (config.canary.harmful_prompts, config.canary.benign_prompts, config.canary.drift_pp) == (10, 0, 2.5)


@pytest.mark.parametrize(("text", "fragment"), [
    ('arm = "baseline"', "arm = 'baseline': expected one of the candidate arms (fp8)"),
    ('context = "batch_size=4"', "context = 'batch_size=4': expected one of the design's contexts"),
    ("drift_pp = nan", "drift_pp = nan"),
    ("drift_pp = 0", "drift_pp = 0.0: expected a number of percentage points in (0, 100)"),
    ("harmful_prompts = -1", "harmful_prompts = -1: expected an integer >= 0"),
    ("harmful_prompts = 0\nbenign_prompts = 0", "expected at least one canary prompt"),
    ('reference = ""', "reference = '': expected"),
    ("window_days = 0", "window_days = 0: expected a whole number of days >= 1"),
    ("alarm = 1", "alarm = 1: expected no such key"),
])
def test_bad_values_are_one_line(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[canary]\n" + text + "\n"))
    message = str(info.value)
    assert fragment in message and "[canary]" in message and str(tmp_path) in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("require", [["canary.*"], ["L1.*", "L5.*", "canary.*"], ["canary.over_refusal_weekly"],
                                     ["canary.harmful_core", "canary.judge_kappa"], ["canary.over_refusal_rolling[*"]])
def test_gate_require_accepts_the_canary_claims(tmp_path, require):
    config = load_config(write(tmp_path, f"[gate]\nrequire = {require!r}\n".replace("'", '"')))
    assert config.gate.require == tuple(require)


def test_a_misspelled_canary_claim_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, '[gate]\nrequire = ["L5.*", "canary.harmfull_core"]\n'))
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "[gate]" in message and "require = 'canary.harmfull_core'" in message
    assert "canary.harmful_core" in message and str(tmp_path) in message  # names what it expected


def test_week_min_runs(tmp_path):
    assert load_config(write(tmp_path, "[canary]\nweek_min_runs = 5\n")).canary.week_min_runs == 5
    for bad in ("0", "1.5", "true"):
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, f"[canary]\nweek_min_runs = {bad}\n"))
        assert "week_min_runs" in str(info.value) and len(str(info.value).splitlines()) == 1


def test_canary_require_keeps_only_canary_entries():
    from pytest_servecert.claims.release_gate import CANARY_DEFAULT_REQUIRE, canary_require

    assert canary_require(["L1.*", "L5.*"]) == CANARY_DEFAULT_REQUIRE
    assert canary_require(["L1.*", "canary.*"]) == ("canary.*",)
    assert canary_require(["*"]) == ("*",)
    assert canary_require([]) == ()  # [] requires nothing, for a canary too


def test_require_for_a_canary_a_certification_and_both():
    from pytest_servecert.claims.catalogue import CANARY_HARMFUL_CORE, CATALOGUE
    from pytest_servecert.claims.model import ClaimResult, Verdict
    from pytest_servecert.claims.release_gate import CANARY_DEFAULT_REQUIRE, require_for

    canary = ClaimResult(CANARY_HARMFUL_CORE, Verdict.CERTIFIED, "b 0")
    layer5 = ClaimResult(next(c for c in CATALOGUE.values() if c.id.startswith("L5.")), Verdict.CERTIFIED, "Δ 0")
    require = ("L1.*", "L5.*")
    assert require_for(require, [canary]) == CANARY_DEFAULT_REQUIRE
    assert require_for(require, [layer5]) == require
    assert require_for(require, [layer5, canary]) == (*require, *CANARY_DEFAULT_REQUIRE)
