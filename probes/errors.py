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

``reason`` is a short, bounded string: it becomes the ``reason`` label of
``routewatch_probe_errors_total`` and the ``reason`` of an ``unknown`` verdict.
"""

from __future__ import annotations

import ssl
import sys
from typing import Any

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
    "ProbeTimeout",
    "ResponseError",
    "TlsError",
    "map_http_exception",
]


class ProbeError(Exception):
    """A measurement that could not be completed; ``reason`` is a bounded label value."""

    reason = "probe_error"

    def __init__(self, message: str, *, target: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.target = target

    def __str__(self) -> str:
        return f"{self.message} ({self.target})" if self.target else self.message


class DnsError(ProbeError):
    reason = "dns_error"


class DnsTimeout(DnsError):
    reason = "dns_timeout"


class DnsServfail(DnsError):
    reason = "dns_servfail"


class DnsNxdomain(DnsError):
    reason = "dns_nxdomain"


class DnsRefused(DnsError):
    reason = "dns_refused"


class DnsNoAnswer(DnsError):
    reason = "dns_no_answer"


class DnsMalformed(DnsError):
    reason = "dns_malformed"


class DnsTransportError(DnsError):
    reason = "dns_transport"


class HttpError(ProbeError):
    reason = "http_error"


class ConnectError(HttpError):
    reason = "connect_error"


class TlsError(HttpError):
    reason = "tls_error"


class ProbeTimeout(HttpError):
    reason = "timeout"


class HttpStatusError(HttpError):
    reason = "http_status"

    def __init__(self, message: str, *, status: int, target: str = "") -> None:
        super().__init__(message, target=target)
        self.status = status


class ResponseError(HttpError):
    """The response could not be read or parsed (bad header, body over the limit, bad JSON)."""

    reason = "bad_response"


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
