"""HTTP probe: one timed HTTPS request to a given address, as if it were the service name.

Host and TLS SNI are the service name and the certificate is verified against it, while the TCP
connection goes to the address under test. Every call uses a fresh connection (a new transport) and
the one shared :class:`ssl.SSLContext` per CA bundle. Phases come from httpcore's ``trace``
extension: connect, tls, processing (request sent → response headers), transfer (body).

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
import ssl
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import httpx

from probes.addresses import AddressPolicy
from probes.errors import AddressNotAllowed, HttpError, http_error

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

# trace event → (phase, edge); the phase lasts from its "started" to its "complete" event
_TRACE_PHASES = {
    "connection.connect_tcp": "connect",
    "connection.start_tls": "tls",
}


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
    found = []
    for text in not_after:
        try:
            found.append(float(calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y %Z"))))
        except (TypeError, ValueError):
            continue
    return min(found, default=None)


@dataclass(frozen=True)
class TlsSession:
    """What the TLS handshake settled: the version, whether a session was resumed, and the
    earliest expiry (Unix seconds) of the certificates the server presented."""

    version: str | None
    resumed: bool = False
    cert_not_after: float | None = None

    @property
    def handshake_round_trips(self) -> int | None:
        return handshake_round_trips(self.version, self.resumed)


def _tls_session(ssl_object: ssl.SSLObject) -> TlsSession:
    return TlsSession(ssl_object.version(), bool(ssl_object.session_reused),
                      earliest_not_after(_presented_not_after(ssl_object)))


def _presented_not_after(ssl_object: ssl.SSLObject) -> list[str]:
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


@dataclass(frozen=True)
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
    """Import now what httpx imports on its first request (httpcore, h11, anyio's asyncio
    backend: ~0.1 s), so that cost never lands inside a measurement."""
    import anyio._backends._asyncio  # noqa: F401
    import h11  # noqa: F401
    import httpcore  # noqa: F401

    httpx.AsyncHTTPTransport()


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


class _PhaseClock:
    """Collects httpcore trace events as perf_counter timestamps."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        self.marks.setdefault(event, time.perf_counter())

    def span(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return max(0.0, self.marks[end] - self.marks[start])
        return None

    def phases(self) -> dict[str, float]:
        found: dict[str, float] = {"resolve": 0.0}
        for prefix, phase in _TRACE_PHASES.items():
            span = self.span(f"{prefix}.started", f"{prefix}.complete")
            if span is not None:
                found[phase] = span
        processing = self.span("http11.send_request_headers.started",
                               "http11.receive_response_headers.complete")
        if processing is not None:
            found["processing"] = processing
        transfer = self.span("http11.receive_response_headers.complete",
                             "http11.receive_response_body.complete")
        if transfer is None:
            transfer = self.span("http11.receive_response_headers.complete", "body.end")
        if transfer is not None:
            found["transfer"] = transfer
        return found


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
    clock = _PhaseClock()
    ipaddress.ip_address(target.address)  # a name here would bypass the address under test
    refused = address_policy.refusal(target.address) if address_policy is not None else None
    if refused is not None:
        return HttpEvidence(target=target, status=None, phases={}, total_seconds=0.0,
                            error=AddressNotAllowed(f"{target.address} is a {refused} address: "
                                                    f"not connected to", target=target.url),
                            started_at=time.time())
    transport = httpx.AsyncHTTPTransport(
        verify=ssl_context, local_address=target.local_address, retries=0
    )
    timeout = httpx.Timeout(request_timeout_s, connect=connect_timeout_s)
    host_header = target.host if target.port == 443 else f"{target.host}:{target.port}"
    headers = {"host": host_header, "user-agent": "routewatch/0.1",
               "accept-encoding": "identity", **dict(target.headers)}
    extensions = {"sni_hostname": target.host, "trace": clock}
    started_wall = time.time()
    started = time.perf_counter()
    status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    reader = _BodyReader(body_limit_bytes, None)
    peer: str | None = None
    tls: TlsSession | None = None
    error: HttpError | None = None
    try:
        async with (
            asyncio.timeout(request_timeout_s),
            httpx.AsyncClient(transport=transport, timeout=timeout) as client,
            client.stream("GET", target.url, headers=headers, extensions=extensions) as response,
        ):
            status = response.status_code
            response_headers = tuple(
                (k.decode("latin-1").lower(), v.decode("latin-1"))
                for k, v in response.headers.raw
            )
            stream = response.extensions.get("network_stream")
            if stream is not None:
                server_addr = stream.get_extra_info("server_addr")
                peer = str(server_addr[0]) if server_addr else None
                ssl_object = stream.get_extra_info("ssl_object")
                tls = _tls_session(ssl_object) if ssl_object is not None else None
            reader = _BodyReader(body_limit_bytes, response.headers.get("content-encoding"))
            async for chunk in response.aiter_raw():
                if not reader.feed(chunk):
                    break
            clock.marks.setdefault("body.end", time.perf_counter())
    except (TimeoutError, httpx.HTTPError, ssl.SSLError, OSError) as exc:
        error = http_error(exc, target=target.url, timeout_s=request_timeout_s)
    total = time.perf_counter() - started
    return HttpEvidence(
        target=target,
        status=status,
        phases=clock.phases(),
        total_seconds=total,
        peer_address=peer,
        headers=response_headers,
        body=bytes(reader.body),
        body_truncated=reader.truncated,
        body_problem=reader.problem,
        tls=tls,
        error=error,
        started_at=started_wall,
    )
