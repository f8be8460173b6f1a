"""HTTP probe: one timed HTTPS request to a given address, as if it were the service name.

Host and TLS SNI are the service name and the certificate is verified against it, while the TCP
connection goes to the address under test. Every call uses a fresh connection and the one shared
:class:`ssl.SSLContext` per CA bundle. Phases: connect (TCP), tls (handshake), processing
(request written → the bytes that complete the response head arrive), transfer (body).

The timed span holds as little Python as possible: the socket is bound to a numeric local address
directly (no resolver thread), OpenSSL reads and writes it itself (a non-blocking ``SSLSocket``
the event loop only waits on), the request is encoded before the clock starts and written
straight to the socket, and the response is read in the selector callback and stamped right
after that read. h11 parses the answer.

Hostile peers: an address an :class:`~probes.addresses.AddressPolicy` refuses is never connected
to; redirects are never followed; the body is read up to a limit. The request asks for
``Accept-Encoding: identity`` (a health answer is small, so compression saves nothing, and not
decoding keeps CPU work and a decompression bomb out of the probe), and a server that compresses
all the same has its gzip/deflate body decoded incrementally, never past the same limit.
"""

from __future__ import annotations

import asyncio
import calendar
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import h11

from probes.addresses import AddressPolicy
from probes.errors import AddressNotAllowed, HttpError, ProbeTimeout, http_error
from probes.records import record

__all__ = [
    "PHASES",
    "HttpEvidence",
    "HttpTarget",
    "TlsSession",
    "earliest_not_after",
    "handshake_round_trips",
    "header_list",
    "probe_http",
    "ssl_context_for",
    "warm_up",
]

PHASES = ("resolve", "connect", "tls", "processing", "transfer")

_USER_AGENT = "routewatch/0.1"
_MAX_HEAD_BYTES = 100 * 1024  # a response head larger than this is not a health answer
_READ_BYTES = 65536


@record
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


def handshake_round_trips(version: str | None, resumed: bool) -> int | None:
    """Round trips a TLS handshake of this version costs before the request can go: TLS 1.3 one
    (resumed too; 0-RTT is never used), TLS 1.2 and older two for a full handshake and one when
    the session is resumed; None for an unknown version."""
    if version == "TLSv1.3":
        return 1
    if version in ("TLSv1.2", "TLSv1.1", "TLSv1"):
        return 1 if resumed else 2
    return None


def earliest_not_after(not_after: Iterable[str]) -> float | None:
    """The earliest ``notAfter`` (OpenSSL's text, e.g. ``Jun  1 12:00:00 2027 GMT``) as Unix
    seconds; a value that cannot be read is skipped."""
    found = [seconds for text in not_after if (seconds := _not_after_seconds(text)) is not None]
    return min(found, default=None)


