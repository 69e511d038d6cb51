"""Battery manifests and loader, against the real files in ../shared/batteries.

The real battery bytes are read from ``SERVECERT_BATTERY_DIR`` or from the
``shared/batteries`` directory found by walking up from this file; they are never
copied into the repository. Downloads are exercised with an ``httpx.MockTransport``.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_servecert import batteries
from pytest_servecert.batteries import (
    BatteryError,
    Prompt,
    battery_ids,
    battery_spec,
    custom_battery,
    load_battery,
    subsample,
)

DATA = Path(__file__).parent / "data"


def _find_shared_batteries() -> Path | None:
    env = os.environ.get("SERVECERT_BATTERY_DIR")
    if env and (Path(env) / "MANIFEST.json").is_file():
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "batteries"
        if (candidate / "MANIFEST.json").is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def shared() -> Path:
    found = _find_shared_batteries()
    if found is None:  # fail, never skip: these tests are the proof the loader works
        pytest.fail(
            "real batteries not found: set SERVECERT_BATTERY_DIR or place ../shared/batteries"
        )
    return found


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test may see the developer's cache or a global battery dir by accident.
    monkeypatch.delenv("SERVECERT_BATTERY_DIR", raising=False)
    monkeypatch.delenv("SERVECERT_MANIFEST_DIR", raising=False)
    monkeypatch.setenv("SERVECERT_CACHE_DIR", str(tmp_path / "cache"))


def _load(battery_id: str, shared: Path):
    return load_battery(battery_id, battery_dir=shared, allow_download=False)


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- manifests


def test_battery_ids_are_documented_set() -> None:
    assert set(battery_ids()) == {
        "harmbench", "harmbench:test", "harmbench:val", "jbb_harmful", "jbb_benign",
        "strongreject", "strongreject:small", "xstest", "xstest:v2",
    }  # fmt: skip


def test_manifests_agree_with_shared_manifest_json(shared: Path) -> None:
    manifest = json.loads((shared / "MANIFEST.json").read_text())
    by_file = {entry["file"]: entry for entry in manifest["files"]}
    specs = [battery_spec(b) for b in battery_ids()]
    assert sorted(s.file for s in specs) == sorted(by_file)
    for spec in specs:
        entry = by_file[spec.file]
        assert spec.sha256 == entry["sha256"], spec.id
        assert spec.url == entry["canonical_url"], spec.id
        assert spec.rows == entry["rows"], spec.id
        assert spec.license == entry["license"], spec.id
        assert spec.alternate_urls == tuple(entry["alternate_urls"]), spec.id


def test_default_variant_spelled_out_loads_under_bare_id() -> None:
    assert battery_spec("harmbench:all").id == "harmbench"
    assert battery_spec("strongreject:full").id == "strongreject"
    assert battery_spec("xstest:v1").id == "xstest"
    assert battery_spec("xstest:v2").id == "xstest:v2"


def test_unknown_battery_names_known_ones() -> None:
    with pytest.raises(BatteryError, match=r"unknown battery 'harmbenchx'.*harmbench"):
        battery_spec("harmbenchx")
    with pytest.raises(BatteryError, match=r"known variants: harmbench:all, harmbench:test"):
        battery_spec("harmbench:dev")


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize(
    ("battery_id", "rows", "refuse", "comply", "categories", "harmful"),
    [
        ("harmbench", 400, 400, 0, 7, True),
        ("harmbench:test", 320, 320, 0, 7, True),
        ("harmbench:val", 80, 80, 0, 7, True),
        ("jbb_harmful", 100, 100, 0, 10, True),
        ("jbb_benign", 100, 0, 100, 10, False),
        ("strongreject", 313, 313, 0, 6, True),
        ("strongreject:small", 60, 60, 0, 6, True),
        ("xstest", 450, 200, 250, 18, False),
        ("xstest:v2", 450, 200, 250, 18, False),
    ],
)
def test_real_battery_counts(
    shared: Path, battery_id, rows, refuse, comply, categories, harmful
) -> None:
    battery = _load(battery_id, shared)
    assert battery.id == battery_id
    assert len(battery) == rows
    expected = collections.Counter(p.expected for p in battery.prompts)
    assert (
        expected
        == collections.Counter({"refuse": refuse, "comply": comply}) - collections.Counter()
    )
    assert len({p.category for p in battery.prompts}) == categories
    assert {p.harmful for p in battery.prompts} == {harmful}
    assert {p.battery for p in battery.prompts} == {battery_id}
    assert len({p.prompt_id for p in battery.prompts}) == rows
    assert battery.sha256 == battery.spec.sha256
    assert battery.path == shared / battery.spec.file


def test_jbb_prompt_text_is_goal_and_ids_mirror(shared: Path) -> None:
    harmful = _load("jbb_harmful", shared)
    benign = _load("jbb_benign", shared)
    rows = _raw_rows(shared / "jailbreakbench/harmful-behaviors.csv")
    assert [p.text for p in harmful.prompts] == [r["Goal"] for r in rows]
    assert [p.prompt_id for p in harmful.prompts] == [p.prompt_id for p in benign.prompts]
    assert [p.category for p in harmful.prompts] == [p.category for p in benign.prompts]
    assert collections.Counter(p.category for p in harmful.prompts) == collections.Counter(
        {c: 10 for c in {r["Category"] for r in rows}}
    )


def test_xstest_v1_label_rule_and_v2_prefix_rule_agree(shared: Path) -> None:
    v1 = _load("xstest", shared)
    v2 = _load("xstest:v2", shared)
    rows = _raw_rows(shared / "xstest/xstest_prompts.csv")
    label = {r["id"]: r["label"] for r in rows}
    for prompt in v1.prompts:
        assert prompt.expected == {"safe": "comply", "unsafe": "refuse"}[label[prompt.prompt_id]]
    # v2 has no label column; the contrast_ prefix rule must reproduce v1's labels.
    assert [(p.text, p.expected, p.category) for p in v1.prompts] == [
        (p.text, p.expected, p.category) for p in v2.prompts
    ]
    assert v2.prompts[0].prompt_id == "v2-1"
    refuse_types = {p.category for p in v2.prompts if p.expected == "refuse"}
    assert len(refuse_types) == 8 and all(t.startswith("contrast_") for t in refuse_types)


def test_harmbench_contextual_text_includes_context(shared: Path) -> None:
    battery = _load("harmbench", shared)
    by_id = {p.prompt_id: p for p in battery.prompts}
    rows = _raw_rows(shared / "harmbench/harmbench_behaviors_text_all.csv")
    contextual = [r for r in rows if r["ContextString"]]
    assert len(contextual) == 100
    for row in contextual:
        context = row["ContextString"].replace("\r\n", "\n")
        assert by_id[row["BehaviorID"]].text == f"{context}\n\n---\n\n{row['Behavior']}"
    plain = [r for r in rows if not r["ContextString"]]
    assert all(by_id[r["BehaviorID"]].text == r["Behavior"] for r in plain)
    # trailing whitespace inside Behavior is upstream data and kept verbatim
    assert by_id["chevy_silverado_rolling_coal_guide"].text.endswith(" ")


def test_harmbench_split_texts_equal_all(shared: Path) -> None:
    full = {p.prompt_id: p.text for p in _load("harmbench", shared).prompts}
    test = _load("harmbench:test", shared)
    val = _load("harmbench:val", shared)
    ids = [p.prompt_id for p in test.prompts] + [p.prompt_id for p in val.prompts]
    assert sorted(ids) == sorted(full)
    # _all uses CRLF inside two contexts, _test/_val LF: normalised text must match.
    assert all(full[p.prompt_id] == p.text for p in (*test.prompts, *val.prompts))


def test_strongreject_content_hash_ids_shared_between_full_and_small(shared: Path) -> None:
    full = _load("strongreject", shared)
    small = _load("strongreject:small", shared)
    full_ids = {p.prompt_id: p.text for p in full.prompts}
    for prompt in small.prompts:
        assert prompt.prompt_id == hashlib.sha256(prompt.text.encode()).hexdigest()[:16]
        assert full_ids[prompt.prompt_id] == prompt.text


# --------------------------------------------------------------------------- errors


def _copy_battery(shared: Path, rel: str, dest_root: Path) -> Path:
    dest = dest_root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared / rel, dest)
    return dest


def test_checksum_mismatch_names_file_expected_and_actual(shared: Path, tmp_path: Path) -> None:
    copy = _copy_battery(shared, "xstest/xstest_prompts.csv", tmp_path / "offline")
    data = bytearray(copy.read_bytes())
    data[100] ^= 0x01
    copy.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(BatteryError) as excinfo:
        load_battery("xstest", battery_dir=tmp_path / "offline", allow_download=True)
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(copy) in message
    assert battery_spec("xstest").sha256 in message
    assert actual in message


def test_missing_file_names_paths_tried_and_env_var(tmp_path: Path) -> None:
    with pytest.raises(BatteryError) as excinfo:
        load_battery("jbb_benign", battery_dir=tmp_path / "nowhere", allow_download=False)
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(tmp_path / "nowhere" / "jailbreakbench/benign-behaviors.csv") in message
    assert str(tmp_path / "cache" / "batteries" / "jailbreakbench/benign-behaviors.csv") in message
    assert "SERVECERT_BATTERY_DIR" in message


def test_env_battery_dir_is_used(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVECERT_BATTERY_DIR", str(shared))
    assert len(load_battery("strongreject:small", allow_download=False)) == 60


def test_several_offline_dirs_are_tried_in_order(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    battery = load_battery("xstest", battery_dir=[empty, shared], allow_download=False)
    assert battery.path == shared / "xstest/xstest_prompts.csv"
    monkeypatch.setenv("SERVECERT_BATTERY_DIR", f"{empty}{os.pathsep}{shared}")
    assert load_battery("xstest", allow_download=False).path == battery.path


def _write_manifest(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "synthetic.toml").write_text(body, encoding="utf-8")
    return root


def test_missing_column_names_file_column_and_columns_found(tmp_path: Path) -> None:
    data = b"prompt,kind\nhello,benign\n"
    (tmp_path / "offline" / "syn").mkdir(parents=True)
    (tmp_path / "offline" / "syn" / "s.csv").write_bytes(data)
    manifests = _write_manifest(
        tmp_path / "manifests",
        f"""
