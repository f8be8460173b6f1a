"""HTTP probe: one timed HTTPS request to a given address, as if it were the service name.

Host and TLS SNI are the service name and the certificate is verified against it, while the TCP
connection goes to the address under test. Every call uses a fresh connection and the one shared
:class:`ssl.SSLContext` per CA bundle. Phases: connect (TCP), tls (handshake), processing
(request written → the bytes that complete the response head arrive), transfer (body).

The timed span holds as little Python as possible: the connection is a plain asyncio protocol
(the socket is bound to a numeric local address directly, no resolver thread), the request is
encoded before the clock starts, and arrivals are stamped in ``data_received``, the callback the
event loop runs when the socket turns readable, before any parsing. h11 parses the answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

import h11

from probes.errors import HttpError, ProbeTimeout, http_error

__all__ = ["PHASES", "HttpEvidence", "HttpTarget", "probe_http", "ssl_context_for", "warm_up"]

PHASES = ("resolve", "connect", "tls", "processing", "transfer")

_USER_AGENT = "routewatch/0.1"
_MAX_HEAD_BYTES = 100 * 1024  # a response head larger than this is not a health answer
_PAUSE_BYTES = 256 * 1024  # received but not yet parsed: stop reading the socket beyond this


@dataclass(frozen=True)
class HttpTarget:
    """``host`` is the name sent as Host and SNI; ``address`` is where the TCP connection goes."""

    host: str
    address: str
    port: int = 443
    path: str = "/health"
    local_address: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        shown = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{shown}:{self.port}{self.path}"


@dataclass(frozen=True)
class HttpEvidence:
    target: HttpTarget
    status: int | None
    phases: Mapping[str, float]
    total_seconds: float
    peer_address: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    body_truncated: bool = False
    tls_version: str | None = None
    error: HttpError | None = None
    started_at: float = field(default=0.0)

    def __post_init__(self) -> None:  # a read-only copy: evidence never changes once taken
        object.__setattr__(self, "phases", MappingProxyType(dict(self.phases)))

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if k == wanted]

    @property
    def first_byte_seconds(self) -> float | None:
        return self.phases.get("processing")


def warm_up() -> None:
    """Do once, before any measurement, what the first probe would otherwise pay inside its
    timed span: h11's first connection and event machinery."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="GET", target="/", headers=[("host", "warm-up")]))


@lru_cache(maxsize=8)
def ssl_context_for(ca_file: str | None) -> ssl.SSLContext:
    """One context per CA bundle, shared by every probe (building one costs more than a probe)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Receiver(asyncio.Protocol):
    """Keeps what the socket delivers, each chunk with the moment it arrived."""

    def __init__(self) -> None:
        self.chunks: deque[tuple[float, bytes]] = deque()
        self.buffered = 0
        self.closed = False
        self.failure: Exception | None = None
        self.transport: asyncio.Transport | None = None
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):  # always, for a stream connection
            self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append((time.perf_counter(), data))
        self.buffered += len(data)
        if self.buffered > _PAUSE_BYTES and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.failure = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next_chunk(self) -> tuple[float, bytes] | None:
        """The next chunk and its arrival time; None once the peer has closed."""
        while not self.chunks:
            if self.closed:
                if self.failure is not None:
                    raise self.failure
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        arrived, data = self.chunks.popleft()
        self.buffered -= len(data)
        if self._paused and self.buffered <= _PAUSE_BYTES // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return arrived, data


def _request_bytes(target: HttpTarget) -> tuple[h11.Connection, bytes]:
    host_header = target.host if target.port == 443 else f"{target.host}:{target.port}"
    headers = {"host": host_header, "user-agent": _USER_AGENT, "accept": "*/*",
               "connection": "close", **dict(target.headers)}
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD_BYTES)
    data = connection.send(h11.Request(method="GET", target=target.path,
                                       headers=list(headers.items())))
    data += connection.send(h11.EndOfMessage())
    return connection, data


async def _open(target: HttpTarget, ssl_context: ssl.SSLContext,
                phases: dict[str, float]) -> tuple[asyncio.Transport, _Receiver]:
    """TCP connect then TLS handshake, each timed; the socket is bound to the numeric local
    address here (anyio would resolve it through a worker thread on every probe)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.local_address is not None:
            sock.bind((target.local_address, 0))
        began = time.perf_counter()
        await loop.sock_connect(sock, (target.address, target.port))
        connected = time.perf_counter()
        phases["connect"] = connected - began
        transport, receiver = await loop.create_connection(
            _Receiver, sock=sock, ssl=ssl_context, server_hostname=target.host)
        phases["tls"] = time.perf_counter() - connected
    except BaseException:
        sock.close()
        raise
    return transport, receiver


