"""DNS probe: one query through a recursive resolver or at an authoritative server (with ECS).

UDP first, TCP when the answer is truncated. Returns :class:`DnsEvidence`; a failure is kept in
``evidence.error`` (a :class:`~probes.errors.DnsError`) together with whatever was measured.

Over UDP, a datagram from another address, with another query id or for another question is a
stray (or a spoofing attempt) and is ignored while the real answer is awaited, up to the timeout;
one with our id that cannot be parsed is the server's answer, and malformed.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Literal, TypeAlias

# before dnspython: its feature checks cost ~20 ms of a cold start (see the module)
from probes import _dns_features  # noqa: F401
from probes.records import record

# isort: split
import dns.asyncbackend
import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from probes.errors import (
    DnsError,
    DnsNoAnswer,
    DnsNxdomain,
    DnsRefused,
    DnsServfail,
    dns_error,
)

__all__ = ["DnsEvidence", "DnsQuery", "Via", "answer_evidence", "evidence_from_wire", "probe_dns"]

_MAX_CHAIN = 16  # a longer CNAME chain is a loop or an attack; stop following
_MAX_STRAY_DATAGRAMS = 64  # ignored while waiting for the answer; more is a flood, not noise


Via: TypeAlias = Literal["recursive", "authoritative"]
"""Who a query goes to: a recursive resolver, or an authoritative server (no recursion, ECS)."""


@record
class DnsQuery:
    """What to ask and whom: ``server`` is an IP address, ``via`` says which role it plays."""

    qname: str
    server: str
    port: int = 53
    via: Via = "recursive"
    rdtype: str = "A"
    client_subnet: str | None = None
    source_address: str | None = None
    timeout_s: float = 2.0


@record
class DnsEvidence:
    qname: str
    server: str
    via: Via
    client_subnet: str | None
    rcode: str | None
    addresses: tuple[str, ...]
    cname_chain: tuple[str, ...]
    ttl: int | None
    ecs_scope: int | None
    transport: str
    duration_seconds: float
    authoritative_answer: bool = False
    error: DnsError | None = None


def _ecs_option(subnet: str) -> dns.edns.ECSOption:
    network = ipaddress.ip_network(subnet, strict=False)
    return dns.edns.ECSOption(str(network.network_address), network.prefixlen)


def build_query(query: DnsQuery) -> dns.message.QueryMessage:
    options: list[dns.edns.Option] = (
        [_ecs_option(query.client_subnet)] if query.client_subnet else []
    )
    message = dns.message.make_query(
        query.qname, query.rdtype, use_edns=0, payload=1232, options=options
    )
    if query.via == "authoritative":
        message.flags &= ~dns.flags.RD  # an authoritative server does not recurse
    return message


def read_answer(
    response: dns.message.Message, qname: str, rdtype: str
) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    """Follow the CNAME chain from ``qname``; return (addresses, chain, minimum TTL)."""
    wanted = dns.rdatatype.from_text(rdtype)
    name = dns.name.from_text(qname)
    chain: list[str] = []
    ttls: list[int] = []
    for _ in range(_MAX_CHAIN):
        final = next(
            (r for r in response.answer if r.name == name and r.rdtype == wanted), None
        )
        if final is not None:
            ttls.append(final.ttl)
            return tuple(sorted(r.to_text() for r in final)), tuple(chain), min(ttls)
        alias = next(
            (r for r in response.answer
             if r.name == name and r.rdtype == dns.rdatatype.CNAME), None
        )
        if alias is None:
            break
        ttls.append(alias.ttl)
        name = next(iter(alias)).target
        chain.append(name.to_text(omit_final_dot=True))
    return (), tuple(chain), min(ttls) if ttls else None


def _ecs_scope(response: dns.message.Message) -> int | None:
    for option in response.options:
        if isinstance(option, dns.edns.ECSOption):
            return int(option.scopelen)
    return None


_RCODE_ERRORS: dict[int, type[DnsError]] = {
    dns.rcode.SERVFAIL: DnsServfail,
    dns.rcode.NXDOMAIN: DnsNxdomain,
    dns.rcode.REFUSED: DnsRefused,
}


def _same_endpoint(af: int, sender: tuple[object, ...], destination: tuple[object, ...]) -> bool:
    try:
        return (dns.inet.inet_pton(af, str(sender[0])) == dns.inet.inet_pton(
            af, str(destination[0])) and sender[1] == destination[1])
    except (ValueError, IndexError, OSError):
        return False


async def _exchange_udp(request: dns.message.Message, query: DnsQuery,
                        expiration: float) -> dns.message.Message:
    """Send the query and wait for its answer, ignoring stray datagrams (bounded: the timeout,
    and at most :data:`_MAX_STRAY_DATAGRAMS` of them)."""
    backend = dns.asyncbackend.get_default_backend()
    af = dns.inet.af_for_address(query.server)
    destination = dns.inet.low_level_address_tuple((query.server, query.port), af)
    source = (query.source_address, 0) if query.source_address else None
    query_id = request.id.to_bytes(2, "big")
    sock = await backend.make_socket(  # type: ignore[no-untyped-call]
        af, socket.SOCK_DGRAM, 0, source, None)
    async with sock:
        await dns.asyncquery.send_udp(sock, request, destination, expiration)
        for _ in range(_MAX_STRAY_DATAGRAMS):
            wire, sender = await sock.recvfrom(65535, max(0.0, expiration - time.time()))
            if not _same_endpoint(af, sender, destination) or wire[:2] != query_id:
                continue  # another sender, or another query's id
            response = dns.message.from_wire(wire)  # our id: a parse error is the answer's
            if request.is_response(response):
                return response
        raise ValueError(f"more than {_MAX_STRAY_DATAGRAMS} datagrams that do not answer the "
                         f"query")


async def probe_dns(query: DnsQuery) -> DnsEvidence:
    """Send one query; never raises for a DNS problem (it is in ``evidence.error``)."""
    target = f"{query.via} {query.server}:{query.port}"
    started = time.perf_counter()
    expiration = time.time() + query.timeout_s
    transport = "udp"
    request = build_query(query)
    try:
        response = await _exchange_udp(request, query, expiration)
        if response.flags & dns.flags.TC:
            transport = "tcp"
            response = await dns.asyncquery.tcp(
                request, query.server, timeout=max(0.0, expiration - time.time()),
                port=query.port, source=query.source_address)
    except (dns.exception.DNSException, OSError, EOFError, ValueError) as exc:
        return DnsEvidence(query.qname, f"{query.server}:{query.port}", query.via,
                           query.client_subnet, None, (), (), None, None, transport,
                           time.perf_counter() - started,
                           error=dns_error(exc, target=target, timeout_s=query.timeout_s))
    return answer_evidence(query, response, transport=transport,
                           duration=time.perf_counter() - started)


def evidence_from_wire(query: DnsQuery, wire: bytes, *, transport: str = "udp",
                       duration: float = 0.0) -> DnsEvidence:
    """The evidence of one DNS message as received (a parse failure is ``dns_malformed``)."""
    try:
        response = dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, EOFError) as exc:
        target = f"{query.via} {query.server}:{query.port}"
        return DnsEvidence(query.qname, f"{query.server}:{query.port}", query.via,
                           query.client_subnet, None, (), (), None, None, transport, duration,
                           error=dns_error(exc, target=target, timeout_s=query.timeout_s))
    return answer_evidence(query, response, transport=transport, duration=duration)


def answer_evidence(query: DnsQuery, response: dns.message.Message, *, transport: str,
                    duration: float) -> DnsEvidence:
    """What an answer says: addresses along the CNAME chain, TTL, ECS scope, typed rcode errors."""
    target = f"{query.via} {query.server}:{query.port}"
    error: DnsError | None = None
    rcode = response.rcode()
    addresses, chain, ttl = read_answer(response, query.qname, query.rdtype)
    if rcode in _RCODE_ERRORS:
        error = _RCODE_ERRORS[rcode](f"{dns.rcode.to_text(rcode)} for {query.qname}",
                                     target=target)
    elif rcode != dns.rcode.NOERROR:
        error = DnsError(f"rcode {dns.rcode.to_text(rcode)} for {query.qname}", target=target)
    elif not addresses:
        error = DnsNoAnswer(f"no {query.rdtype} record for {query.qname}", target=target)
    return DnsEvidence(
        qname=query.qname,
        server=f"{query.server}:{query.port}",
        via=query.via,
        client_subnet=query.client_subnet,
        rcode=dns.rcode.to_text(rcode),
        addresses=addresses,
        cname_chain=chain,
        ttl=ttl,
        ecs_scope=_ecs_scope(response),
        transport=transport,
        duration_seconds=duration,
        authoritative_answer=bool(response.flags & dns.flags.AA),
        error=error,
    )