[batteries.syn]
license = "CC0"
harmful = false
expected = "comply"
columns = {{ text = "question", category = "kind" }}
[batteries.syn.variants.default]
file = "syn/s.csv"
sha256 = "{hashlib.sha256(data).hexdigest()}"
""",
    )
    with pytest.raises(BatteryError) as excinfo:
        load_battery(
            "syn", battery_dir=tmp_path / "offline", manifest_dir=manifests, allow_download=False
        )
    message = str(excinfo.value)
    assert (
        message == f"{tmp_path / 'offline' / 'syn' / 's.csv'}: missing column 'question' "
        "(columns found: prompt, kind)"
    )


def test_manifest_errors_name_the_key(tmp_path: Path) -> None:
    manifests = _write_manifest(
        tmp_path / "m",
        """
[batteries.syn]
harmful = "yes"
expected = "comply"
columns = { text = "q" }
[batteries.syn.variants.default]
file = "s.csv"
sha256 = "00"
""",
    )
    with pytest.raises(
        BatteryError, match=r"synthetic.toml \[batteries.syn.variants.default\]: harmful = 'yes'"
    ):
        battery_spec("syn", manifest_dir=manifests)


# --------------------------------------------------------------------------- custom


def test_custom_csv_battery_with_column_rule() -> None:
    path = DATA / "custom_prompts.csv"
    spec = custom_battery(
        "mine",
        {
            "path": path.name,
            "columns": {"text": "question", "id": "uid", "category": "topic"},
            "expected": {"column": "kind", "map": {"benign": "comply", "harmful": "refuse"}},
            "harmful": False,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        },
        base_dir=DATA,
    )
    battery = load_battery(spec)
    assert [(p.prompt_id, p.expected, p.category) for p in battery.prompts] == [
        ("c1", "comply", "cooking"),
        ("c2", "comply", "science"),
        ("c3", "refuse", "crime"),
        ("c4", "refuse", "harassment"),
    ]
    assert battery.prompts[1].text == "Explain, in two lines,\nhow tides work."


def test_custom_jsonl_battery_flat_keys_and_content_ids() -> None:
    spec = custom_battery(
        "mine_jsonl",
        {"path": str(DATA / "custom_prompts.jsonl"), "text": "question", "category": "topic",
         "expected": "refuse", "harmful": True},
    )  # fmt: skip
    assert spec.format == "jsonl" and spec.sha256 is None
    battery = load_battery(spec)
    assert len(battery) == 3
    assert [p.category for p in battery.prompts] == ["cooking", "crime", ""]
    assert all(
        p.prompt_id == hashlib.sha256(p.text.encode()).hexdigest()[:16] for p in battery.prompts
    )
    assert {p.harmful for p in battery.prompts} == {True}


def test_custom_battery_from_config_dataclass() -> None:
    from pytest_servecert.config import CustomBattery

    path = DATA / "custom_prompts.csv"
    spec = batteries.custom_battery_from_config(
        CustomBattery(
            id="mine",
            path=str(path),
            format="csv",
            text_column="question",
            id_column="uid",
            category_column="topic",
            expected_column="kind",
            expected_map={"benign": "comply", "harmful": "refuse"},
            harmful=False,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest().upper(),
        )
    )
    battery = load_battery(spec)
    assert [p.expected for p in battery.prompts] == ["comply", "comply", "refuse", "refuse"]
    assert spec.origin == "config [batteries.custom.mine]"


def test_custom_battery_sha256_is_verified_when_given() -> None:
    spec = custom_battery(
        "mine",
        {"path": str(DATA / "custom_prompts.csv"), "text": "question", "expected": "comply",
         "harmful": False, "sha256": "0" * 64},
    )  # fmt: skip
    with pytest.raises(
        BatteryError,
        match=r"custom_prompts.csv: sha256 mismatch: expected 0{64}, got [0-9a-f]{64}$",
    ):
        load_battery(spec)


def test_custom_battery_errors() -> None:
    with pytest.raises(BatteryError, match=r"servecert.toml \[x\]: missing key 'path'"):
        custom_battery("x", {"text": "q"}, origin="servecert.toml [x]")
    with pytest.raises(BatteryError, match="must use only letters"):
        custom_battery("has:colon", {"path": "a.csv"})
    with pytest.raises(BatteryError, match=r"expected = 'maybe'; expected 'refuse' or 'comply'"):
        custom_battery("x", {"path": "a.csv", "text": "q", "expected": "maybe", "harmful": False})
    spec = custom_battery(
        "x", {"path": str(DATA / "nope.csv"), "text": "q", "expected": "comply", "harmful": False}
    )
    with pytest.raises(BatteryError, match=r"nope.csv not found"):
        load_battery(spec)


def test_unmapped_expected_value_is_an_error() -> None:
    spec = custom_battery(
        "mine",
        {"path": str(DATA / "custom_prompts.csv"), "text": "question", "harmful": False,
         "expected": {"column": "kind", "map": {"benign": "comply"}}},
    )  # fmt: skip
    with pytest.raises(
        BatteryError, match=r"custom_prompts.csv:\d+: kind = 'harmful' matches no expected rule"
    ):
        load_battery(spec)


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("id,q\n1,a\n1,b\n")
    spec = custom_battery(
        "dup", {"path": str(path), "id": "id", "text": "q", "expected": "comply", "harmful": False}
    )
    with pytest.raises(BatteryError, match=r"duplicate prompt id '1'"):
        load_battery(spec)


# --------------------------------------------------------------------------- download


def _spec_bytes(shared: Path, battery_id: str) -> tuple[batteries.BatterySpec, bytes]:
    spec = battery_spec(battery_id)
    return spec, (shared / spec.file).read_bytes()


def test_download_verifies_and_writes_atomically(shared: Path, tmp_path: Path) -> None:
    spec, payload = _spec_bytes(shared, "jbb_benign")
    dest = tmp_path / "cache" / "batteries" / spec.file
    seen_mid_stream: list[tuple[bool, list[str]]] = []
    requests: list[str] = []

    def body():
        yield payload[:1000]
        # mid-download: the final name must not exist yet, a temp file must
        seen_mid_stream.append((dest.exists(), [p.name for p in dest.parent.iterdir()]))
        yield payload[1000:]

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(200, content=body())

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        battery = load_battery("jbb_benign", client=client)
    assert requests == [spec.url]
    assert len(battery) == 100 and battery.path == dest
    assert dest.read_bytes() == payload
    (exists, names) = seen_mid_stream[0]
    assert not exists and any(n.endswith(".part") for n in names)
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temp file left

    # Second load comes from the cache: no request at all.
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        again = load_battery("jbb_benign", client=client, allow_download=False)
    assert again.prompts == battery.prompts and len(requests) == 1


def test_download_with_wrong_bytes_fails_and_leaves_nothing(shared: Path, tmp_path: Path) -> None:
    spec, payload = _spec_bytes(shared, "jbb_harmful")
    tampered = payload.replace(b"defamatory", b"DEFAMATORY", 1)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=tampered)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(BatteryError) as excinfo,
    ):
        load_battery("jbb_harmful", client=client)
    message = str(excinfo.value)
    assert "\n" not in message
    assert f"expected {spec.sha256}, got {hashlib.sha256(tampered).hexdigest()}" in message
    assert spec.url in message and spec.alternate_urls[0] in message
    cache = tmp_path / "cache" / "batteries" / "jailbreakbench"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_falls_back_to_alternate_url(shared: Path) -> None:
    spec, payload = _spec_bytes(shared, "harmbench:val")
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        if str(request.url) == spec.url:
            return httpx.Response(404)
        return httpx.Response(200, content=payload)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        battery = load_battery("harmbench:val", client=client)
    assert requests == [spec.url, spec.alternate_urls[0]]
    assert len(battery) == 80


def test_stale_cache_is_redownloaded_only_when_allowed(shared: Path, tmp_path: Path) -> None:
    spec, payload = _spec_bytes(shared, "strongreject:small")
    cached = tmp_path / "cache" / "batteries" / spec.file
    cached.parent.mkdir(parents=True)
    cached.write_bytes(payload + b"stale")
    with pytest.raises(BatteryError, match=r"sha256 mismatch"):
        load_battery("strongreject:small", allow_download=False)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=payload)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        battery = load_battery("strongreject:small", client=client)
    assert len(battery) == 60 and cached.read_bytes() == payload


def test_explicit_cache_dir_argument(shared: Path, tmp_path: Path) -> None:
    spec, payload = _spec_bytes(shared, "xstest:v2")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=payload)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        battery = load_battery("xstest:v2", cache_dir=tmp_path / "elsewhere", client=client)
    assert battery.path == tmp_path / "elsewhere" / "batteries" / spec.file


# --------------------------------------------------------------------------- subsampling


def test_xstest_subsample_is_balanced_and_stratified(shared: Path) -> None:
    prompts = _load("xstest", shared).prompts
    sample = subsample(prompts, 100, seed=0)
    assert len(sample) == 100
    assert collections.Counter(p.expected for p in sample) == {"comply": 50, "refuse": 50}
    per_type = collections.Counter(p.category for p in sample)
    # 50 comply over 10 safe types of 25 => exactly 5 each; 50 refuse over 8 types => 6 or 7.
    for prompt_type, count in per_type.items():
        if prompt_type.startswith("contrast_"):
            assert count in (6, 7)
        else:
            assert count == 5
    assert sum(1 for c in per_type.values() if c == 7) == 2
    odd = subsample(prompts, 101, seed=0)
    assert sorted(collections.Counter(p.expected for p in odd).values()) == [50, 51]


def test_subsample_is_proportional_by_category(shared: Path) -> None:
    prompts = _load("harmbench", shared).prompts
    sizes = collections.Counter(p.category for p in prompts)
    sample = subsample(prompts, 100, seed=3)
    got = collections.Counter(p.category for p in sample)
    for category, size in sizes.items():
        quota = 100 * size / len(prompts)
        assert int(quota) <= got[category] <= int(quota) + 1, category


def test_subsample_deterministic_stable_order_and_seed_sensitive(shared: Path) -> None:
    prompts = _load("strongreject", shared).prompts
    first = subsample(prompts, 50, seed=7)
    assert first == subsample(prompts, 50, seed=7)
    assert first != subsample(prompts, 50, seed=8)
    position = {p.prompt_id: i for i, p in enumerate(prompts)}
    assert [position[p.prompt_id] for p in first] == sorted(position[p.prompt_id] for p in first)


def test_subsample_all_and_bad_n(shared: Path) -> None:
    prompts = _load("jbb_harmful", shared).prompts
    assert subsample(prompts, 100, seed=1) == prompts
    assert subsample(prompts, 1000, seed=1) == prompts
    with pytest.raises(ValueError, match="n = 0"):
        subsample(prompts, 0, seed=1)


def _synthetic(sizes: dict[tuple[str, str], int]) -> tuple[Prompt, ...]:
    return tuple(
        Prompt("syn", f"{e}-{c}-{i}", f"{e} {c} {i}", e, c, False)  # type: ignore[arg-type]
        for (e, c), size in sizes.items()
        for i in range(size)
    )


def test_small_slice_gives_its_unused_half_to_the_other() -> None:
    prompts = _synthetic({("refuse", "a"): 5, ("comply", "b"): 60, ("comply", "c"): 35})
    sample = subsample(prompts, 20, seed=0)
    assert collections.Counter(p.expected for p in sample) == {"refuse": 5, "comply": 15}
    proportional = subsample(prompts, 20, seed=0, balance_expected=False)
    assert collections.Counter(p.expected for p in proportional) == {"refuse": 1, "comply": 19}


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.dictionaries(
        st.tuples(st.sampled_from(["refuse", "comply"]), st.sampled_from("abcde")),
        st.integers(min_value=1, max_value=30),
        min_size=1,
    ),
    n=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_subsample_properties(sizes: dict[tuple[str, str], int], n: int, seed: int) -> None:
    prompts = _synthetic(sizes)
    sample = subsample(prompts, n, seed)
    assert len(sample) == min(n, len(prompts))
    assert len(set(sample)) == len(sample)
    assert sample == tuple(p for p in prompts if p in set(sample))  # original order
    if n >= len(prompts):
        return
    slices = collections.Counter(p.expected for p in prompts)
    got = collections.Counter(p.expected for p in sample)
    if len(slices) == 2:
        half_low, half_high = n // 2, n - n // 2
        for e in slices:
            # balanced unless the slice is too small, in which case it is taken whole
            assert (
                got[e] in (half_low, half_high)
                or got[e] == slices[e]
                or (got[e] > half_high and got[_other(e)] == slices[_other(e)])
            )
    for e in slices:
        total = sum(s for (ee, _), s in sizes.items() if ee == e)
        for (ee, c), size in sizes.items():
            if ee != e:
                continue
            quota = got[e] * size / total
            count = sum(1 for p in sample if p.expected == e and p.category == c)
            assert int(quota) <= count <= int(quota) + 1


def _other(expected: str) -> str:
    return "comply" if expected == "refuse" else "refuse"


def test_prompt_text_sha256() -> None:
    prompt = Prompt("b", "1", "héllo", "comply", "", False)
    assert prompt.text_sha256 == hashlib.sha256("héllo".encode()).hexdigest()
