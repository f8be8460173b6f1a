"""Addresses a DNS answer must never send a probe to (instance metadata, private networks,
loopback) are refused before any connection, unless ``probe.allow_addresses`` allows them.

No packet leaves loopback here: every TCP connection the event loop opens is recorded and one to
any address outside 127/8 is refused on the spot (never attempted), so a refusal that failed
would show as a recorded address, not as traffic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_peers import CDN, ORIGIN, UNTRUSTED, HostileWorld, answer_names, http_response

from monitor.config import parse_config
from monitor.core.model import Path as RoutePath
from monitor.core.model import RoutingState, VantageRound
from monitor.domain.reasons import Reason
from monitor.round.run import run_round

LOOPBACK_REGION, LOOPBACK_OTHER = "127.63.1.1", "127.63.2.1"  # written in the config, not
METADATA, PRIVATE, ALB_PRIVATE = "169.254.169.254", "10.1.2.3", "10.0.0.7"
ALB_NAME = "alb-eu.example.com"


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host a TCP connection was asked for; anything off loopback is refused unopened."""
    asked: list[str] = []
    real = asyncio.base_events.BaseEventLoop.create_connection

    async def guarded(self: Any, protocol_factory: Any, host: Any = None, *args: Any,
                      **kwargs: Any) -> Any:
        asked.append(str(host))
        if not str(host).startswith("127."):
            raise ConnectionRefusedError(f"test guard: no connection to {host}")
        return await real(self, protocol_factory, host, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", guarded)
    return asked


@pytest.fixture
def world(tmp_path: Path) -> Iterator[HostileWorld]:
    peers = HostileWorld(
        tmp_path, names={ORIGIN: [METADATA], CDN: [PRIVATE], ALB_NAME: [ALB_PRIVATE]},
        https=(LOOPBACK_REGION, LOOPBACK_OTHER), dns_address="127.63.0.53",
        default=lambda head: http_response(200, b'{"region": "us-east-1"}',
                                           headers=(("x-origin-region", "us-east-1"),)))
    try:
        yield peers
    finally:
        peers.close()


def one_round(world: HostileWorld, **probe: Any) -> VantageRound:
    document = world.config({"us-east-1": [LOOPBACK_REGION]}, cdn=True, probe=probe)
    document["regions"]["eu-west-1"] = {"alb_name": ALB_NAME}
    config = parse_config(json.dumps(document)).config
    return asyncio.run(run_round(config, disturbed_s=UNTRUSTED)).vantage_points[0]


def test_metadata_and_private_answers_are_refused_before_connecting(
        world: HostileWorld, connections: list[str]) -> None:
    result = one_round(world)
    origin, cdn = result.path(RoutePath.ORIGIN), result.path(RoutePath.CDN)
    assert origin is not None
    assert cdn is not None
    for path, address in ((origin, METADATA), (cdn, PRIVATE)):
        assert (path.verdict.state, path.verdict.reason) == (RoutingState.UNKNOWN,
                                                            Reason.ADDRESS_NOT_ALLOWED)
        assert address in path.verdict.detail
        assert "connect" not in path.phases
    eu = next(r for r in result.regions if r.region == "eu-west-1")
    assert (eu.healthy, eu.reason) == (False, Reason.ADDRESS_NOT_ALLOWED)
    assert {e.reason for e in result.errors} >= {Reason.ADDRESS_NOT_ALLOWED}
    assert not [host for host in connections if not host.startswith("127.")], connections
    us = next(r for r in result.regions if r.region == "us-east-1")
    assert us.healthy  # a region address written in the config is trusted as written


def test_a_loopback_answer_is_refused_unless_allowed(
        world: HostileWorld, connections: list[str]) -> None:
    world.dns.answer = answer_names(
        {ORIGIN: [LOOPBACK_OTHER], CDN: [LOOPBACK_OTHER], ALB_NAME: [LOOPBACK_OTHER]})
    refused = one_round(world).path(RoutePath.ORIGIN)
    assert refused is not None
    assert refused.verdict.reason is Reason.ADDRESS_NOT_ALLOWED  # not a written address
    allowed = one_round(world, allow_addresses=["127.63.0.0/16"]).path(RoutePath.ORIGIN)
    assert allowed is not None
    assert allowed.verdict.reason is not Reason.ADDRESS_NOT_ALLOWED
    assert allowed.status == 200
