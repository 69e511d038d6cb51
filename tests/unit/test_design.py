"""Designs → contexts → server flags; contexts sharing server flags share one server."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_servecert.config import DesignConfig, load_config
from pytest_servecert.design import contexts, naive_server_count, plan_arms, request_seed, server_plan

ROOT = Path(__file__).resolve().parents[2]
AXES = {"batch_size": (1, 8, 32), "prefix_caching": (False, True), "temperature": (0.0, 0.7, 1.0)}


def test_star_is_center_plus_one_spoke_per_off_center_level():
    ctxs = contexts(DesignConfig(kind="star", axes=AXES))
    assert [c.label for c in ctxs] == [
        "baseline",
        "batch_size=8",
        "batch_size=32",
        "prefix_caching=on",
        "temperature=0.7",
        "temperature=1.0",
    ]
    assert all(len(c.deviates) <= 1 for c in ctxs)
    assert ctxs[2].batch_size == 32 and ctxs[2].temperature == 0.0
    assert ctxs[0].server_levels == {"prefix_caching": False}


def test_full_design_crosses_every_level():
    ctxs = contexts(DesignConfig(kind="full", axes=AXES))
    assert len(ctxs) == 3 * 2 * 3
    assert len({c.levels for c in ctxs}) == 18
    joint = [c for c in ctxs if c.deviates == ("batch_size", "temperature")]
    assert len(joint) == 4  # {8,32} x {0.7,1.0} at prefix off
    assert ctxs[0].label == "baseline"


def resolve(name: str) -> str:
    return {"embedded:draft": "/models/draft"}.get(name, name)


def test_server_flags_per_arm_and_context():
    config = load_config(ROOT / "servecert.toml")
    arms = {a.name: a for a in plan_arms(config)}
    ctxs = contexts(config.design)
    center, prefix_on = ctxs[0], next(c for c in ctxs if c.label == "prefix_caching=on")

    base = server_plan(config, arms["baseline"], center, resolve)
    assert "--no-enable-prefix-caching" in base.args
    assert "--kv-cache-dtype" not in base.args
    assert server_plan(config, arms["baseline"], prefix_on, resolve).args[-1] == "--enable-prefix-caching"

    fp8 = server_plan(config, arms["fp8_kv"], center, resolve)
    assert fp8.args[fp8.args.index("--kv-cache-dtype") + 1] == "fp8"

    spec = server_plan(config, arms["spec_draft"], center, resolve)
    payload = json.loads(spec.args[spec.args.index("--speculative-config") + 1])
    assert payload == {"method": "draft_model", "model": "/models/draft", "num_speculative_tokens": 3}

    aa = server_plan(config, arms["baseline~aa"], center, resolve)
    assert aa.args == base.args and aa.env != base.env  # same flags, separate process


def test_contexts_sharing_server_flags_share_one_server():
    config = load_config(ROOT / "servecert.toml")
    specs = {
        (server_plan(config, arm, ctx, resolve).args, server_plan(config, arm, ctx, resolve).env)
        for arm in plan_arms(config)
        for ctx in contexts(config.design)
    }
    # 4 arms (baseline, fp8, spec, A/A) x 2 prefix-caching levels; batch and temperature are client-side
    assert len(specs) == 8
    assert naive_server_count(config) == 24


def test_request_seed_is_shared_and_stable():
    a = request_seed(0, "xstest", "17", 0)
    assert a == request_seed(0, "xstest", "17", 0)
    assert a != request_seed(0, "xstest", "17", 1)
    assert a != request_seed(1, "xstest", "17", 0)
    assert 0 <= a < 2**31


def test_aa_arm_resamples_sampled_contexts_on_its_own_seed_stream():
    from pytest_servecert.config import SamplingConfig
    from pytest_servecert.design import AA_STREAM, arm_draws

    greedy, sampled = (c for c in contexts(DesignConfig(kind="star", axes=AXES))
                       if c.label in ("baseline", "temperature=0.7"))
    sampling = SamplingConfig(replicates=1, aa_replicates=3)
    assert [(d.replicate, d.stream) for d in arm_draws(sampling, "aa", sampled)] == [
        (0, AA_STREAM), (1, AA_STREAM), (2, AA_STREAM)]
    assert [(d.replicate, d.stream) for d in arm_draws(sampling, "aa", greedy)] == [(0, "")]
    assert [(d.replicate, d.stream) for d in arm_draws(sampling, "candidate", sampled)] == [(0, "")]
    seeds = {request_seed(0, "xstest", "17", r, s) for r, s in ((0, ""), (0, AA_STREAM), (1, AA_STREAM))}
    assert len(seeds) == 3  # independent of the baseline's draw and of each other
    assert request_seed(0, "xstest", "17", 0, "") == request_seed(0, "xstest", "17", 0)  # unchanged


def test_planned_requests_count_the_aa_replicates():
    from pytest_servecert.design import planned_requests

    config = load_config(ROOT / "servecert.toml")
    per_battery = {b: 40 for b in config.batteries.use}
    # 4 arms × 6 contexts × 5 batteries × 40, plus the A/A arm's 2 extra draws in 2 T>0 contexts
    assert planned_requests(config, per_battery) == 4 * 6 * 5 * 40 + 2 * 2 * 5 * 40
