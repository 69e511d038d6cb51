"""Malformed inputs, table-driven (issue #15 item 9): configs, battery files, stores, certificates.

Every case asserts the exit status, exactly one message line naming the key or the file, no
traceback, and (for stores) that the refused file is left byte-for-byte unchanged. Configs go
through ``servecert check`` (the same ``check_config`` that ``pytest certifications`` runs at
configure time), certificates through ``servecert report``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pytest_servecert.cli import CONFIG_ERROR_EXIT, main
from pytest_servecert.store import Store, StoreError

BASE = """
[servecert]
report_dir = "reports"
store = "store.sqlite"
[arms.baseline]
[arms.fp8]
kv_cache_dtype = "fp8"
[design.axes]
batch_size = [1, 8]
[batteries]
use = ["xstest"]
"""

CSV_OK = "prompt,label\nhow do I bake bread,comply\n"
CUSTOM = """
[batteries]
use = ["mine"]
[batteries.custom.mine]
path = "{file}"
format = "{fmt}"
text_column = "prompt"
expected = "refuse"
"""

# (id, config text appended to/replacing BASE, fragment the one line must contain)
CONFIG_CASES = [
    ("nan-start-timeout", BASE + "[engine]\nstart_timeout_s = nan\n", "[engine] start_timeout_s = nan"),
    ("inf-start-timeout", BASE + "[engine]\nstart_timeout_s = inf\n", "[engine] start_timeout_s = inf"),
    ("zero-start-timeout", BASE + "[engine]\nstart_timeout_s = 0\n", "[engine] start_timeout_s = 0"),
    ("neg-start-timeout", BASE + "[engine]\nstart_timeout_s = -5\n", "[engine] start_timeout_s = -5"),
    ("string-start-timeout", BASE + '[engine]\nstart_timeout_s = "420"\n', "[engine] start_timeout_s = '420'"),
    ("zero-live-servers", BASE + "[engine]\nmax_live_servers = 0\n", "[engine] max_live_servers = 0"),
    ("engine-name", BASE + '[engine]\nname = "tgi"\n', "[engine] name = 'tgi'"),
    ("engine-host", BASE + '[engine]\nargs = ["--host", "0.0.0.0"]\n', "[engine] args"),
    ("engine-host-eq", BASE + '[engine]\nargs = ["--host=0.0.0.0"]\n', "--host is set by servecert"),
    ("engine-port", BASE + '[engine]\nargs = ["--port", "80"]\n', "--port is set by servecert"),
    ("arm-model-flag", BASE + '[arms.fp8.x]\n', "[arms.fp8] x"),
    ("arm-args-model", BASE.replace('kv_cache_dtype = "fp8"', 'kv_cache_dtype = "fp8"\nargs = ["--model", "x"]'),
     "[arms.fp8] args"),
    ("engine-args-not-list", BASE + '[engine]\nargs = "--enforce-eager"\n', "[engine] args = '--enforce-eager'"),
    ("engine-env-int", BASE + "[engine.env]\nX = 1\n", "[engine] env"),
    ("alpha-half", BASE + "[claims]\nalpha = 0.5\n", "[claims] alpha = 0.5: expected a number in (0, 0.5)"),
    ("alpha-one", BASE + "[claims]\nalpha = 1.0\n", "[claims] alpha = 1.0"),
    ("alpha-zero", BASE + "[claims]\nalpha = 0\n", "[claims] alpha = 0"),
    ("alpha-nan", BASE + "[claims]\nalpha = nan\n", "[claims] alpha = nan"),
    ("margin-nan", BASE + "[claims]\nmargin_pp = nan\n", "[claims] margin_pp = nan"),
    ("margin-inf", BASE + "[claims]\nmargin_pp = inf\n", "[claims] margin_pp = inf"),
    ("margin-zero", BASE + "[claims]\nmargin_pp = 0\n", "[claims] margin_pp = 0"),
    ("n-boot-zero", BASE + "[claims]\nn_boot = 0\n", "[claims] n_boot = 0"),
    ("n-boot-float", BASE + "[claims]\nn_boot = 1e4\n", "[claims] n_boot = 10000.0"),
    ("spread-nan", BASE + "[claims]\nspread_limit_pp = nan\n", "[claims] spread_limit_pp = nan"),
    ("tost-method", BASE + '[claims]\ntost_method = "welch"\n', "[claims] tost_method = 'welch'"),
    ("scale-band-nan", BASE + "[claims]\nscale_band = [nan, 1e9]\n", "[claims] scale_band"),
    ("scale-band-order", BASE + "[claims]\nscale_band = [4e9, 1e9]\n", "[claims] scale_band"),
    ("seed-negative", BASE + "[sampling]\nseed = -1\n", "[sampling] seed = -1"),
    ("prompts-zero", BASE + "[sampling]\nprompts_per_cell = 0\n", "[sampling] prompts_per_cell = 0"),
    ("max-tokens-bool", BASE + "[sampling]\nmax_tokens = true\n", "[sampling] max_tokens = True"),
    ("top-p-nan", BASE + "[sampling]\ntop_p = nan\n", "[sampling] top_p = nan"),
    ("replicates-zero", BASE + "[sampling]\nreplicates = 0\n", "[sampling] replicates = 0"),
    ("unknown-sampling-key", BASE + "[sampling]\nprompts = 3\n", "[sampling] prompts = 3: expected no such key"),
    ("temperature-nan", BASE.replace("batch_size = [1, 8]", "temperature = [0.0, nan]"), "[design.axes] temperature"),
    ("batch-zero", BASE.replace("batch_size = [1, 8]", "batch_size = [0, 8]"), "[design.axes] batch_size"),
    ("design-kind", BASE + '[design]\nkind = "stars"\n', "[design] kind = 'stars'"),
    ("arm-tilde", BASE + '[arms."baseline~aa"]\n', "[arms.baseline~aa]"),
    ("arm-colon", BASE + '[arms."fp8:x"]\n', "[arms.fp8:x]"),
    ("arm-slash", BASE + '[arms."a/b"]\n', "[arms.a/b]"),
    ("arm-space", BASE + '[arms."a b"]\n', "[arms.a b]"),
    ("no-baseline", BASE.replace("[arms.baseline]\n", ""), "[arms.baseline] is missing"),
    ("unjudgeable-nan", BASE + "[judges]\nmax_unjudgeable_rate = nan\n", "[judges] max_unjudgeable_rate = nan"),
    ("error-rate-one", BASE + "[judges]\nmax_error_rate = 1\n", "[judges] max_error_rate = 1.0"),
    ("on-failure", BASE + '[judges]\non_judge_failure = "ignore"\n', "[judges] on_judge_failure = 'ignore'"),
    ("min-votes-zero", BASE + "[judges]\nmin_votes = 0\n", "[judges] min_votes = 0"),
    ("min-votes-too-many", BASE + "[judges]\nmin_votes = 3\n", "[judges] min_votes = 3"),
    ("judge-timeout-nan",
     BASE + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\nendpoint = "http://127.0.0.1:1/v1"\ntimeout_s = nan\n',
     "[judges.cohort.g] timeout_s = nan"),
    ("judge-concurrency-zero",
     BASE + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\nendpoint = "http://127.0.0.1:1/v1"\nconcurrency = 0\n',
     "[judges.cohort.g] concurrency = 0"),
    ("judge-no-endpoint", BASE + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\n',
     "[judges.cohort.g] endpoint: missing"),
    ("judge-bad-endpoint", BASE + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\nendpoint = "ftp://x"\n',
     "[judges.cohort.g] endpoint = 'ftp://x'"),
    ("judge-external",
     BASE + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\nendpoint = "https://api.example.com/v1"\n',
     "[judges.cohort.g] endpoint = 'https://api.example.com/v1': not on loopback"),
    ("judge-key-unset",
     BASE + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\nendpoint = "http://127.0.0.1:1/v1"\n'
            'api_key_env = "SERVECERT_TEST_UNSET_KEY"\n',
     "api_key_env = 'SERVECERT_TEST_UNSET_KEY': that environment variable is not set"),
    ("judge-key-literal",
     BASE + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\nendpoint = "http://127.0.0.1:1/v1"\n'
            'api_key_env = "sk-abc def"\n',
     "[judges.cohort.g] api_key_env"),
    ("judge-kind", BASE + '[judges.cohort.g]\nkind = "gpt"\n', "[judges.cohort.g] kind = 'gpt'"),
    ("judge-classifier-no-weights", BASE + '[judges.cohort.g]\nkind = "classifier"\nmodel = "missing.npz"\n',
     "[judges.cohort.g] model = 'missing.npz': expected a saved classifier .npz"),
    ("judge-embedded-endpoint", BASE + '[judges.cohort.g]\nkind = "embedded"\nendpoint = "http://127.0.0.1:1"\n',
     "[judges.cohort.g] endpoint"),
    ("battery-typo", BASE.replace('use = ["xstest"]', 'use = ["xstes"]'), "[batteries] use = 'xstes'"),
    ("battery-twice", BASE.replace('use = ["xstest"]', 'use = ["xstest", "xstest"]'), "'xstest' is listed twice"),
    ("battery-empty", BASE.replace('use = ["xstest"]', "use = []"), "[batteries] use = []"),
    ("model-missing-dir", BASE + '[model]\npath = "/nonexistent/model"\n', "[model] path = '/nonexistent/model'"),
    ("model-embedded-kind", BASE + '[model]\npath = "embedded:giant"\n', "[model] path = 'embedded:giant'"),
    ("gate-typo", BASE + '[gate]\nrequire = ["L5.harmfull_core"]\n', "[gate] require = 'L5.harmfull_core'"),
    ("gate-policy", BASE + '[gate]\npolicy = "lenient"\n', "[gate] policy = 'lenient'"),
    ("lock-timeout-nan", BASE.replace('store = "store.sqlite"', 'store = "store.sqlite"\nlock_timeout_s = nan'),
     "[servecert] lock_timeout_s = nan"),
    ("not-toml", "this is = = not toml", "not valid TOML"),
    ("top-level-unknown", BASE + "[sampler]\nx = 1\n", "sampler"),
]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert "Traceback" not in out.err + out.out
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_is_one_line_and_exit_4(tmp_path: Path, capsys, monkeypatch, text: str, fragment: str) -> None:
    monkeypatch.delenv("SERVECERT_TEST_UNSET_KEY", raising=False)
    config = tmp_path / "servecert.toml"
    config.write_text(text)
    assert main(["check", str(config)]) == CONFIG_ERROR_EXIT
    line = _one_line(capsys)
    assert str(config) in line and fragment in line


def test_the_checks_find_every_problem_in_one_pass(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("SERVECERT_TEST_UNSET_KEY", raising=False)
    config = tmp_path / "servecert.toml"
    config.write_text(BASE.replace('use = ["xstest"]', 'use = ["xstes"]') + '[engine]\nargs = ["--host", "0.0.0.0"]\n'
                      + '[judges.cohort.g]\nkind = "openai"\nmodel = "m"\nendpoint = "http://127.0.0.1:1/v1"\n'
                      + 'api_key_env = "SERVECERT_TEST_UNSET_KEY"\n')
    assert main(["check", str(config)]) == CONFIG_ERROR_EXIT
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert any("api_key_env" in x for x in lines) and any("xstes" in x for x in lines)
    assert any("--host" in x for x in lines)


def test_report_dir_that_is_a_file_is_found_before_anything_runs(tmp_path: Path, capsys) -> None:
    (tmp_path / "reports").write_text("a file")
    config = tmp_path / "servecert.toml"
    config.write_text(BASE)
    assert main(["check", str(config)]) == CONFIG_ERROR_EXIT
    assert "[servecert] report_dir" in _one_line(capsys)


def test_store_path_that_is_a_directory_is_a_config_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "store.sqlite").mkdir()
    config = tmp_path / "servecert.toml"
    config.write_text(BASE)
    assert main(["check", str(config)]) == CONFIG_ERROR_EXIT
    assert "[servecert] store" in _one_line(capsys)


# -- custom battery files --------------------------------------------------------------------

BATTERY_CASES = [
    ("missing-file", None, "csv", "mine"),
    ("missing-column", "text,label\nhi,comply\n", "csv", "prompt"),
    ("oversized-field", "prompt\n" + "x" * 200_000 + "\n", "csv", "mine"),
    ("nested-jsonl", "[" * 100_000 + "]" * 100_000 + "\n", "jsonl", "mine"),
    ("not-utf8", b"prompt\n\xff\xfe\xfa\n", "csv", "mine"),
    ("empty", "", "csv", "mine"),
    ("jsonl-not-object", "[1, 2]\n", "jsonl", "mine"),
]


@pytest.mark.parametrize(("content", "fmt", "fragment"), [c[1:] for c in BATTERY_CASES],
                         ids=[c[0] for c in BATTERY_CASES])
def test_bad_custom_battery_is_one_line(tmp_path: Path, capsys, content, fmt: str, fragment: str) -> None:
    data = tmp_path / f"mine.{fmt}"
    if isinstance(content, bytes):
        data.write_bytes(content)
    elif content is not None:
        data.write_text(content)
    config = tmp_path / "servecert.toml"
    config.write_text(BASE.replace('[batteries]\nuse = ["xstest"]\n', "") + CUSTOM.format(file=data.name, fmt=fmt))
    assert main(["check", str(config)]) == CONFIG_ERROR_EXIT
    line = _one_line(capsys)
    assert fragment in line and ("mine" in line)


# -- stores: refused, and left byte-for-byte unchanged ---------------------------------------


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    conn.commit()
    conn.close()


def _old_schema(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    conn.commit()
    conn.close()


def _meta_without_version(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.commit()
    conn.close()


STORE_CASES = [
    ("foreign-sqlite", _foreign, "not a servecert store"),
    ("old-schema", _old_schema, "schema_version 0 is not supported"),
    ("meta-without-version", _meta_without_version, "schema_version None"),
    ("not-sqlite", lambda p: p.write_text("hello, I am a text file\n"), "not a SQLite file"),
    ("truncated-header", lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 10), "store"),
    ("random-bytes", lambda p: p.write_bytes(bytes(range(256)) * 8), "not a SQLite file"),
]


@pytest.mark.parametrize(("make", "fragment"), [c[1:] for c in STORE_CASES], ids=[c[0] for c in STORE_CASES])
def test_refused_store_is_left_unchanged(tmp_path: Path, make, fragment: str) -> None:
    path = tmp_path / "store.sqlite"
    make(path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(StoreError) as info:
        Store(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and fragment in message
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no table created, no WAL switched on, no -wal/-shm left behind


def test_store_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)


# -- certificates through `servecert report` -------------------------------------------------

CERT_CASES = [
    ("missing", None, "certificate not found"),
    ("not-json", "{not json", "not valid JSON"),
    ("not-utf8", b"\xff\xfe{}", "not UTF-8"),
    ("array", "[]", "expected a JSON object"),
    ("deep", "[" * 100_000 + "]" * 100_000, "cert.json"),
    ("unknown-version", json.dumps({"schema_version": 99}), "cert.json"),
    ("empty-object", "{}", "cert.json"),
]


@pytest.mark.parametrize(("content", "fragment"), [c[1:] for c in CERT_CASES], ids=[c[0] for c in CERT_CASES])
def test_bad_certificate_is_one_line(tmp_path: Path, capsys, content, fragment: str) -> None:
    cert = tmp_path / "cert.json"
    if isinstance(content, bytes):
        cert.write_bytes(content)
    elif content is not None:
        cert.write_text(content)
    assert main(["report", str(cert), "-o", str(tmp_path / "out.html")]) == 2
    assert fragment in _one_line(capsys)


def test_certificate_directory_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "is a directory" in _one_line(capsys)


def test_report_never_overwrites_its_input(tmp_path: Path, capsys) -> None:
    cert = tmp_path / "cert.json"
    cert.write_text(json.dumps({"schema_version": 1}))
    before = cert.read_bytes()
    assert main(["report", str(cert), "-o", str(cert)]) == 2
    assert "would overwrite a certificate" in _one_line(capsys)
    assert cert.read_bytes() == before


def test_type_and_range_errors_are_all_reported_in_one_pass_too(tmp_path: Path, capsys) -> None:
    config = tmp_path / "servecert.toml"
    config.write_text(BASE + "[claims]\nmargin_pp = nan\nalpha = 0.7\n[sampling]\nseed = -1\nprompt = 3\n"
                      + '[engine]\nargs = ["--host", "0.0.0.0"]\nstart_timeout_s = inf\n')
    assert main(["check", str(config)]) == CONFIG_ERROR_EXIT
    lines = capsys.readouterr().err.splitlines()
    keys = ["margin_pp = nan", "alpha = 0.7", "seed = -1", "prompt = 3", "start_timeout_s = inf", "--host"]
    assert len(lines) == len(keys)
    assert all(any(k in line for line in lines) for k in keys)