@lru_cache(maxsize=256)
def _not_after_seconds(text: str) -> float | None:
    """One ``notAfter`` as Unix seconds (cached: every sample of a round presents the same few
    certificates, and strptime cost ~0.15 ms a sample at 20 × 30)."""
    try:
        return float(calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y %Z")))
    except (TypeError, ValueError):
        return None


@record
class TlsSession:
    """What the TLS handshake settled: the version, whether a session was resumed, and the
    earliest expiry (Unix seconds) of the certificates the server presented."""

    version: str | None
    resumed: bool = False
    cert_not_after: float | None = None

    @property
    def handshake_round_trips(self) -> int | None:
        return handshake_round_trips(self.version, self.resumed)


def _tls_session(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> TlsSession:
    return TlsSession(ssl_object.version(), bool(ssl_object.session_reused),
                      earliest_not_after(_presented_not_after(ssl_object)))


def _presented_not_after(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[str]:
    """``notAfter`` of every certificate the server presented (leaf and intermediates)."""
    # the chain is public from Python 3.13 (get_unverified_chain); 3.11 and 3.12 have it on the
    # private _sslobj; the leaf alone is the fallback
    chain_of = getattr(ssl_object, "get_unverified_chain", None) or getattr(
        getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    found: list[str] = []
    try:
        chain = chain_of() if chain_of is not None else None
    except (ssl.SSLError, ValueError):
        chain = None
    for certificate in chain or ():
        info = certificate.get_info() if hasattr(certificate, "get_info") else {}
        if isinstance(info, dict) and isinstance(info.get("notAfter"), str):
            found.append(info["notAfter"])
    if not found:
        leaf = ssl_object.getpeercert()
        if leaf and isinstance(leaf.get("notAfter"), str):
            found.append(str(leaf["notAfter"]))
    return found


def header_list(headers: Iterable[tuple[str, str]], name: str) -> tuple[str, ...]:
    """Every element of a list-valued header (RFC 9110 5.3: repeated lines and comma-folded
    values are the same thing), in order, stripped, empty elements dropped."""
    wanted = name.lower()
    return tuple(element for key, value in headers if key.lower() == wanted
                 for element in (part.strip() for part in value.split(",")) if element)


@record
class HttpEvidence:
    target: HttpTarget
    status: int | None
    phases: Mapping[str, float]
    total_seconds: float
    peer_address: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    body_truncated: bool = False  # the body (decoded) was longer than the limit: cut there
    body_problem: str | None = None  # why ``body`` is not what the server meant (encoding)
    tls: TlsSession | None = None
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

    def header_list(self, name: str) -> tuple[str, ...]:
        """The elements of a list-valued header, over all its lines (see :func:`header_list`)."""
        return header_list(self.headers, name)

    @property
    def tls_version(self) -> str | None:
        return self.tls.version if self.tls is not None else None

    @property
    def first_byte_seconds(self) -> float | None:
        return self.phases.get("processing")

    @property
    def handshake_rtt_seconds(self) -> float | None:
        """The TLS handshake divided by the round trips its version costs: one network round
        trip (plus crypto); None without a handshake or for an unknown version."""
        handshake = self.phases.get("tls")
        trips = self.tls.handshake_round_trips if self.tls is not None else None
        return None if handshake is None or not trips else handshake / trips


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


class _BodyReader:
    """Collects a body up to ``limit`` bytes, decoding gzip/deflate on the way (bounded: a
    decompression bomb stops at the limit like any long body)."""

    def __init__(self, limit: int, encoding: str | None) -> None:
        self.limit = limit
        self.body = bytearray()
        self.truncated = False
        self.problem: str | None = None
        coding = (encoding or "identity").strip().lower()
        self._decoder: Any = None
        if coding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
            self._raw_deflate = coding == "deflate"
        elif coding != "identity":
            self.problem = f"content-encoding {coding[:40]!r} is not decoded"

    def feed(self, chunk: bytes) -> bool:
        """Add a chunk; False once nothing more is wanted (limit reached or undecodable)."""
        if self.problem is not None:
            return False
        room = self.limit - len(self.body)
        if self._decoder is not None:
            try:
                chunk = self._decoder.decompress(chunk, room + 1)
            except zlib.error as exc:
                if not (self._raw_deflate and not self.body):
                    self.problem = f"compressed body could not be decoded ({exc})"
                    return False
                self._raw_deflate = False  # "deflate" sent without the zlib header
                self._decoder = zlib.decompressobj(wbits=-15)
                return self.feed(chunk)
        if len(chunk) > room:
            self.body.extend(chunk[:room])
            self.truncated = True
            return False
        self.body.extend(chunk)
        return True


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
    headers = {"host": host_header, "user-agent": _USER_AGENT, "accept-encoding": "identity",
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

    limit: int
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    peer: str | None = None
    tls: TlsSession | None = None
    body: _BodyReader | None = None

    def reader(self) -> _BodyReader:
        return self.body if self.body is not None else _BodyReader(self.limit, None)


async def _exchange(target: HttpTarget, stream: _TlsStream, phases: dict[str, float],
                    answer: _Answer) -> None:
    peer = stream.sock.getpeername()
    answer.peer = str(peer[0]) if peer else None
    answer.tls = _tls_session(stream.sock)
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
            answer.body = _BodyReader(answer.limit, dict(answer.headers).get("content-encoding"))
        elif isinstance(event, h11.Data):
            if not answer.reader().feed(event.data):
                break
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
    address_policy: AddressPolicy | None = None,
) -> HttpEvidence:
    """One GET on a fresh connection; a failure is in ``evidence.error``, with partial phases.

    With ``address_policy``, an address it refuses gets :class:`AddressNotAllowed` and no
    connection is attempted."""
    ipaddress.ip_address(target.address)  # a name here would bypass the address under test
    refused = address_policy.refusal(target.address) if address_policy is not None else None
    if refused is not None:
        return HttpEvidence(target=target, status=None, phases={}, total_seconds=0.0,
                            error=AddressNotAllowed(f"{target.address} is a {refused} address: "
                                                    f"not connected to", target=target.url),
                            started_at=time.time())
    phases: dict[str, float] = {"resolve": 0.0}
    answer = _Answer(body_limit_bytes)
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
                await _exchange(target, stream, phases, answer)
    except (TimeoutError, h11.ProtocolError, ssl.SSLError, OSError) as exc:
        error = http_error(exc, target=target.url, timeout_s=request_timeout_s)
    finally:
        if stream is not None:
            stream.sock.close()  # no TLS close_notify (httpcore sent none either)
    total = time.perf_counter() - started
    reader = answer.reader()
    return HttpEvidence(
        target=target,
        status=answer.status,
        phases=phases,
        total_seconds=total,
        peer_address=answer.peer,
        headers=answer.headers,
        body=bytes(reader.body),
        body_truncated=reader.truncated,
        body_problem=reader.problem,
        tls=answer.tls,
        error=error,
        started_at=started_wall,
    )