@dataclass
class _Answer:
    """What was read of the response so far (kept when a failure cuts the read short)."""

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    peer: str | None = None
    tls_version: str | None = None


async def _exchange(target: HttpTarget, transport: asyncio.Transport, receiver: _Receiver,
                    body_limit_bytes: int, phases: dict[str, float], answer: _Answer) -> None:
    peer = transport.get_extra_info("peername")
    answer.peer = str(peer[0]) if peer else None
    ssl_object = transport.get_extra_info("ssl_object")
    answer.tls_version = ssl_object.version() if ssl_object is not None else None
    connection, request = _request_bytes(target)
    sent = time.perf_counter()
    transport.write(request)
    head_at: float | None = None
    arrived = sent
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            chunk = await receiver.next_chunk()
            if chunk is None:
                connection.receive_data(b"")
            else:
                arrived, data = chunk
                connection.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            head_at = arrived
            phases["processing"] = head_at - sent
            answer.status = event.status_code
            answer.headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1"))
                                   for k, v in event.headers)
        elif isinstance(event, h11.Data):
            room = body_limit_bytes - len(answer.body)
            if len(event.data) > room:
                answer.body.extend(event.data[:room])
                answer.truncated = True
                break
            answer.body.extend(event.data)
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
        # h11.InformationalResponse (1xx): the final response follows
    if head_at is not None:
        phases["transfer"] = max(0.0, time.perf_counter() - head_at)


async def probe_http(
    target: HttpTarget,
    *,
    ssl_context: ssl.SSLContext,
    connect_timeout_s: float = 3.0,
    request_timeout_s: float = 5.0,
    body_limit_bytes: int = 65536,
) -> HttpEvidence:
    """One GET on a fresh connection; a failure is in ``evidence.error``, with partial phases."""
    ipaddress.ip_address(target.address)  # a name here would bypass the address under test
    phases: dict[str, float] = {"resolve": 0.0}
    answer = _Answer()
    error: HttpError | None = None
    transport: asyncio.Transport | None = None
    started_wall = time.time()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(request_timeout_s):
            connect_deadline = asyncio.timeout(connect_timeout_s)
            try:
                async with connect_deadline:
                    transport, receiver = await _open(target, ssl_context, phases)
            except TimeoutError:
                if not connect_deadline.expired():
                    raise
                error = ProbeTimeout("timed out (connect)", target=target.url)
            if transport is not None:
                await _exchange(target, transport, receiver, body_limit_bytes, phases, answer)
    except (TimeoutError, h11.ProtocolError, ssl.SSLError, OSError) as exc:
        error = http_error(exc, target=target.url, timeout_s=request_timeout_s)
    finally:
        if transport is not None:
            transport.abort()  # no TLS close_notify round trip (httpcore sends none either)
    total = time.perf_counter() - started
    return HttpEvidence(
        target=target,
        status=answer.status,
        phases=phases,
        total_seconds=total,
        peer_address=answer.peer,
        headers=answer.headers,
        body=bytes(answer.body),
        body_truncated=answer.truncated,
        tls_version=answer.tls_version,
        error=error,
        started_at=started_wall,
    )
