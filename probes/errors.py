"""Typed errors. Library errors (dnspython, h11, ssl, OSError) are mapped here, at one
boundary (:func:`map_exception`, one ordered table), the original kept as ``__cause__``.

The tree (every error routewatch raises derives from :class:`RoutewatchError`; it is defined here
because probes, the lowest layer, never import monitor)::

    RoutewatchError
    ├── ProbeError                      reason
    │   ├── DnsError                    dns_error
    │   │   ├── DnsTimeout              dns_timeout
    │   │   ├── DnsServfail             dns_servfail
    │   │   ├── DnsNxdomain             dns_nxdomain
    │   │   ├── DnsRefused              dns_refused
    │   │   ├── DnsNoAnswer             dns_no_answer
    │   │   ├── DnsMalformed            dns_malformed
    │   │   └── DnsTransportError       dns_transport
    │   └── HttpError                   http_error
    │       ├── AddressNotAllowed       address_not_allowed
    │       ├── ConnectError            connect_error
    │       ├── TlsError                tls_error
    │       ├── ProbeTimeout            timeout
    │       ├── HttpStatusError         http_status
    │       └── ResponseError           bad_response
    └── (monitor) ConfigError, DocumentError, IpRangesError, UnknownVantagePoint, AwsError,
        LabError, CliError, … — the CLI turns each into an exit code in one place
        (monitor.cli.errors)

``reason`` is a :class:`ProbeReason`: it becomes the ``reason`` label of
``routewatch_probe_errors_total`` and the ``reason`` of an ``unknown`` verdict. monitor's
``Reason`` (``monitor.domain.reasons``) includes every one of them.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from enum import StrEnum
from functools import cache
from typing import ClassVar, Literal, TypeAlias, TypeVar

from probes.records import record

__all__ = [
    "AddressNotAllowed",
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
    "Protocol",
    "ResponseError",
    "RoutewatchError",
    "TlsError",
    "dns_error",
    "http_error",
    "map_exception",
]


class RoutewatchError(Exception):
    """The root of every error routewatch raises on purpose."""


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
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    BAD_RESPONSE = "bad_response"
    SERVER_TIMING_MALFORMED = "server_timing_malformed"
    POP_MISSING = "pop_missing"
    POP_INVALID = "pop_invalid"
    X_CACHE_UNKNOWN = "x_cache_unknown"


class ProbeError(RoutewatchError):
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


class AddressNotAllowed(HttpError):
    """The address is in a range probes never connect to (:mod:`probes.addresses`); refused
    before any connection."""

    reason = ProbeReason.ADDRESS_NOT_ALLOWED


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


Protocol: TypeAlias = Literal["dns", "http"]
"""Which probe met the library error: the same ``TimeoutError`` is a DNS or an HTTP timeout."""


@record
class _Failure:
    """What a rule may say about a failure: the library exception that matched, and the probe's
    own timeout."""

    matched: BaseException
    timeout_s: float | None


@record
class _Rule:
    protocol: Protocol
    types: tuple[type[BaseException], ...]
    anywhere: bool  # match in the cause/context chain (httpcore wraps), not only what was raised
    build: Callable[[_Failure], ProbeError]
    unless: tuple[type[BaseException], ...] = ()


@cache
def _rules() -> tuple[_Rule, ...]:
    """The mapping table, first match wins (built on first use, when the stacks are loaded)."""
    import dns.exception
    import dns.message
    import dns.name
    import h11

    return (
        _Rule("dns", (dns.exception.Timeout,), False,
              lambda f: DnsTimeout(f"no answer within {f.timeout_s:g} s")),
        _Rule("dns", (EOFError,), False,  # dnspython's TCP read: the server closed mid-exchange
              lambda f: DnsTransportError("the TCP connection closed without an answer")),
        _Rule("dns", (dns.exception.FormError, dns.message.ShortHeader, dns.message.TrailingJunk,
                      dns.exception.SyntaxError, dns.name.BadLabelType, ValueError), False,
              lambda f: DnsMalformed(f"malformed DNS response: {f.matched}")),
        _Rule("dns", (dns.exception.DNSException,), False,
              lambda f: DnsMalformed(f"bad DNS response: {f.matched}")),
        _Rule("dns", (OSError,), False,
              lambda f: DnsTransportError(f"network error: {_os_message(f.matched)}")),
        _Rule("http", (TimeoutError,), False,  # the probe's own deadline for the whole answer
              lambda f: ProbeTimeout(f"no complete answer within {f.timeout_s:g} s")),
        _Rule("http", (TimeoutError,), True, lambda f: ProbeTimeout("timed out (request)")),
        _Rule("http", (ssl.SSLCertVerificationError,), True,
              lambda f: TlsError(f"certificate verification failed: "
                                 f"{getattr(f.matched, 'verify_message', f.matched)}")),
        _Rule("http", (ssl.SSLError,), True,
              lambda f: TlsError(f"TLS handshake failed: "
                                 f"{getattr(f.matched, 'reason', None) or f.matched}"),
              unless=(ssl.SSLWantReadError, ssl.SSLWantWriteError)),
        _Rule("http", (ConnectionRefusedError,), True,
              lambda f: ConnectError("connection refused")),
        _Rule("http", (ConnectionResetError,), True,
              lambda f: ConnectError("connection reset by peer")),
        _Rule("http", (h11.RemoteProtocolError,), False,
              lambda f: ResponseError(f"protocol error: {f.matched}")),
        _Rule("http", (OSError,), False,
              lambda f: ConnectError(f"network error: {_os_message(f.matched)}")),
    )


_E = TypeVar("_E", bound="ProbeError")


def dns_error(exc: BaseException, *, target: str, timeout_s: float) -> DnsError:
    """:func:`map_exception` for the DNS probe."""
    error = map_exception(exc, "dns", target=target, timeout_s=timeout_s)
    return error if isinstance(error, DnsError) else _unforeseen(DnsError, exc, target)


def http_error(exc: BaseException, *, target: str, timeout_s: float) -> HttpError:
    """:func:`map_exception` for the HTTP probe."""
    error = map_exception(exc, "http", target=target, timeout_s=timeout_s)
    return error if isinstance(error, HttpError) else _unforeseen(HttpError, exc, target)


def _unforeseen(kind: type[_E], exc: BaseException, target: str) -> _E:
    error = kind(f"{type(exc).__name__}: {exc}", target=target)
    error.__cause__ = exc
    return error


def _os_message(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def map_exception(exc: BaseException, protocol: Protocol, *, target: str = "",
                  timeout_s: float | None = None) -> ProbeError:
    """The typed error for a library exception met by a ``protocol`` probe (the one boundary);
    ``exc`` is kept as its ``__cause__``. Anything unforeseen is a plain DnsError/HttpError."""
    chain = _causes(exc)
    error: ProbeError | None = None
    for rule in _rules():
        if rule.protocol != protocol:
            continue
        candidates = chain if rule.anywhere else [exc]
        matched = next((c for c in candidates if isinstance(c, rule.types)
                        and not isinstance(c, rule.unless)), None)
        if matched is not None:
            error = rule.build(_Failure(matched, timeout_s))
            break
    if error is None:
        return _unforeseen(DnsError if protocol == "dns" else HttpError, exc, target)
    error.target = target
    error.__cause__ = exc
    return error


def _causes(exc: BaseException) -> Sequence[BaseException]:
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
