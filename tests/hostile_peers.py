"""Hostile peers for tests: an HTTPS server and a DNS server on loopback that answer whatever a
test tells them to, each on its own 127.x address and a port the kernel chose, each running its
own event loop in a thread (so a probe under test on another loop meets them over real sockets).

``HostileWorld`` puts them together with a configuration: a DNS server that answers the origin
name (and the CDN name) with addresses of the test's choosing, and HTTPS servers on those
addresses sharing one port (the config's ``service.port``) whose answers the test writes as raw
bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dns.flags
import dns.message
import dns.rrset
import trustme
import yaml

ORIGIN = "global-alb.example.com"
CDN = "app.example.com"
UNTRUSTED = float("inf")
"""``run_round(disturbed_s=UNTRUSTED)``: measurement trust off, so that what a test asserts about
hostile answers does not hang on a busy machine's timing."""

RawAnswer = Callable[[bytes], bytes | None]
"""Request head (request line and headers) → the raw HTTP response (None: close silently; b"":
say nothing until the client gives up)."""

DnsAnswer = Callable[[dns.message.Message, bool], list[bytes] | None]
"""(query, over UDP?) → the datagrams (or the one TCP message) to send; None: no answer (over
TCP: close the connection without one)."""


class _Loop:
    """An event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        with contextlib.suppress(RuntimeError):
            self.loop.close()


def http_response(status: int = 200, body: bytes = b"", *,
                  headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A complete HTTP/1.1 response with Content-Length and Connection: close."""
    head = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers),
            f"content-length: {len(body)}", "connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class TlsPeers:
    """HTTPS servers on several addresses sharing one port; ``answers[address]`` says what each
    answers (raw bytes), default: whatever ``default`` says."""

    addresses: tuple[str, ...]
    certificate: trustme.LeafCert
    default: RawAnswer
    answers: dict[str, RawAnswer] = field(default_factory=dict)
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    port: int = 0

    def start(self, loop: _Loop) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.certificate.configure_cert(context)
        self._servers: list[asyncio.Server] = []
        for _ in range(20):  # the addresses share the first one's port; retry if it is taken
            try:
                self._servers = [loop.run(asyncio.start_server(
                    self._handler(self.addresses[0]), self.addresses[0], 0, ssl=context))]
                self.port = self._servers[0].sockets[0].getsockname()[1]
                for address in self.addresses[1:]:
                    self._servers.append(loop.run(asyncio.start_server(
                        self._handler(address), address, self.port, ssl=context)))
                return
            except OSError:
                for server in self._servers:
                    server.close()
        raise OSError(f"no common port for {self.addresses}")

    async def close(self) -> None:
        for server in self._servers:
            server.close()

    def _handler(self, address: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                 Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append((address, head))
                reply = self.answers.get(address, self.default)(head)
                if reply == b"":  # silent: the client's own timeout ends this
                    await reader.read()
                elif reply is not None:
                    writer.write(reply)
                    await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ssl.SSLError):
                pass
            finally:
                writer.close()
        return handle


class DnsPeer:
    """A DNS server (UDP and TCP on one port) answering as ``answer`` says."""

    def __init__(self, address: str, answer: DnsAnswer) -> None:
        self.address = address
        self.answer = answer
        self.port = 0
        self.queries: list[tuple[str, bool]] = []  # (name, over UDP?)
        self._closers: list[Callable[[], object]] = []

    def start(self, loop: _Loop) -> None:
        self.port = loop.run(self._bind())

    async def _bind(self) -> int:
        running = asyncio.get_running_loop()
        for _ in range(20):
            transport, _ = await running.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.address, 0))
            port = cast(int, transport.get_extra_info("sockname")[1])
            try:
                server = await asyncio.start_server(self._tcp, self.address, port)
            except OSError:
                transport.close()
                continue
            self._closers = [transport.close, server.close]
            return port
        raise OSError(f"no common UDP/TCP port on {self.address}")

    async def close(self) -> None:
        for close in self._closers:
            close()

    def _answer(self, query: dns.message.Message, udp: bool) -> list[bytes]:
        self.queries.append((query.question[0].name.to_text(omit_final_dot=True).lower(), udp))
        return self.answer(query, udp) or []

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            query = dns.message.from_wire(await reader.readexactly(length))
            for reply in self._answer(query, False):
                writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, peer: DnsPeer) -> None:
        self._peer = peer
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        query = dns.message.from_wire(data)
        for reply in self._peer._answer(query, True):
            assert self._transport is not None
            self._transport.sendto(reply, addr)


def a_records(query: dns.message.Message, addresses: list[str], *, ttl: int = 60,
              truncated: bool = False) -> bytes:
    """The answer to ``query`` with these A records (or an empty TC answer)."""
    response = dns.message.make_response(query)
    if truncated:
        response.flags |= dns.flags.TC
        return response.to_wire()
    if addresses:
        response.answer.append(dns.rrset.from_text_list(
            query.question[0].name, ttl, "IN", "A", addresses))
    return response.to_wire()


def answer_names(names: dict[str, list[str]]) -> DnsAnswer:
    """A DNS answer function: A records for the names given, an empty answer otherwise."""
    def answer(query: dns.message.Message, udp: bool) -> list[bytes]:
        name = query.question[0].name.to_text(omit_final_dot=True).lower()
        return [a_records(query, names.get(name, []))]
    return answer


class HostileWorld:
    """A DNS server on ``dns_address`` answering ``names`` and HTTPS servers on ``https``
    addresses (sharing one port) answering ``default`` unless a test sets ``tls.answers``."""

    def __init__(self, tmp_path: Path, *, names: dict[str, list[str]],
                 https: tuple[str, ...], default: RawAnswer,
                 dns_address: str = "127.61.0.53") -> None:
        self.ca = trustme.CA()
        self.ca_path = tmp_path / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self._loop = _Loop()
        self.dns = DnsPeer(dns_address, answer_names(names))
        self.dns.start(self._loop)
        self.tls = TlsPeers(https, self.ca.issue_cert(ORIGIN, CDN), default)
        self.tls.start(self._loop)
        self._tmp = tmp_path

    def config(self, regions: dict[str, list[str]], *, cdn: bool = False,
               source: str = "127.61.0.100", **sections: Any) -> dict[str, Any]:
        service: dict[str, Any] = {"origin_name": ORIGIN, "port": self.tls.port,
                                   "ca_file": str(self.ca_path)}
        if cdn:
            service["cdn_name"] = CDN
        probe = {"samples": 1, "pace_ms": 0.0, "dns_timeout_s": 2.0, "connect_timeout_s": 2.0,
                 "request_timeout_s": 3.0, "round_deadline_s": 8.0,
                 **sections.pop("probe", {})}
        return {
            "service": service,
            "regions": {name: {"addresses": addresses} for name, addresses in regions.items()},
            "vantage_points": {"here": {"resolver": f"{self.dns.address}:{self.dns.port}",
                                        "source_address": source, "location": "DUB"}},
            "probe": probe,
            **sections,
        }

    def write_config(self, document: dict[str, Any], name: str = "config.yaml") -> Path:
        path = self._tmp / name
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    def close(self) -> None:
        self._loop.run(self.dns.close())
        self._loop.run(self.tls.close())
        self._loop.stop()


@contextlib.contextmanager
def hostile_world(tmp_path: Path, **kwargs: Any) -> Iterator[HostileWorld]:
    world = HostileWorld(tmp_path, **kwargs)
    try:
        yield world
    finally:
        world.close()
