"""CDN probe: request the CloudFront name as a client would and read what the edge tells.

The name is resolved through the vantage point's resolver; the request is cache-busted (a unique
query string) so the edge must go to the origin, and optionally repeated to observe a hit. Headers
are parsed robustly: case-insensitive, several ``Server-Timing`` headers merged, unknown metrics
kept but not interpreted, malformed entries reported as :class:`HeaderProblem` (never raised),
POP codes validated (anything else is ``other``).
"""

from __future__ import annotations

import re
import ssl
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import field
from types import MappingProxyType
from typing import Literal, TypeAlias

from probes.addresses import AddressPolicy, IpFamily
from probes.dns import DnsEvidence, DnsQuery, probe_dns
from probes.errors import ProbeError, ProbeReason
from probes.http import HttpEvidence, HttpTarget, probe_http
from probes.patterns import POP_CODE
from probes.records import record

__all__ = [
    "POP_CODE",
    "CacheResult",
    "CdnEvidence",
    "CdnHeaders",
    "CdnTarget",
    "HeaderProblem",
    "parse_cdn_headers",
    "parse_server_timing",
    "pop_code",
    "probe_cdn",
    "request_source",
]


CacheResult: TypeAlias = Literal[
    "hit", "miss", "refresh_hit", "error", "limit_exceeded", "redirect", "function",
    "capacity_exceeded", "other"]
"""The edge's cache result (``x-cache``, else Server-Timing ``cdn-cache-*``)."""
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_X_CACHE: dict[str, CacheResult] = {
    "hit": "hit", "miss": "miss", "refreshhit": "refresh_hit", "error": "error",
    "limitexceeded": "limit_exceeded", "redirect": "redirect",
    "functiongeneratedresponse": "function", "capacityexceeded": "capacity_exceeded",
}
_SERVER_TIMING_CACHE: dict[str, CacheResult] = {"cdn-cache-hit": "hit", "cdn-cache-miss": "miss",
                        "cdn-cache-refresh": "refresh_hit"}
MAX_SERVER_TIMING_ENTRIES = 64  # more is not CloudFront: stop parsing, report it
MAX_SERVER_TIMING_MS = 1e6  # a "dur" over ~17 minutes measured nothing real: dropped, reported


@record
class HeaderProblem:
    """A header that could not be understood; ``reason`` is a bounded label value."""

    reason: Literal[ProbeReason.SERVER_TIMING_MALFORMED, ProbeReason.POP_MISSING,
                    ProbeReason.POP_INVALID, ProbeReason.X_CACHE_UNKNOWN]
    message: str


@record
class ServerTimingEntry:
    name: str
    duration_seconds: float | None = None
    description: str | None = None


@record
class CdnHeaders:
    pop: str | None  # a valid POP code, "other" for anything else, None when absent
    pop_raw: str | None
    cache: CacheResult | None
    request_id: str | None
    origin_region: str | None
    server_timing: Mapping[str, float] = field(default_factory=dict)  # seconds, by metric
    server_timing_desc: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[HeaderProblem, ...] = ()

    def __post_init__(self) -> None:  # read-only copies: evidence never changes once taken
        object.__setattr__(self, "server_timing", MappingProxyType(dict(self.server_timing)))
        object.__setattr__(self, "server_timing_desc",
                           MappingProxyType(dict(self.server_timing_desc)))


def pop_code(value: str | None) -> str | None:
    """A validated POP code, ``other`` for anything else (keeps label values bounded)."""
    if value is None:
        return None
    text = value.strip().upper()
    return text if POP_CODE.match(text) else "other"


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_server_timing(
    values: Sequence[str],
) -> tuple[list[ServerTimingEntry], list[HeaderProblem]]:
    """Parse one or more ``Server-Timing`` header values (RFC: W3C Server Timing)."""
    entries: list[ServerTimingEntry] = []
    problems: list[HeaderProblem] = []
    raw_entries = [e for value in values for e in _split_outside_quotes(value, ",")]
    if len(raw_entries) > MAX_SERVER_TIMING_ENTRIES:
        problems.append(HeaderProblem(ProbeReason.SERVER_TIMING_MALFORMED,
                                      f"{len(raw_entries)} Server-Timing entries; read the first "
                                      f"{MAX_SERVER_TIMING_ENTRIES}"))
        raw_entries = raw_entries[:MAX_SERVER_TIMING_ENTRIES]
    for raw in raw_entries:
        if not raw.strip():
            continue
        name, *params = (p.strip() for p in _split_outside_quotes(raw, ";"))
        if not _TOKEN.match(name):
            problems.append(HeaderProblem(ProbeReason.SERVER_TIMING_MALFORMED,
                                          f"bad Server-Timing metric name {name[:40]!r}"))
            continue
        duration: float | None = None
        description: str | None = None
        for param in params:
            key, has_value, value = param.partition("=")
            key = key.strip().lower()
            if key == "dur" and has_value:
                try:
                    duration = float(_unquote(value))
                except ValueError:
                    problems.append(HeaderProblem(
                        ProbeReason.SERVER_TIMING_MALFORMED,
                        f"{name}: dur={value[:20]!r} is not a number"))
                    continue
                if not 0 <= duration <= MAX_SERVER_TIMING_MS:  # negative, NaN, inf, absurd
                    problems.append(HeaderProblem(ProbeReason.SERVER_TIMING_MALFORMED,
                                                  f"{name}: dur={value[:20]!r} is out of range"))
                    duration = None
            elif key == "desc" and has_value:
                description = _unquote(value)[:200]
            elif not key:
                problems.append(HeaderProblem(ProbeReason.SERVER_TIMING_MALFORMED,
                                              f"{name}: empty parameter"))
        entries.append(ServerTimingEntry(name.lower(), None if duration is None
                                         else duration / 1000.0, description))
    return entries, problems


