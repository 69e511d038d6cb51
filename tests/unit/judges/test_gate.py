"""The umbrella gate: adversarial batteries never reach a non-loopback judge unless allowed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest

from pytest_servecert.judges.gate import (
    BatteryRoute,
    JudgeRoutingError,
    check_judge_routing,
    is_loopback_endpoint,
    judge_battery,
)
from pytest_servecert.judges.llm import OpenAICompatibleJudge
from pytest_servecert.judges.regex import RegexJudge

from .conftest import llm_spec, make_items, openai_reply


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        (None, True),
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.3.4.5:11434", True),
        ("localhost:11434", True),
        ("http://LOCALHOST.:11434", True),
        ("http://[::1]:8000/v1", True),
        ("http://[::ffff:127.0.0.1]:8000", True),
        ("https://api.openai.com/v1", False),
        ("http://10.0.0.5:11434", False),
        ("http://0.0.0.0:8000", False),
        ("http://192.168.1.20:11434", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.nip.io:8000", False),
        ("http://127.0.0.1@evil.example:8000", False),  # user-info trick: the host is evil.example
        ("http://gpu-box:8000", False),  # names are never resolved
    ],
)
def test_is_loopback_endpoint(endpoint, loopback):
    assert is_loopback_endpoint(endpoint) is loopback


EXTERNAL = llm_spec(
    "openai", "https://api.openai.com/v1", name="gpt4o", model="gpt-4o", family="gpt"
)
LOCAL = llm_spec("ollama", "http://127.0.0.1:11434", name="gemma", model="gemma3:12b")


def test_external_judge_on_adversarial_battery_is_refused():
    with pytest.raises(JudgeRoutingError) as info:
        check_judge_routing(
            [RegexJudge(), LOCAL, EXTERNAL], ["xstest", "harmbench"], allow_external_judges=False
        )
    message = str(info.value)
    assert "\n" not in message
    assert "'gpt4o'" in message and "api.openai.com" in message and "'xstest'" in message
    assert "allow_external_judges = true" in message


def test_allowed_and_harmless_routes_pass():
    check_judge_routing([EXTERNAL], ["harmbench"], allow_external_judges=True)
    check_judge_routing([RegexJudge(), LOCAL], ["harmbench", "jbb"], allow_external_judges=False)
    check_judge_routing(
        [EXTERNAL], [BatteryRoute("benign-canary", adversarial=False)], allow_external_judges=False
    )


def test_batteries_are_adversarial_unless_they_say_otherwise():
    @dataclass
    class Battery:
        id: str
        adversarial: bool

    @dataclass
    class Unmarked:
        id: str

    @dataclass
    class LoadedBattery:  # the shape of pytest_servecert.batteries.Battery
        id: str
        harmful: bool

    check_judge_routing([EXTERNAL], [Battery("canary", False)], allow_external_judges=False)
    check_judge_routing(
        [EXTERNAL], [LoadedBattery("jbb_benign", False)], allow_external_judges=False
    )
    with pytest.raises(JudgeRoutingError, match="'jbb_harmful'"):
        check_judge_routing(
            [EXTERNAL], [LoadedBattery("jbb_harmful", True)], allow_external_judges=False
        )
    with pytest.raises(JudgeRoutingError):
        check_judge_routing([EXTERNAL], [Unmarked("custom")], allow_external_judges=False)
    with pytest.raises(TypeError, match="expected a battery id"):
        check_judge_routing([EXTERNAL], [42], allow_external_judges=False)


def test_a_refused_route_sends_nothing():
    sent = []

    def handler(request):
        sent.append(request)
        return openai_reply("REFUSAL")

    judge = OpenAICompatibleJudge(EXTERNAL, transport=httpx.MockTransport(handler))
    with pytest.raises(JudgeRoutingError):
        asyncio.run(judge_battery(judge, "harmbench", make_items(3), allow_external_judges=False))
    assert sent == []
    out = asyncio.run(judge_battery(judge, "harmbench", make_items(3), allow_external_judges=True))
    assert len(out) == 3 and len(sent) == 3
