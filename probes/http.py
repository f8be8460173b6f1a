"""HTTP probe: one timed HTTPS request to a given address, as if it were the service name.

Host and TLS SNI are the service name and the certificate is verified against it, while the TCP
connection goes to the address under test. Every call uses a fresh connection and the one shared
:class:`ssl.SSLContext` per CA bundle. Phases: connect (TCP), tls (handshake), processing
(request written → the bytes that complete the response head arrive), transfer (body).

The timed span holds as little Python as possible: the socket is bound to a numeric local address
directly (no resolver thread), OpenSSL reads and writes it itself (a non-blocking ``SSLSocket``
the event loop only waits on), the request is encoded before the clock starts and written
straight to the socket, and an arrival is stamped when the loop sees the socket readable, before
it is decrypted or parsed. h11 parses the answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
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
_READ_BYTES = 65536


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


class _TlsStream:
    """A non-blocking TLS socket driven by the event loop: OpenSSL reads and writes the socket
    itself (no memory BIO copies, no protocol objects); a response is read, and stamped, in the
    selector callback, as soon as the loop sees the socket readable."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self._loop = asyncio.get_running_loop()
        self._fd = sock.fileno()

    async def _ready(self, write: bool = False) -> float:
        """Wait until the socket is readable (writable); when the loop saw it so."""
        seen: asyncio.Future[float] = self._loop.create_future()

        def ready() -> None:
            if not seen.done():
                seen.set_result(time.perf_counter())

        if write:
            self._loop.add_writer(self._fd, ready)
        else:
            self._loop.add_reader(self._fd, ready)
        try:
            return await seen
        finally:
            if write:
                self._loop.remove_writer(self._fd)
            else:
                self._loop.remove_reader(self._fd)

    async def handshake(self) -> None:
        while True:
            try:
                self.sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                await self._ready()
            except ssl.SSLWantWriteError:
                await self._ready(write=True)

    def send_now(self, data: bytes) -> bool:
        """Send ``data`` without waiting if the socket takes it whole (a request always fits
        an empty socket buffer); False when it did not (then :meth:`send_all`)."""
        try:
            return self.sock.send(data) == len(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except ssl.SSLWantReadError:
                await self._ready()
            except ssl.SSLWantWriteError:
                await self._ready(write=True)

    async def receive(self) -> tuple[float, bytes]:
        """The next bytes (b"" at the end of the stream) and a time they had arrived by: taken
        right after the read that returned them, which runs in the selector callback, as soon
        as the loop sees the socket readable (never before they arrived: a probe must not read
        less than the round trip)."""
        while True:
            try:
                data = self.sock.recv(_READ_BYTES)
                return time.perf_counter(), data
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLWantWriteError:  # TLS 1.2 renegotiation: rare
                await self._ready(write=True)
                continue
            got: asyncio.Future[tuple[float, bytes] | None] = self._loop.create_future()
            self._loop.add_reader(self._fd, self._read_into, got)
            try:
                received = await got
            finally:
                self._loop.remove_reader(self._fd)
            if received is not None:
                return received

    def _read_into(self, got: asyncio.Future[tuple[float, bytes] | None]) -> None:
        """The selector callback: read now, stamp after the read; None asks for writability."""
        if got.done():
            return
        try:
            data = self.sock.recv(_READ_BYTES)
        except ssl.SSLWantReadError:
            return  # a post-handshake message (a session ticket) only: wait on
        except ssl.SSLWantWriteError:
            got.set_result(None)
        except Exception as exc:  # handed to the waiting probe, which maps it
            got.set_exception(exc)
        else:
            got.set_result((time.perf_counter(), data))


@lru_cache(maxsize=1024)
def _request_event(target: HttpTarget) -> h11.Request:
    """The request for a target, validated once (h11 events are immutable; a round asks the
    same targets again and again)."""
    host_header = target.host if target.port == 443 else f"{target.host}:{target.port}"
    headers = {"host": host_header, "user-agent": _USER_AGENT, "accept": "*/*",
               "connection": "close", **dict(target.headers)}
    return h11.Request(method="GET", target=target.path, headers=list(headers.items()))


def _request_bytes(target: HttpTarget) -> tuple[h11.Connection, bytes]:
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD_BYTES)
    data = connection.send(_request_event(target))
    data += connection.send(h11.EndOfMessage())
    return connection, data


async def _open(target: HttpTarget, ssl_context: ssl.SSLContext,
                phases: dict[str, float]) -> _TlsStream:
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
        stream = _TlsStream(ssl_context.wrap_socket(sock, server_hostname=target.host,
                                                    do_handshake_on_connect=False))
    except BaseException:
        sock.close()
        raise
    try:
        await stream.handshake()
    except BaseException:
        stream.sock.close()
        raise
    phases["tls"] = time.perf_counter() - connected
    return stream


@dataclass
class _Answer:
    """What was read of the response so far (kept when a failure cuts the read short)."""

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    peer: str | None = None
    tls_version: str | None = None


async def _exchange(target: HttpTarget, stream: _TlsStream, body_limit_bytes: int,
                    phases: dict[str, float], answer: _Answer) -> None:
    peer = stream.sock.getpeername()
    answer.peer = str(peer[0]) if peer else None
    answer.tls_version = stream.sock.version()
    connection, request = _request_bytes(target)
    sent = time.perf_counter()
    if not stream.send_now(request):
        await stream.send_all(request)
    head_at: float | None = None
    arrived = sent
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            arrived, data = await stream.receive()
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
    stream: _TlsStream | None = None
    started_wall = time.time()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(request_timeout_s):
            connect_deadline = asyncio.timeout(connect_timeout_s)
            try:
                async with connect_deadline:
                    stream = await _open(target, ssl_context, phases)
            except TimeoutError:
                if not connect_deadline.expired():
                    raise
                error = ProbeTimeout("timed out (connect)", target=target.url)
            if stream is not None:
                await _exchange(target, stream, body_limit_bytes, phases, answer)
    except (TimeoutError, h11.ProtocolError, ssl.SSLError, OSError) as exc:
        error = http_error(exc, target=target.url, timeout_s=request_timeout_s)
    finally:
        if stream is not None:
            stream.sock.close()  # no TLS close_notify (httpcore sends none either)
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
