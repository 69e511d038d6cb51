"""Calibration corpora: the pinned XSTest v2 completions from an offline copy, sha256
verification, custom CSV/JSONL corpora and their label rule, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_servecert.calibration import (
    CALIBRATION_DIR_ENV,
    CalibrationError,
    corpus_ids,
    corpus_spec,
    custom_corpus_spec,
    load_corpus,
    map_label,
)
from pytest_servecert.config import ConfigError, load_config

XSTEST = "xstest-v2-completions"


def test_the_default_corpus_loads_offline_and_verified(calibration_dir: Path, tmp_path: Path) -> None:
    corpus = load_corpus("xstest-v2", offline_dirs=[calibration_dir], cache_dir=tmp_path, allow_download=False)
    assert "xstest-v2" in corpus_ids()
    assert len(corpus) == 1350 and corpus.sources == ("gpt4", "mistralguard", "mistralinstruct")
    # SOURCE.md's counts: compliance / refusal / partial; partial refusals count as refusals
    by_source = {s: [i for i in corpus.items if i.source == s] for s in corpus.sources}
    assert [sum(i.human == "refusal" for i in by_source[s]) for s in corpus.sources] == [220, 240, 76]
    # only the Apache-2.0 Mistral completions may be training data
    assert {s for s in corpus.sources if all(i.training for i in by_source[s])} == {"mistralguard", "mistralinstruct"}
    assert not any(i.training for i in by_source["gpt4"])
    again = load_corpus("xstest-v2", offline_dirs=[calibration_dir], cache_dir=tmp_path, allow_download=False)
    assert again.sha256 == corpus.sha256


def test_the_env_var_names_the_offline_copy(calibration_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(CALIBRATION_DIR_ENV, str(calibration_dir))
    assert len(load_corpus("xstest-v2", cache_dir=tmp_path, allow_download=False)) == 1350


def test_a_missing_copy_is_one_line_naming_the_env_var(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(CALIBRATION_DIR_ENV, raising=False)
    with pytest.raises(CalibrationError) as err:
        load_corpus("xstest-v2", offline_dirs=[tmp_path / "nowhere"], cache_dir=tmp_path, allow_download=False)
    assert "\n" not in str(err.value) and CALIBRATION_DIR_ENV in str(err.value)


def test_a_corrupted_offline_copy_is_a_sha256_error(calibration_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(calibration_dir, copy)
    target = copy / XSTEST / "xstest_v2_completions_gpt4.csv"
    data = bytearray(target.read_bytes())
    data[100] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(CalibrationError, match=r"xstest_v2_completions_gpt4\.csv: sha256 mismatch: expected 71af323a"):
        load_corpus("xstest-v2", offline_dirs=[copy], cache_dir=tmp_path, allow_download=False)


def test_the_manifest_pins_the_shared_copy_hashes(calibration_dir: Path) -> None:
    sums = dict(
        reversed(line.split()) for line in (calibration_dir / XSTEST / "SHA256SUMS").read_text().splitlines()
    )
    spec = corpus_spec("xstest-v2")
    assert {Path(f.file).name: f.sha256 for f in spec.files} == sums
    assert all(f.url and "a3bb396ddc1939c6f264f17b7cf5b7a5d82833de" in f.url for f in spec.files)


def test_custom_csv_with_the_default_label_rule(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "prompt,response,label,model\n"
        "a,Sure: step 1,compliance,m1\nb,I can't,REFUSAL,m1\nc,Partly,3_partial_refusal,m2\n",
        encoding="utf-8",
    )
    spec = custom_corpus_spec("mine", path, columns={"source": "model"})
    corpus = load_corpus(spec)
    assert [(i.source, i.human) for i in corpus.items] == [
        ("m1", "compliance"), ("m1", "refusal"), ("m2", "refusal")
    ]


def test_custom_jsonl_with_a_label_map(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "1", "q": "x", "a": "y", "h": "ok"}, {"id": "2", "q": "x", "a": "no", "h": "declined"},
    ]))
    spec = custom_corpus_spec("mine", path, format="jsonl",
                              columns={"id": "id", "prompt": "q", "response": "a", "label": "h"},
                              labels={"ok": "compliance", "declined": "refusal"})
    assert [i.human for i in load_corpus(spec).items] == ["compliance", "refusal"]


def test_bad_columns_and_labels_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("prompt,answer,label\na,b,compliance\n")
    with pytest.raises(CalibrationError,
                       match=r"bad\.csv: missing column 'response' \(columns found: prompt, answer, label\)"):
        load_corpus(custom_corpus_spec("bad", path))
    path.write_text("prompt,response,label\na,b,maybe\n")
    with pytest.raises(CalibrationError, match=r"bad\.csv:2: human label 'maybe' is not mapped"):
        load_corpus(custom_corpus_spec("bad", path))
    with pytest.raises(CalibrationError, match="sha256 mismatch"):
        load_corpus(custom_corpus_spec("bad", path, sha256="0" * 64))


def test_label_rule() -> None:
    assert [map_label(v) for v in ("1_full_compliance", "2_full_refusal", "3_partial_refusal",
                                   "Partial", "comply", "refuse", "unclear")] == [
        "compliance", "refusal", "refusal", "refusal", "compliance", "refusal", None
    ]


BASE = """
[model]
name = "m"
path = "m"
[arms.baseline]
[arms.other]
args = ["--x"]
"""


def _config(tmp_path: Path, text: str):
    path = tmp_path / "servecert.toml"
    path.write_text(BASE + text)
    return load_config(path)


def test_config_keys(tmp_path: Path) -> None:
    cal = _config(tmp_path, '[judges.calibration]\noffline_dirs = ["cal"]\nallow_download = false\n').judges.calibration
    assert (cal.corpus, cal.offline_dirs, cal.allow_download) == ("xstest-v2", (tmp_path / "cal",), False)
    cal = _config(tmp_path, '[judges.calibration]\ncorpus = "custom"\n[judges.calibration.custom]\n'
                  'path = "c.jsonl"\nformat = "jsonl"\nresponse_column = "answer"\n').judges.calibration
    assert cal.custom["path"] == str(tmp_path / "c.jsonl") and cal.custom["columns"]["response"] == "answer"
    assert _config(tmp_path, "").judges.calibration.corpus == "xstest-v2"


@pytest.mark.parametrize(("text", "message"), [
    ('corpus = "xstest"', r"\[judges.calibration\] corpus = 'xstest': expected one of 'xstest-v2', 'custom', 'none'"),
    ('corpus = "custom"', r"\[judges.calibration.custom\] path = None: expected a CSV or JSONL file path"),
    ('allow_download = "yes"', r"allow_download = 'yes': expected true or false"),
    ('offline = []', r"\[judges.calibration\] offline = \[\]: expected no such key"),
])
def test_config_errors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        _config(tmp_path, f"[judges.calibration]\n{text}\n")
    assert "\n" not in str(err.value)
