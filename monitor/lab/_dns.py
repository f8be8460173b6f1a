"""The lab's authoritative DNS, the Route 53 stand-in: latency-policy answers per client.

The client is the vantage point whose client subnet holds the query's EDNS Client Subnet, else
the one (or the edge) whose address sent the query. UDP and TCP on the same port.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import cast

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from probes.records import record

__all__ = ["DnsDecision", "LabDns", "ZoneData"]

TTL = 60
_TCP_IDLE_S = 10.0
_TCP_MAX_MESSAGES = 100
_TCP_MAX_CONNECTIONS = 50  # the world's select() loop must stay below FD_SETSIZE
_NO_EDNS_PAYLOAD = 512


@record
class DnsDecision:
    """How to answer one client right now: an address list, or a fault."""

    addresses: tuple[str, ...] = ()
    fault: str | None = None  # dns_servfail | dns_timeout | dns_garbage | dns_truncate
    ecs_scope: int = 0
    cname: str | None = None  # the name is an alias of this one, which has the addresses
    addresses_v6: tuple[str, ...] = ()  # the AAAA answer (a dual-stack world)


@record
class ZoneData:
    """The names the server is authoritative for."""

    zones: tuple[str, ...]  # apexes, lower case, no trailing dot
    txt: dict[str, tuple[str, ...]]  # name → TXT strings (e.g. the scenario description)
    ns_address: str


# decide(qname, source address, ECS address or None) → decision, or None: not a served name
Decider = Callable[[str, str, str | None], DnsDecision | None]


def _ecs(query: dns.message.Message) -> dns.edns.ECSOption | None:
    for option in query.options:
        if isinstance(option, dns.edns.ECSOption):
            return option
    return None


def _garbage(wire: bytes) -> bytes:
    """A reply the client matches by id but cannot parse: QR set, counts promise what is absent."""
    query_id = wire[:2] if len(wire) >= 2 else b"\0\0"
    return query_id + b"\x84\x00" + struct.pack("!HHHH", 1, 5, 0, 0) + b"\x07garbage\xff"


class LabDns:
    def __init__(self, address: str, zone: ZoneData, decide: Decider) -> None:
        self.address = address
        self._zone = zone
        self._decide = decide
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, attempts: int = 10) -> int:
        """Bind UDP on a free port and TCP on the same port (retrying if TCP's is taken)."""
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for _ in range(attempts):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.address, 0)
            )
            port: int = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.address, port)
            except OSError as exc:
                transport.close()
                last = exc
                continue
            self._udp = transport
            self.port = port
            return port
        raise OSError(f"no common UDP/TCP port on {self.address}: {last}")

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._tcp_writers):
            writer.transport.abort()

    def respond(self, wire: bytes, source: str, *, udp: bool) -> bytes | None:
        """The reply to one query (None: stay silent); over UDP, TC when it does not fit."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            if len(wire) < 12:
                return None
            return wire[:2] + b"\x80\x01" + b"\0" * 8  # FORMERR, no sections
        response = dns.message.make_response(query, recursion_available=bool(
            query.flags & dns.flags.RD))
        if query.opcode() != 0 or len(query.question) != 1:
            response.set_rcode(dns.rcode.NOTIMP if query.opcode() else dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qname = question.name.to_text(omit_final_dot=True).lower()
        apex = self._apex(qname)
        if apex is None or question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        ecs = _ecs(query)
        decision = self._decide(qname, source, None if ecs is None else str(ecs.address))
        if decision is not None:
            if decision.fault == "dns_timeout":
                return None
            if decision.fault == "dns_garbage":
                return _garbage(wire)
            if decision.fault == "dns_servfail":
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
        response.flags |= dns.flags.AA
        if ecs is not None:
            scope = decision.ecs_scope if decision is not None else 0
            response.use_edns(0, payload=1232, options=[
                dns.edns.ECSOption(str(ecs.address), ecs.srclen, scope)])
        self._fill(response, qname, question.rdtype, apex, decision)
        if not udp:
            return response.to_wire()
        if decision is not None and decision.fault == "dns_truncate":
            return self._truncated(query, response)
        max_size = max(query.payload, _NO_EDNS_PAYLOAD) if query.edns >= 0 else _NO_EDNS_PAYLOAD
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            return self._truncated(query, response)

    @staticmethod
    def _truncated(query: dns.message.Message, full: dns.message.Message) -> bytes:
        reply = dns.message.make_response(query, recursion_available=bool(
            full.flags & dns.flags.RA))
        reply.flags |= dns.flags.AA | dns.flags.TC
        reply.set_rcode(full.rcode())
        return reply.to_wire()

    def _apex(self, qname: str) -> str | None:
        matches = [z for z in self._zone.zones if qname == z or qname.endswith("." + z)]
        return max(matches, key=len) if matches else None

    def _fill(self, response: dns.message.Message, qname: str, rdtype: int, apex: str,
              decision: DnsDecision | None) -> None:
        name = dns.name.from_text(qname)
        in_class = dns.rdataclass.IN
        if decision is not None:
            owner = name
            if decision.cname is not None:
                response.answer.append(dns.rrset.from_text(
                    name, TTL, in_class, dns.rdatatype.CNAME, f"{decision.cname}."))
                owner = dns.name.from_text(decision.cname)
                if rdtype == dns.rdatatype.CNAME:
                    return
            answered = False
            if rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and decision.addresses:
                response.answer.append(dns.rrset.from_text_list(
                    owner, TTL, in_class, dns.rdatatype.A, list(decision.addresses)))
                answered = True
            if rdtype in (dns.rdatatype.AAAA, dns.rdatatype.ANY) and decision.addresses_v6:
                response.answer.append(dns.rrset.from_text_list(
                    owner, TTL, in_class, dns.rdatatype.AAAA, list(decision.addresses_v6)))
                answered = True
            if not answered and decision.cname is None:
                response.authority.append(self._soa(apex))
            return
        if qname == apex:
            if rdtype == dns.rdatatype.SOA:
                response.answer.append(self._soa(apex))
            elif rdtype == dns.rdatatype.NS:
                response.answer.append(dns.rrset.from_text(
                    name, TTL, in_class, dns.rdatatype.NS, f"ns1.{apex}."))
            elif rdtype == dns.rdatatype.TXT and qname in self._zone.txt:
                strings = " ".join(_quote(s) for s in self._zone.txt[qname])
                response.answer.append(dns.rrset.from_text(
                    name, TTL, in_class, dns.rdatatype.TXT, strings))
            else:
                response.authority.append(self._soa(apex))
            return
        if qname == f"ns1.{apex}":
            if rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(
                    name, TTL, in_class, dns.rdatatype.A, self._zone.ns_address))
            else:
                response.authority.append(self._soa(apex))
            return
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(self._soa(apex))

    @staticmethod
    def _soa(apex: str) -> dns.rrset.RRset:
        return dns.rrset.from_text(
            f"{apex}.", TTL, dns.rdataclass.IN, dns.rdatatype.SOA,
            f"ns1.{apex}. hostmaster.{apex}. 1 7200 900 1209600 {TTL}")

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        if len(self._tcp_writers) >= _TCP_MAX_CONNECTIONS:
            writer.transport.abort()
            return
        self._tcp_writers.add(writer)
        peer = writer.get_extra_info("peername")
        source = peer[0] if peer else ""
        try:
            for _ in range(_TCP_MAX_MESSAGES):
                try:
                    (length,) = struct.unpack(
                        "!H", await asyncio.wait_for(reader.readexactly(2), _TCP_IDLE_S))
                    wire = await asyncio.wait_for(reader.readexactly(length), _TCP_IDLE_S)
                except (asyncio.IncompleteReadError, TimeoutError):
                    break
                reply = self.respond(wire, source, udp=False)
                if reply is None:
                    continue  # dns_timeout: the client gives up on its own
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._tcp_writers.discard(writer)
            writer.close()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: LabDns) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = self._server.respond(data, str(addr[0]), udp=True)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

