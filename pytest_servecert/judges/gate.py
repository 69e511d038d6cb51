"""The umbrella gate: adversarial battery content stays on this machine unless allowed.

TR152 stripped GPT-4o from its adversarial runs (``--skip-openai-judge``) so that "no
advbench/jailbreak content leaves the machine". Here the rule is checked *before any
request*: a judge whose endpoint is not loopback may not receive an adversarial battery
unless the config sets ``allow_external_judges = true``.

Loopback means a literal ``localhost``, an address in 127.0.0.0/8, ``::1`` or an IPv4-mapped
loopback (``::ffff:127.0.0.1``). Other host names are *not* resolved: a name that happens to
resolve to 127.0.0.1 today can resolve elsewhere tomorrow, so it counts as external. A judge
without an endpoint (the regex) never leaves the machine.

Batteries are adversarial unless they say otherwise: a plain battery id is treated as
adversarial, and only an object whose ``adversarial`` (or, for
:class:`pytest_servecert.batteries.Battery` / ``BatterySpec``, ``harmful``) attribute is
``False`` is let through. XSTest's manifest marks it harmful: it has an unsafe slice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .base import Judge, JudgeError, JudgeItem, Judgement, JudgeSpec

__all__ = [
    "BatteryRoute",
    "JudgeRoutingError",
    "check_judge_routing",
    "is_loopback_endpoint",
    "judge_battery",
]


class JudgeRoutingError(JudgeError):
    """An adversarial battery would be sent to a non-loopback judge."""


@dataclass(frozen=True, slots=True)
class BatteryRoute:
    """What the gate needs to know about a battery."""

    id: str
    adversarial: bool = True


def _host(endpoint: str) -> str | None:
    return urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}").hostname


def is_loopback_endpoint(endpoint: str | None) -> bool:
    """True if ``endpoint`` (a URL or ``host[:port]``) is on this machine's loopback."""
    if endpoint is None:
        return True
    host = _host(endpoint)
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _spec_of(judge: Judge | JudgeSpec) -> JudgeSpec:
    return judge if isinstance(judge, JudgeSpec) else judge.spec


def _route_of(battery: str | BatteryRoute | Any) -> BatteryRoute:
    if isinstance(battery, BatteryRoute):
        return battery
    if isinstance(battery, str):
        return BatteryRoute(battery)
    battery_id = getattr(battery, "id", None)
    if not isinstance(battery_id, str):
        raise TypeError(f"battery {battery!r}: expected a battery id or an object with .id")
    flag = getattr(battery, "adversarial", getattr(battery, "harmful", True))
    return BatteryRoute(battery_id, bool(flag))


def check_judge_routing(
    judges: Iterable[Judge | JudgeSpec],
    batteries: Iterable[str | BatteryRoute | Any],
    allow_external_judges: bool,
) -> None:
    """Refuse to route an adversarial battery to a non-loopback judge.

    Parameters
    ----------
    judges:
        Judges (or their specs) that will label the batteries' responses.
    batteries:
        Battery ids (treated as adversarial), :class:`BatteryRoute`, or objects with an ``id``
        and an ``adversarial`` or ``harmful`` flag (loaded batteries, battery specs).
    allow_external_judges:
        The config's explicit permission (``[judges] allow_external_judges``).

    Raises
    ------
    JudgeRoutingError
        One line naming the first offending judge and battery, and the setting that allows it.
    """
    if allow_external_judges:
        return
    routes = [_route_of(b) for b in batteries]
    for judge in judges:
        spec = _spec_of(judge)
        if is_loopback_endpoint(spec.endpoint):
            continue
        for route in routes:
            if route.adversarial:
                where = _host(spec.endpoint or "")
                raise JudgeRoutingError(
                    f"judge {spec.name!r} ({spec.kind} at {where}) is not on loopback and battery "
                    f"{route.id!r} is adversarial: its prompts and responses may not leave this "
                    "machine; set [judges] allow_external_judges = true to allow it"
                )


async def judge_battery(
    judge: Judge,
    battery: str | BatteryRoute | Any,
    items: Sequence[JudgeItem],
    *,
    allow_external_judges: bool,
) -> list[Judgement]:
    """Check the gate for (judge, battery), then ``await judge.judge_many(items)``.

    The check runs before the judge is touched, so a refused route sends nothing.
    """
    check_judge_routing([judge], [battery], allow_external_judges)
    return await judge.judge_many(items)
