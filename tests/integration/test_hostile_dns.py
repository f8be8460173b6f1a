"""DNS edge cases against a hostile DNS server on loopback: a TCP fallback closed without an answer
is a typed error; a stray datagram (wrong id, wrong question) is ignored while the real answer is
awaited; the ignoring is bounded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import dns.message
import pytest
from hostile_peers import ORIGIN, UNTRUSTED, DnsPeer, HostileWorld, _Loop, a_records, http_response

from monitor.config import parse_config
from monitor.core.model import Path as RoutePath
from monitor.core.model import RoutingState
from monitor.domain.reasons import Reason
from monitor.round.run import run_round
from probes.dns import DnsQuery, probe_dns
from probes.errors import DnsMalformed, DnsTimeout, DnsTransportError

ANSWER = "127.62.1.1"


@pytest.fixture
def peer() -> Iterator[DnsPeer]:
    loop = _Loop()
    server = DnsPeer("127.62.0.53", lambda query, udp: [a_records(query, [ANSWER])])
    server.start(loop)
    try:
        yield server
    finally:
        loop.run(server.close())
        loop.stop()


def ask(peer: DnsPeer, timeout_s: float = 2.0) -> DnsQuery:
    return DnsQuery(ORIGIN, peer.address, peer.port, source_address="127.62.0.100",
                    timeout_s=timeout_s)


def other_id(query: dns.message.Message) -> bytes:
    wire = bytearray(a_records(query, ["127.62.9.9"]))
    wire[0:2] = ((query.id + 1) % 65536).to_bytes(2, "big")
    return bytes(wire)


def other_question(query: dns.message.Message) -> bytes:
    stray = dns.message.make_query("elsewhere.example.org", "A")
    stray.id = query.id
    return a_records(stray, ["127.62.9.9"])


async def test_a_tcp_fallback_closed_without_an_answer_is_a_typed_error(peer: DnsPeer) -> None:
    peer.answer = lambda query, udp: [a_records(query, [], truncated=True)] if udp else None
    answer = await probe_dns(ask(peer))
    assert isinstance(answer.error, DnsTransportError)
    assert answer.error.reason == "dns_transport"
    assert answer.transport == "tcp"
    assert (ORIGIN, False) in peer.queries


@pytest.mark.parametrize("stray", [other_id, other_question], ids=["wrong id", "wrong question"])
async def test_a_stray_datagram_is_ignored_while_the_answer_is_awaited(
        peer: DnsPeer, stray: object) -> None:
    peer.answer = lambda query, udp: [stray(query), a_records(query, [ANSWER])]  # type: ignore[operator]
    answer = await probe_dns(ask(peer))
    assert answer.error is None, answer.error
    assert answer.addresses == (ANSWER,)


async def test_only_strays_end_at_the_timeout(peer: DnsPeer) -> None:
    peer.answer = lambda query, udp: [other_id(query)]
    answer = await probe_dns(ask(peer, timeout_s=0.3))
    assert isinstance(answer.error, DnsTimeout)


async def test_a_flood_of_strays_is_bounded(peer: DnsPeer) -> None:
    peer.answer = lambda query, udp: [other_id(query)] * 100 + [a_records(query, [ANSWER])]
    answer = await probe_dns(ask(peer))
    assert isinstance(answer.error, DnsMalformed)
    assert "datagrams that do not answer" in str(answer.error)


def test_in_a_round_the_closed_fallback_is_dns_transport_not_deadline(tmp_path: Path) -> None:
    world = HostileWorld(tmp_path, names={}, https=("127.62.1.1",),
                         default=lambda head: http_response(200, b"{}"),
                         dns_address="127.62.0.54")
    try:
        world.dns.answer = (lambda query, udp:
                            [a_records(query, [], truncated=True)] if udp else None)
        document = world.config({"eu-west-1": ["127.62.1.1"]},
                                probe={"allow_addresses": ["127.0.0.0/8"]})
        config = parse_config(json.dumps(document)).config
        result = asyncio.run(run_round(config, disturbed_s=UNTRUSTED)).vantage_points[0]
    finally:
        world.close()
    dns_path = result.path(RoutePath.DNS)
    assert dns_path is not None
    assert (dns_path.verdict.state, dns_path.verdict.reason) == (RoutingState.UNKNOWN,
                                                                Reason.DNS_TRANSPORT)
    assert Reason.INTERNAL_ERROR not in {e.reason for e in result.errors}
