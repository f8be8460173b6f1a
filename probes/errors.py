"""Typed probe failures. Library errors (dnspython, httpx, h11, ssl) are mapped here, at one
boundary.

The tree::

    ProbeError                      reason
    ├── DnsError
    │   ├── DnsTimeout              dns_timeout
    │   ├── DnsServfail             dns_servfail
    │   ├── DnsNxdomain             dns_nxdomain
    │   ├── DnsRefused              dns_refused
    │   ├── DnsNoAnswer             dns_no_answer
    │   ├── DnsMalformed            dns_malformed
    │   └── DnsTransportError       dns_transport
    └── HttpError
        ├── ConnectError            connect_error
        ├── TlsError                tls_error
        ├── ProbeTimeout            timeout
        ├── HttpStatusError         http_status
        └── ResponseError           bad_response

``reason`` is a :class:`ProbeReason`: it becomes the ``reason`` label of
``routewatch_probe_errors_total`` and the ``reason`` of an ``unknown`` verdict. monitor's
``Reason`` (``monitor.domain.reasons``) includes every one of them.
"""

from __future__ import annotations

import ssl
import sys
from enum import StrEnum
from typing import Any, ClassVar

__all__ = [
    "ConnectError",
    "DnsError",
    "DnsMalformed",
    "DnsNoAnswer",
    "DnsNxdomain",
    "DnsRefused",
    "DnsServfail",
    "DnsTimeout",
    "DnsTransportError",
    "HttpError",
    "HttpStatusError",
    "ProbeError",
    "ProbeReason",
    "ProbeTimeout",
    "ResponseError",
    "TlsError",
    "map_http_exception",
]


class ProbeReason(StrEnum):
    """Why a measurement failed or what in an answer could not be understood."""

    PROBE_ERROR = "probe_error"
    DNS_ERROR = "dns_error"
    DNS_TIMEOUT = "dns_timeout"
    DNS_SERVFAIL = "dns_servfail"
    DNS_NXDOMAIN = "dns_nxdomain"
    DNS_REFUSED = "dns_refused"
    DNS_NO_ANSWER = "dns_no_answer"
    DNS_MALFORMED = "dns_malformed"
    DNS_TRANSPORT = "dns_transport"
    HTTP_ERROR = "http_error"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    BAD_RESPONSE = "bad_response"
    SERVER_TIMING_MALFORMED = "server_timing_malformed"
    POP_MISSING = "pop_missing"
    POP_INVALID = "pop_invalid"
    X_CACHE_UNKNOWN = "x_cache_unknown"


class ProbeError(Exception):
    """A measurement that could not be completed; ``reason`` is a bounded label value."""

    reason: ClassVar[ProbeReason] = ProbeReason.PROBE_ERROR

    def __init__(self, message: str, *, target: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.target = target

    def __str__(self) -> str:
        return f"{self.message} ({self.target})" if self.target else self.message


class DnsError(ProbeError):
    reason = ProbeReason.DNS_ERROR


class DnsTimeout(DnsError):
    reason = ProbeReason.DNS_TIMEOUT


class DnsServfail(DnsError):
    reason = ProbeReason.DNS_SERVFAIL


class DnsNxdomain(DnsError):
    reason = ProbeReason.DNS_NXDOMAIN


class DnsRefused(DnsError):
    reason = ProbeReason.DNS_REFUSED


class DnsNoAnswer(DnsError):
    reason = ProbeReason.DNS_NO_ANSWER


class DnsMalformed(DnsError):
    reason = ProbeReason.DNS_MALFORMED


class DnsTransportError(DnsError):
    reason = ProbeReason.DNS_TRANSPORT


class HttpError(ProbeError):
    reason = ProbeReason.HTTP_ERROR


class ConnectError(HttpError):
    reason = ProbeReason.CONNECT_ERROR


class TlsError(HttpError):
    reason = ProbeReason.TLS_ERROR


class ProbeTimeout(HttpError):
    reason = ProbeReason.TIMEOUT


class HttpStatusError(HttpError):
    reason = ProbeReason.HTTP_STATUS

    def __init__(self, message: str, *, status: int, target: str = "") -> None:
        super().__init__(message, target=target)
        self.status = status


class ResponseError(HttpError):
    """The response could not be read or parsed (bad header, body over the limit, bad JSON)."""

    reason = ProbeReason.BAD_RESPONSE


def map_http_exception(exc: BaseException, target: str) -> HttpError:
    """Map an httpx/httpcore/h11/ssl/OS exception to the typed tree (the one boundary)."""
    # An httpx (h11) exception implies httpx (h11) is loaded; importing httpx here, mid-round,
    # would stall the event loop for tens of milliseconds, and the probes do not use it.
    httpx: Any = sys.modules.get("httpx")
    chain = list(_causes(exc))
    if (httpx is not None and isinstance(exc, httpx.TimeoutException)) \
            or any(isinstance(c, TimeoutError) for c in chain):
        phase = type(exc).__name__.replace("Timeout", "").lower() or "request"
        return ProbeTimeout(f"timed out ({phase})", target=target)
    cert = next((c for c in chain if isinstance(c, ssl.SSLCertVerificationError)), None)
    if cert is not None:
        return TlsError(f"certificate verification failed: {cert.verify_message}", target=target)
    tls = next((c for c in chain if isinstance(c, ssl.SSLError)
                and not isinstance(c, ssl.SSLWantReadError | ssl.SSLWantWriteError)), None)
    if tls is not None:
        return TlsError(f"TLS handshake failed: {tls.reason or tls}", target=target)
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return ConnectError("connection refused", target=target)
    if any(isinstance(c, ConnectionResetError) for c in chain):
        return ConnectError("connection reset by peer", target=target)
    h11: Any = sys.modules.get("h11")
    if h11 is not None and isinstance(exc, h11.RemoteProtocolError):
        return ResponseError(f"protocol error: {exc}", target=target)
    if httpx is not None:
        if isinstance(exc, httpx.ConnectError):
            return ConnectError(f"connection failed: {exc}", target=target)
        if isinstance(exc, httpx.RemoteProtocolError):
            return ResponseError(f"protocol error: {exc}", target=target)
        if isinstance(exc, httpx.TransportError):
            return ConnectError(f"transport error: {exc}", target=target)
    if isinstance(exc, OSError):
        return ConnectError(f"network error: {exc.strerror or exc}", target=target)
    return HttpError(f"{type(exc).__name__}: {exc}", target=target)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, its causes/contexts and exceptions carried in args (httpcore wraps so)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 32:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
    return seen
