"""A CloudFront-like edge: a caching HTTPS reverse proxy with a POP code.

On a miss it resolves the origin name through the lab's DNS *from its own address* (so the
latency policy answers for the edge's location, as Route 53 does for CloudFront), fetches from
that region over HTTPS (its own address is the source, so the region's delay proxy applies the
edge → region round trip), caches per URL honouring ``cache-control``, and adds the headers
CloudFront adds: ``x-amz-cf-pop``, ``x-amz-cf-id``, ``x-cache``, ``via``, ``age`` and
``Server-Timing`` (``cdn-upstream-dns/connect/fbl``, ``cdn-downstream-fbl``, ``cdn-cache-*``,
``cdn-pop``, ``cdn-rid``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from monitor.lab._http import (
    MAX_HEAD_BYTES,
    BadRequest,
    HttpRequest,
    Response,
    serve_connection,
)
from probes.records import record

__all__ = ["EdgeServer", "EdgeSettings"]

_MAX_CACHE_ENTRIES = 1000
_MAX_ORIGIN_BODY = 1 << 20
_UPSTREAM_TIMEOUT_S = 10.0
_DNS_TIMEOUT_S = 2.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te",
               "trailer", "upgrade", "proxy-connection"}
_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_STORE = re.compile(r"(?:^|,)\s*(no-store|no-cache|private)\b", re.IGNORECASE)


@record
class EdgeSettings:
    name: str
    pop: str
    address: str  # public address, and the source of its DNS queries and origin fetches
    origin_name: str
    origin_port: int
    dns_address: str
    dns_port: int


@dataclass
class _Cached:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stored_at: float
    max_age: float

    def fresh(self, now: float) -> bool:
        return now - self.stored_at < self.max_age


@dataclass
class _Fetched:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    region_address: str | None
    dns_ms: float | None
    connect_ms: float | None
    fbl_ms: float | None


class _UpstreamError(Exception):
    def __init__(self, status: int, message: str, timing: dict[str, float]) -> None:
        super().__init__(message)
        self.status = status
        self.timing = timing


def _request_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(42)).decode()


class EdgeServer:
    """The edge's HTTPS server, on a private address behind its own delay proxy."""

    def __init__(self, settings: EdgeSettings, *, server_tls: ssl.SSLContext,
                 origin_tls: ssl.SSLContext, pinned_address: Callable[[], str | None],
                 header_fault: Callable[[], str | None] = lambda: None) -> None:
        self.settings = settings
        self._server_tls = server_tls
        self._origin_tls = origin_tls
        self._pinned_address = pinned_address  # edge_stale_origin: the address it keeps using
        self._header_fault = header_fault  # edge_bad_headers: what to break in the answer
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._via = f"1.1 {os.urandom(16).hex()}.cloudfront.net (CloudFront)"
        self.last_address: str | None = None  # the origin address its last resolution gave
        self.port = 0

    async def start(self, address: str) -> int:
        self._server = await asyncio.start_server(
            self._serve, address, 0, ssl=self._server_tls, limit=MAX_HEAD_BYTES, backlog=256,
            ssl_handshake_timeout=10.0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    def clear_cache(self) -> None:
        self._cache.clear()

    # --- viewer side ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await serve_connection(reader, writer, self._respond_to)
        finally:
            self._writers.discard(writer)

    async def _respond_to(self, request: HttpRequest) -> Response:
        return await self._answer(request.method, request.target, time.perf_counter())

    async def _answer(self, method: str, target: str,
                      received: float) -> tuple[int, list[tuple[str, str]], bytes]:
        if method not in ("GET", "HEAD"):
            return self._respond(405, [("allow", "GET, HEAD")], b"", "Error", "cdn-cache-miss",
                                 {}, received)
        now = time.monotonic()
        cached = self._cache.get(target)
        if cached is not None and cached.fresh(now):
            self._cache.move_to_end(target)
            headers = [*cached.headers, ("age", str(int(now - cached.stored_at)))]
            return self._respond(cached.status, headers, cached.body, "Hit", "cdn-cache-hit", {},
                                 received)
        try:
            fetched = await self._fetch(target)
        except _UpstreamError as exc:
            body = f"{exc.status} error from the edge: {exc}\n".encode()
            return self._respond(exc.status, [("content-type", "text/plain")], body, "Error",
                                 "cdn-cache-miss", exc.timing, received)
        timing = {"cdn-upstream-dns": fetched.dns_ms, "cdn-upstream-connect": fetched.connect_ms,
                  "cdn-upstream-fbl": fetched.fbl_ms}
        result, metric = "Miss", "cdn-cache-miss"
        if cached is not None and cached.body == fetched.body and fetched.status == 200:
            result, metric = "RefreshHit", "cdn-cache-refresh"
        self._store(target, fetched, now)
        return self._respond(fetched.status, fetched.headers, fetched.body, result, metric,
                             {k: v for k, v in timing.items() if v is not None}, received)

    def _respond(self, status: int, headers: list[tuple[str, str]], body: bytes, result: str,
                 cache_metric: str, upstream: dict[str, float],
                 received: float) -> tuple[int, list[tuple[str, str]], bytes]:
        rid = _request_id()
        entries = ['cdn-upstream-layer;desc="EDGE"']
        entries += [f"{name};dur={value:.0f}" for name, value in upstream.items()]
        entries += [cache_metric, f"cdn-pop;desc=\"{self.settings.pop}\"",
                    f"cdn-rid;desc=\"{rid}\""]
        downstream_ms = (time.perf_counter() - received) * 1000
        out = [*headers,
               ("x-cache", f"{result} from cloudfront"),
               ("via", self._via),
               ("x-amz-cf-pop", self.settings.pop),
               ("x-amz-cf-id", rid),
               ("server-timing", ",".join(entries)),
               ("server-timing", f"cdn-downstream-fbl;dur={downstream_ms:.0f}")]
        broken = self._header_fault()
        if broken == "no_pop":
            out = [(k, v) for k, v in out if k != "x-amz-cf-pop"]
            out = [(k, ",".join(e for e in v.split(",") if not e.startswith("cdn-pop")))
                   if k == "server-timing" else (k, v) for k, v in out]
        elif broken == "malformed_server_timing":
            out = [(k, v) for k, v in out if k != "server-timing"]
            out.append(("server-timing", "cdn-upstream-fbl;dur=fast,cdn upstream;dur=1"))
        return status, out, body

    def _store(self, target: str, fetched: _Fetched, now: float) -> None:
        control = ", ".join(v for k, v in fetched.headers if k == "cache-control")
        match = _MAX_AGE.search(control)
        if fetched.status != 200 or match is None or _NO_STORE.search(control):
            self._cache.pop(target, None)
            return
        self._cache[target] = _Cached(fetched.status, fetched.headers, fetched.body, now,
                                      float(match.group(2)))
        self._cache.move_to_end(target)
        while len(self._cache) > _MAX_CACHE_ENTRIES:
            self._cache.popitem(last=False)

    # --- origin side ---------------------------------------------------------------------------

    async def resolve(self) -> tuple[str, float]:
        """The origin address the lab's DNS gives this edge, and the lookup time (ms)."""
        settings = self.settings
        query = dns.message.make_query(settings.origin_name, "A")
        started = time.perf_counter()
        try:
            response = await dns.asyncquery.udp(
                query, settings.dns_address, timeout=_DNS_TIMEOUT_S, port=settings.dns_port,
                source=settings.address)
        except (dns.exception.DNSException, OSError) as exc:
            elapsed = (time.perf_counter() - started) * 1000
            raise _UpstreamError(502, f"origin DNS failed: {type(exc).__name__}",
                                 {"cdn-upstream-dns": elapsed}) from None
        elapsed = (time.perf_counter() - started) * 1000
        addresses = [r.to_text() for rrset in response.answer
                     if rrset.rdtype == dns.rdatatype.A for r in rrset]
        if response.rcode() != dns.rcode.NOERROR or not addresses:
            raise _UpstreamError(502, f"origin DNS answered {dns.rcode.to_text(response.rcode())}"
                                      f" with {len(addresses)} addresses",
                                 {"cdn-upstream-dns": elapsed})
        self.last_address = addresses[0]
        return addresses[0], elapsed

    async def _fetch(self, target: str) -> _Fetched:
        settings = self.settings
        pinned = self._pinned_address()
        if pinned is not None:
            address, dns_ms = pinned, None
        else:
            address, dns_ms = await self.resolve()
        timing: dict[str, float] = {} if dns_ms is None else {"cdn-upstream-dns": dns_ms}
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                address, settings.origin_port, ssl=self._origin_tls,
                server_hostname=settings.origin_name, local_addr=(settings.address, 0),
                limit=MAX_HEAD_BYTES), _UPSTREAM_TIMEOUT_S)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            raise _UpstreamError(status, f"origin {address} unreachable: {type(exc).__name__}",
                                 timing) from None
        connect_ms = (time.perf_counter() - started) * 1000
        timing["cdn-upstream-connect"] = connect_ms
        try:
            request = (f"GET {target} HTTP/1.1\r\nhost: {settings.origin_name}\r\n"
                       f"user-agent: Amazon CloudFront\r\nvia: {self._via}\r\n"
                       f"connection: close\r\n\r\n")
            sent = time.perf_counter()
            writer.write(request.encode("latin-1"))
            status, headers, body, fbl_ms = await asyncio.wait_for(
                _read_response(reader, sent), _UPSTREAM_TIMEOUT_S)
        except (OSError, ssl.SSLError, TimeoutError, BadRequest,
                asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            raise _UpstreamError(status, f"origin {address} failed: {type(exc).__name__}",
                                 timing) from None
        finally:
            writer.transport.abort()
        return _Fetched(status, headers, body, address, dns_ms, connect_ms, fbl_ms)


async def _read_response(reader: asyncio.StreamReader,
                         sent: float) -> tuple[int, list[tuple[str, str]], bytes, float]:
    first = await reader.readexactly(1)
    fbl_ms = (time.perf_counter() - sent) * 1000
    head = first + await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise BadRequest(f"bad status line {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    length: int | None = None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line[:80]!r}")
        key, value = name.strip().lower(), value.strip()
        if key == "content-length":
            length = int(value) if value.isdigit() else None
        if key not in _HOP_BY_HOP:
            headers.append((key, value))
    if length is None or length > _MAX_ORIGIN_BODY:
        raise BadRequest("the origin's response has no usable content-length")
    body = await reader.readexactly(length)
    return int(parts[1]), headers, body, fbl_ms