def parse_cdn_headers(headers: Sequence[tuple[str, str]], region_header: str) -> CdnHeaders:
    """Read CloudFront's headers (names compared case-insensitively)."""

    def values(name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in headers if k.lower() == wanted]

    def first(name: str) -> str | None:
        found = values(name)
        return found[0].strip() if found else None

    problems: list[HeaderProblem] = []
    entries, timing_problems = parse_server_timing(values("server-timing"))
    problems.extend(timing_problems)
    timing = {e.name: e.duration_seconds for e in entries if e.duration_seconds is not None}
    desc = {e.name: e.description for e in entries if e.description is not None}

    pop_raw = first("x-amz-cf-pop") or desc.get("cdn-pop")
    pop = pop_code(pop_raw)
    if pop_raw is None:
        problems.append(HeaderProblem(ProbeReason.POP_MISSING, "no x-amz-cf-pop header"))
    elif pop == "other":
        problems.append(HeaderProblem(ProbeReason.POP_INVALID,
                                      f"{pop_raw[:40]!r} is not a POP code"))

    cache: CacheResult | None = None
    x_cache = first("x-cache")
    if x_cache is not None:
        word = x_cache.split(" from ")[0].strip().lower()
        cache = _X_CACHE.get(word, "other")
        if cache == "other":
            problems.append(HeaderProblem(ProbeReason.X_CACHE_UNKNOWN, f"x-cache {x_cache[:40]!r}"))
    else:
        cache = next((v for k, v in _SERVER_TIMING_CACHE.items()
                      if any(e.name == k for e in entries)), None)
    return CdnHeaders(
        pop=pop,
        pop_raw=pop_raw,
        cache=cache,
        request_id=first("x-amz-cf-id") or desc.get("cdn-rid"),
        origin_region=first(region_header),
        server_timing=timing,
        server_timing_desc=desc,
        problems=tuple(problems),
    )


@record
class CdnTarget:
    cdn_name: str
    resolver: str
    resolver_port: int = 53
    port: int = 443
    path: str = "/health"
    region_header: str = "x-origin-region"
    cache_bust: bool = True
    observe_hit: bool = True
    local_address: str | None = None
    dns_timeout_s: float = 2.0
    rdtype: str = "A"  # the records resolved for the edge: A, or AAAA for IPv6
    request_local_address: str | None = None  # the requests' source, when not local_address's
    # family (the resolver is reached over IPv4, the edge over IPv6)


def request_source(target: CdnTarget, edge: str) -> str | None:
    """The address the requests to ``edge`` are sent from: ``request_local_address``, else the
    resolver's source when it is of the edge's family, else the system's choice (an IPv4
    source cannot send to an IPv6 edge)."""
    if target.request_local_address is not None:
        return target.request_local_address
    if target.local_address is not None and \
            IpFamily.of(target.local_address) is IpFamily.of(edge):
        return target.local_address
    return None


@record
class CdnEvidence:
    target: CdnTarget
    dns: DnsEvidence
    first: HttpEvidence | None = None
    first_headers: CdnHeaders | None = None
    repeat: HttpEvidence | None = None
    repeat_headers: CdnHeaders | None = None

    @property
    def error(self) -> ProbeError | None:
        if self.dns.error is not None:
            return self.dns.error
        return self.first.error if self.first is not None else None


async def probe_cdn(
    target: CdnTarget,
    *,
    ssl_context: ssl.SSLContext,
    connect_timeout_s: float = 3.0,
    request_timeout_s: float = 5.0,
    body_limit_bytes: int = 65536,
    address_policy: AddressPolicy | None = None,
) -> CdnEvidence:
    """Resolve the CDN name, request it (cache-busted), and optionally once more for a hit
    (an edge address ``address_policy`` refuses is not connected to)."""
    dns_answer = await probe_dns(DnsQuery(
        qname=target.cdn_name, server=target.resolver, port=target.resolver_port,
        rdtype=target.rdtype, source_address=target.local_address,
        timeout_s=target.dns_timeout_s))
    if dns_answer.error is not None or not dns_answer.addresses:
        return CdnEvidence(target, dns_answer)
    path = target.path
    if target.cache_bust:
        path += ("&" if "?" in path else "?") + f"routewatch={uuid.uuid4().hex}"
    edge = dns_answer.addresses[0]
    request = HttpTarget(host=target.cdn_name, address=edge, port=target.port, path=path,
                         local_address=request_source(target, edge))

    async def fetch() -> tuple[HttpEvidence, CdnHeaders | None]:
        evidence = await probe_http(request, ssl_context=ssl_context,
                                    connect_timeout_s=connect_timeout_s,
                                    request_timeout_s=request_timeout_s,
                                    body_limit_bytes=body_limit_bytes,
                                    address_policy=address_policy)
        headers = (parse_cdn_headers(evidence.headers, target.region_header)
                   if evidence.status is not None else None)
        return evidence, headers

    first, first_headers = await fetch()
    if first.error is not None or not target.observe_hit:
        return CdnEvidence(target, dns_answer, first, first_headers)
    repeat, repeat_headers = await fetch()
    return CdnEvidence(target, dns_answer, first, first_headers, repeat, repeat_headers)
