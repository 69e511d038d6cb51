"""servecert.toml parsing: defaults, the shipped config, and one-line errors naming file/key/value."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_servecert.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[arms.baseline]
[arms.fp8]
kv_cache_dtype = "fp8"
[design.axes]
batch_size = [1, 8]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "servecert.toml"
    path.write_text(text)
    return path


def test_shipped_default_config_loads():
    config = load_config(ROOT / "servecert.toml")
    assert [a.name for a in config.arms] == ["baseline", "fp8_kv", "spec_draft"]
    assert config.design.kind == "star"
    assert config.design.axes == {
        "batch_size": (1, 8, 32),
        "prefix_caching": (False, True),
        "temperature": (0.0, 0.7, 1.0),
    }
    assert config.candidates[0].settings == {"kv_cache_dtype": "fp8"}
    assert config.candidates[1].settings["speculative"]["model"] == "embedded:draft"
    assert set(config.batteries.use) == {"harmbench", "jbb_harmful", "jbb_benign", "strongreject", "xstest"}
    assert config.aa_arm is True


def test_minimal_config_gets_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.engine.name == "vllm"
    assert config.engine.start_timeout_s == 420
    assert config.sampling.prompts_per_cell == 50
    assert config.claims.margin_pp == 3.0
    assert config.store_path == tmp_path / ".servecert/store.sqlite"
    assert [j.kind for j in config.judges.cohort] == ["regex"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        (MINIMAL + '[design]\nkind = "stars"\n', "[design] kind = 'stars': expected one of 'star', 'full'"),
        (MINIMAL.replace("[1, 8]", "[0, 8]"), "[design.axes] batch_size = 0: expected an integer >= 1"),
        (MINIMAL.replace("[1, 8]", "[1, 1]"), "batch_size = [1, 1]: expected distinct levels"),
        (MINIMAL + "[design.axes.x]\n", "[design.axes] x = {}: expected a known axis"),
        (MINIMAL + "[sampling]\nprompts_per_cell = -3\n",
         "[sampling] prompts_per_cell = -3: expected a positive number"),
        (MINIMAL + "[sampling]\nprompts_per_cel = 3\n", "[sampling] prompts_per_cel = 3: expected no such key"),
        (MINIMAL + "[sampling]\nmax_tokens = true\n", "[sampling] max_tokens = True: expected an integer >= 1"),
        (MINIMAL + '[engine]\nname = "tgi"\n', "[engine] name = 'tgi': expected one of \"vllm\", \"llamacpp\""),
        ("[arms.fp8]\n", "[arms.baseline] is missing"),
        ("[arms.baseline]\n", "[arms]: expected at least one candidate arm"),
        (MINIMAL + "[arms.x]\nbatch_size = 8\n", "[arms.x] batch_size: this axis is varied by [design.axes]"),
        (MINIMAL + '[judges.cohort.g]\nkind = "ollama"\n', "[judges.cohort.g] model = None: expected a model name"),
        (MINIMAL + '[judges.cohort.g]\nkind = "gpt"\n', "[judges.cohort.g] kind = 'gpt'"),
        (MINIMAL + '[claims]\ntost_method = "welch"\n', "[claims] tost_method = 'welch'"),
        (MINIMAL + "[claims]\nalpha = 1.5\n", "[claims] alpha = 1.5: expected a number in (0, 0.5)"),
        (MINIMAL + "[claims]\nspread_limit_pp = nan\n", "[claims] spread_limit_pp = nan: expected a positive"),
        (MINIMAL + '[claims]\nrules = "literal"\n', "[claims] rules = 'literal'"),
        (MINIMAL + "[claims]\npower = 1.0\n", "[claims] power = 1.0: expected a number in (0, 1)"),
        (MINIMAL + "[sampling]\naa_replicates = 0\n", "[sampling] aa_replicates = 0"),
        ("this is = = not toml", "not valid TOML"),
        (MINIMAL + '[judges.anchor]\npair = ["regex", "gemma"]\nkappa = 0.8\n',
         "[judges.anchor] pair = ['regex', 'gemma']: expected two different judge names of the cohort (regex)"),
        (MINIMAL + '[judges.anchor]\npair = ["regex", "regex"]\nkappa = 0.8\n', "expected two different judge names"),
        (MINIMAL + '[judges.cohort.t]\nkind = "regex"\n[judges.cohort.u]\nkind = "regex"\n'
                   '[judges.anchor]\npair = ["t", "u"]\n',
         "[judges.anchor] kappa = None: expected the recorded"),
        (MINIMAL + '[judges.cohort.t]\nkind = "regex"\n[judges.cohort.u]\nkind = "regex"\n'
                   '[judges.anchor]\npair = ["u", "t"]\nkappa = 1.4\n',
         "[judges.anchor] kappa = 1.4"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert fragment in message


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_config(tmp_path / "nope.toml")


def test_integrity_anchor_is_read(tmp_path):
    text = (MINIMAL + '[judges.cohort.t]\nkind = "regex"\n[judges.cohort.u]\nkind = "regex"\n'
            '[judges.anchor]\npair = ["u", "t"]\nkappa = 0.71\n')
    judges = load_config(write(tmp_path, text)).judges
    assert (judges.anchor_pair, judges.anchor_kappa) == (("u", "t"), 0.71)
    assert load_config(write(tmp_path, MINIMAL)).judges.anchor_pair is None
