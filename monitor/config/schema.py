"""The configuration's schema: frozen dataclasses, strict, unknown keys rejected.

The classes are frozen dataclasses (``@record``), so importing them (every part of routewatch
does, the Lambda handler at each cold start) loads no validator library. What a field accepts
beyond its type is written in its annotation, pydantic's way (``Annotated[int, Field(ge=1,
...)]``, ``AfterValidator``); annotations are not evaluated at import (``from __future__ import
annotations``), and :mod:`monitor.config.validation`, which only the loader imports, reads them
and builds the pydantic validator (and the JSON Schema) from them. A class's checks across its
fields are its ``check`` method, run after its fields validate. Constructing a class directly
validates nothing: data from a user goes through :func:`monitor.config.load_config` or
:func:`monitor.config.validation.validate_section`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from monitor.config.loader import empty_entries, reference_error
from monitor.domain.patterns import POP_CODE as _POP_CODE
from monitor.domain.patterns import REGION_NAME as _REGION_NAME
from probes.addresses import IpFamily
from probes.errors import RoutewatchError
from probes.records import record

if TYPE_CHECKING:  # in annotations only; monitor.config.validation supplies them
    from pydantic import (
        AfterValidator,
        BeforeValidator,
        Field,
        GetCoreSchemaHandler,
        StrictFloat,
        StrictInt,
    )
    from pydantic_core import CoreSchema

__all__ = [
    "DEFAULT_SERVICE",
    "AlarmSettings",
    "CdnSettings",
    "CloudWatchSettings",
    "Config",
    "Estimator",
    "IpFamily",
    "IpRangesSettings",
    "ProbeSettings",
    "Region",
    "ServeSettings",
    "Service",
    "ServiceEntry",
    "ServiceRegion",
    "SeveralServices",
    "Tolerance",
    "VantagePoint",
    "split_endpoint",
    "split_listen",
]

_LABEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class _Section:
    """A part of the configuration. pydantic validates it (and writes its JSON Schema) through
    :func:`monitor.config.validation.section_schema`, which reads its annotations."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        from monitor.config.validation import section_schema

        return section_schema(cls, handler)


def _host(value: str) -> str:
    if not _HOST_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid DNS host name")
    return value.rstrip(".").lower()


def _optional_host(value: str | None) -> str | None:
    return None if value is None else _host(value)


def _endpoint(value: str, default_port: int) -> str:
    """Normalise ``address`` or ``address:port`` (``[v6]:port``) and validate the address."""
    host, port = split_endpoint(value, default_port)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _dns_endpoint(value: str) -> str:
    return _endpoint(value, 53)


def _dns_endpoints(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_endpoint(item, 53) for item in value)


def split_endpoint(value: str, default_port: int) -> tuple[str, int]:
    """Split ``host[:port]`` / ``[v6]:port`` into an IP address and a port."""
    text = value.strip()
    port = default_port
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(f"{value!r}: '[' without ']' (give [v6]:port, e.g. [::1]:53)")
        if rest.startswith(":"):
            port = _port(rest[1:])
        elif rest:
            raise ValueError(f"{value!r}: expected ':port' after ']'")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text)
    else:
        host = text
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (optionally with :port)") from None
    return host, port


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (address, port) for a listening socket; a bare ``:port``
    means 127.0.0.1 and port 0 asks the kernel for a free port."""
    text = value.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(f"{value!r}: '[' without ']' (give [v6]:port, e.g. [::1]:9465)")
        port_text = rest.removeprefix(":")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"{value!r}: give host:port, e.g. 127.0.0.1:9465")
    host = host or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r}: {host!r} is not an IP address") from None
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"{value!r}: {port_text!r} is not a port")
    return host, int(port_text)


def _listen(value: str) -> str:
    split_listen(value)  # validated when the file loads, not when serve starts
    return value.strip()


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not between 1 and 65535")
    return int(text)


def _region_name(name: str) -> str:
    if not _REGION_NAME.match(name):
        raise ValueError(f"{name!r} is not an AWS region name such as eu-west-1")
    return name


def _label_name(name: str) -> str:
    if not _LABEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid name (lower case letters, digits, - and _)")
    return name


def _health_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid HTTP header name")
    return value.lower()


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    return value


def _ip_addresses(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_ip_address(item) for item in value)


def _subnet(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a subnet such as 198.51.100.0/24") from None


def _source_address(value: str | None) -> str | None:
    return None if value is None else _ip_address(value)


def _source_address_v6(value: str | None) -> str | None:
    if value is not None and IpFamily.of(value) is not IpFamily.IPV6:
        raise ValueError(f"{value!r} is not an IPv6 address")
    return value


def _location(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z]{3}", value):
        raise ValueError(f"{value!r} is not a three-letter IATA airport code")
    from monitor.domain.geo import airport_location  # the airport table loads only when needed

    if airport_location(value) is None:
        raise ValueError(f"{value.upper()!r} is not a known IATA airport code")
    return value.upper()


def _one_family(value: object) -> object:
    return [value] if isinstance(value, str) else value  # `families: ipv4` is [ipv4]


def _families(value: tuple[IpFamily, ...]) -> tuple[IpFamily, ...]:
    if len(set(value)) != len(value):
        raise ValueError("each family once")
    if value[0] is not IpFamily.IPV4:
        # the first family is measured at every region's written addresses; IPv6 is measured
        # beside it, where it has addresses
        raise ValueError("must start with ipv4 ([ipv4] or [ipv4, ipv6]): IPv6 is measured "
                         "beside IPv4 where it has addresses; IPv6-only is not supported")
    return value


def _networks(value: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(str(ipaddress.ip_network(item, strict=False)) for item in value)
    except ValueError as exc:
        raise ValueError(f"{exc} (give networks such as 127.0.0.0/8 or fd00::/8)") from None


def _https_url(value: str | None) -> str | None:
    if value is not None and not value.lower().startswith("https://"):
        raise ValueError(f"{value!r} must be an https:// URL (what it serves decides "
                         f"attribution, so it must not be forgeable on the way)")
    return value


@record(kw_only=True)
class Service(_Section):
    """The watched application: its latency-routed origin name and CDN name."""

    origin_name: Annotated[str, AfterValidator(_host), Field(
        description="Latency-routed origin name, e.g. global-alb.example.com")]
    cdn_name: Annotated[str | None, AfterValidator(_optional_host), Field(
        description="CloudFront name clients use, e.g. app.example.com")] = None
    port: Annotated[StrictInt, Field(
        ge=1, le=65535, description="HTTPS port of the origin and the CDN")] = 443
    health_path: Annotated[str, AfterValidator(_health_path), Field(
        description="Path answering the app contract")] = "/health"
    region_header: Annotated[str, AfterValidator(_header_name), Field(
        description="Response header naming the region")] = "x-origin-region"
    ca_file: Annotated[Path | None, Field(
        description="PEM bundle to verify certificates against (default: system store)")] = None


@record(kw_only=True)
class ServiceRegion(_Section):
    """A region as one service reaches it: its own ALB name and/or addresses and port; whatever
    is not given is the top-level region's."""

    alb_name: Annotated[str | None, AfterValidator(_optional_host), Field(
        description="This service's ALB DNS name in the region")] = None
    addresses: Annotated[tuple[str, ...], AfterValidator(_ip_addresses), Field(
        description="This service's ALB addresses")] = ()
    port: Annotated[StrictInt | None, Field(
        ge=1, le=65535, description="Overrides the port")] = None


@record(kw_only=True)
class ServiceEntry(Service):
    """One of ``services``: a watched application with its own names and, per region, its own
    ALBs (``regions``: absent → every top-level region as written there; present → only the
    regions named, each with its endpoints or, left empty, the top-level ones)."""

    # `eu-west-1:` with nothing after it: the top-level region as it is
    regions: Annotated[
        dict[Annotated[str, AfterValidator(_region_name)], ServiceRegion] | None,
        BeforeValidator(empty_entries),
        Field(description="The regions this service runs in (names of the top-level regions), "
                          "with its own alb_name/addresses/port where they differ")] = None

    def service(self) -> Service:
        """The application without its ``regions`` (what a per-service view watches)."""
        return Service(**{item.name: getattr(self, item.name) for item in fields(Service)})


DEFAULT_SERVICE = "default"
"""The name of the one service of a configuration written with the singular ``service:`` (its
``service`` label and JSON ``service`` key)."""


class SeveralServices(RoutewatchError, LookupError):
    """A configuration with several ``services`` was asked for "the" service: take one of
    :meth:`Config.service_views` (or ``--service NAME``)."""


@record(kw_only=True)
class Region(_Section):
    """One deployment region: its ALB name and/or addresses."""

    alb_name: Annotated[str | None, AfterValidator(_optional_host), Field(
        description="The region's own ALB DNS name (resolved A and AAAA, one per family)")] = None
    addresses: Annotated[tuple[str, ...], AfterValidator(_ip_addresses), Field(
        description="The region's ALB addresses, IPv4 and IPv6 (each measured in its family)",
    )] = ()
    port: Annotated[StrictInt | None, Field(
        ge=1, le=65535, description="Overrides service.port")] = None

    def check(self) -> None:
        if not self.alb_name and not self.addresses:
            raise ValueError("give alb_name or addresses (how to reach the region directly)")


@record(kw_only=True)
class VantagePoint(_Section):
    """A place probes run from."""

    resolver: Annotated[str, AfterValidator(_dns_endpoint), Field(
        description="Recursive resolver, address[:port]")]
    client_subnet: Annotated[str | None, AfterValidator(_subnet), Field(
        description="Client subnet sent as EDNS Client Subnet to the authoritative servers",
    )] = None
    source_address: Annotated[str | None, AfterValidator(_source_address), Field(
        description="Local address to send probes from")] = None
    source_address_v6: Annotated[str | None, AfterValidator(_source_address_v6), Field(
        description="Local IPv6 address to send IPv6 probes from (default: the system "
                    "chooses; source_address when that is an IPv6 address)")] = None
    region: Annotated[str | None, Field(
        description="The AWS region this vantage point runs in")] = None
    location: Annotated[str | None, AfterValidator(_location), Field(
        description="IATA airport code near the vantage point (nominal closest region)",
    )] = None

    def local_address(self, family: IpFamily) -> str | None:
        """The address probes of ``family`` are sent from (None: the system chooses)."""
        if family is IpFamily.IPV4:
            return self.source_address
        if self.source_address_v6 is not None:
            return self.source_address_v6
        if self.source_address is not None and IpFamily.of(self.source_address) is family:
            return self.source_address
        return None


class Estimator(StrEnum):
    """How a region's round-trip latency is estimated from its samples (the minimum over them).

    ``auto`` (default): ``connect`` where the TCP peer is the server, else ``first_byte``
    (below). Decided from the samples themselves: a connect answered by something near (a
    transparent proxy, a middlebox, the loopback lab's delay proxy) reads far below the
    handshake's round trip, consistently; then the vantage point's whole row compares by first
    byte, so every region of it is read alike. Each region row says which estimate it used and
    why (``estimator``, ``estimator_reason``). ``connect``: TCP connect; the cleanest round trip
    on a real network (the server's kernel answers it: no TLS, no app), but zero on loopback.
    ``first_byte``: request sent → first response byte; one round trip plus the app's own time
    for the health path (a verdict it gives is checked against network distance, so a slow app
    near by is not called a distant region: ``slow_app``). ``handshake``: the TLS handshake
    divided by the round trips its negotiated version costs (TLS 1.3: one; TLS 1.2: two, one when
    resumed): network distance plus crypto, never the app's time. Every sample measures connect,
    the handshake and the first byte whatever the estimator.
    """

    AUTO = "auto"
    FIRST_BYTE = "first_byte"
    HANDSHAKE = "handshake"
    CONNECT = "connect"


@record(kw_only=True)
class Tolerance(_Section):
    """A worse region within tolerance is not a misroute: penalty ≤ max(absolute, relative×best)."""

    absolute_ms: Annotated[StrictFloat, Field(
        ge=0, description="Penalty in milliseconds always tolerated (jitter, not routing)")] = 10.0
    relative: Annotated[StrictFloat, Field(
        ge=0, le=10,
        description="Penalty tolerated as a fraction of the closest region's round trip")] = 0.25
    slow_app_ms: Annotated[StrictFloat, Field(
        ge=0, description="App time (first byte minus the handshake's round trip) beyond "
        "which a serving region is reported as slow_app (and a first-byte misroute that network "
        "distance does not confirm is not one); 0 turns this off")] = 50.0


@record(kw_only=True)
class ProbeSettings(_Section):
    """How each round measures: samples, timeouts, the round deadline, pacing, the estimator."""

    samples: Annotated[StrictInt, Field(
        ge=1, le=50, description="Baseline samples per region")] = 3
    dns_timeout_s: Annotated[StrictFloat, Field(
        gt=0, le=60, description="Seconds for one DNS query")] = 2.0
    connect_timeout_s: Annotated[StrictFloat, Field(
        gt=0, le=60, description="Seconds for one TCP connect (and TLS handshake)")] = 3.0
    request_timeout_s: Annotated[StrictFloat, Field(
        gt=0, le=120, description="Seconds for one HTTPS request, all phases")] = 5.0
    round_deadline_s: Annotated[StrictFloat, Field(
        gt=0, le=600, description="Hard limit for one round")] = 15.0
    pace_ms: Annotated[StrictFloat, Field(
        ge=0, le=1000, description="Gap between check starts (bursts distort timings)")] = 10.0
    body_limit_bytes: Annotated[StrictInt, Field(
        ge=0, le=16 * 1024 * 1024,
        description="Most bytes of a response body read (the health JSON); the rest is dropped",
    )] = 65536
    estimator: Annotated[Estimator, Field(
        description="Round-trip estimate: auto (connect where the TCP peer is the server, else "
                    "first_byte: decided per round from the samples), connect (TCP connect; "
                    "zero behind a local proxy), first_byte (request to first byte: includes "
                    "the app's time; its misroutes are checked against network distance) or "
                    "handshake (the TLS handshake divided by the round trips its version "
                    "costs; network distance plus crypto)")] = Estimator.AUTO
    families: Annotated[tuple[IpFamily, ...], Field(
        min_length=1,
        description="Address families measured and judged on their own: ipv4 (A records, IPv4 "
                    "addresses), ipv6 (AAAA, IPv6); ipv4 first. ipv6 gives results only where "
                    "it has addresses (an AAAA answer, a region's IPv6 address)",
    ), BeforeValidator(_one_family), AfterValidator(_families)] = (IpFamily.IPV4, IpFamily.IPV6)
    allow_addresses: Annotated[tuple[str, ...], AfterValidator(_networks), Field(
        description="Networks a DNS answer may point probes at although they are special "
                    "(loopback, private, link-local …), e.g. [127.0.0.0/8]; others are refused",
    )] = ()

    def check(self) -> None:
        if self.round_deadline_s < self.request_timeout_s:
            raise ValueError("round_deadline_s must be at least request_timeout_s")


@record(kw_only=True)
class IpRangesSettings(_Section):
    """AWS ip-ranges.json, used to attribute an address to a region when nothing better exists."""

    file: Annotated[Path | None, Field(
        description="A local copy of ip-ranges.json (wins over url)")] = None
    url: Annotated[str | None, AfterValidator(_https_url), Field(
        description="https URL of ip-ranges.json, e.g. "
                    "https://ip-ranges.amazonaws.com/ip-ranges.json")] = None
    cache_dir: Annotated[Path | None, Field(
        description="Where the downloaded file is cached (default ~/.cache/routewatch)")] = None
    max_age_hours: Annotated[StrictFloat, Field(
        gt=0, description="Download again when the cached file is older than this")] = 24.0


@record(kw_only=True)
class CdnSettings(_Section):
    """The CDN path: what is requested through CloudFront and how its POPs map to regions."""

    path: Annotated[str, Field(description="Path requested through the CDN")] = "/health"
    cache_bust: Annotated[bool, Field(description="Add a unique query string")] = True
    observe_hit: Annotated[bool, Field(
        description="Repeat the request once to observe a cache hit")] = True
    pop_regions: Annotated[dict[str, str], Field(
        description="Pin a POP prefix (e.g. FRA or FRA56-P1) to a region",
    )] = field(default_factory=dict)


@record(kw_only=True)
class ServeSettings(_Section):
    """``routewatch serve``: the schedule of rounds and where /metrics listens."""

    interval_s: Annotated[StrictFloat, Field(
        ge=1, le=86400, description="Seconds between two rounds of one vantage point")] = 60.0
    jitter_s: Annotated[StrictFloat, Field(
        ge=0, le=3600,
        description="Up to this many seconds of random delay per round (at most half the "
                    "interval is used)")] = 5.0
    misfire_grace_s: Annotated[StrictFloat, Field(
        ge=0, description="A round that could not start on time still runs this late")] = 30.0
    hysteresis_rounds: Annotated[StrictInt, Field(
        ge=1, le=100, description="Rounds that must agree to flip")] = 3
    listen: Annotated[str, AfterValidator(_listen), Field(
        description="Address:port of /metrics and /healthz ([v6]:port for IPv6)",
    )] = "127.0.0.1:9465"


@record(kw_only=True)
class CloudWatchSettings(_Section):
    """``serve`` also sends every round to CloudWatch (PutMetricData; needs the aws extra)."""

    enabled: Annotated[bool, Field(description="Send rounds to CloudWatch")] = False
    namespace: Annotated[str, Field(
        description="CloudWatch namespace of the metrics")] = "RouteWatch"
    region: Annotated[str | None, Field(
        description="Region the metrics go to (default: the AWS default region)")] = None
    buffer_limit: Annotated[StrictInt, Field(
        ge=1, description="Datapoints held while CloudWatch is unreachable (oldest dropped)",
    )] = 10000


@record(kw_only=True)
class AlarmSettings(_Section):
    """The CloudWatch alarms (``routewatch alarms``), the regional probes and Route 53's zone."""

    sns_topic_arn: Annotated[str | None, Field(
        description="SNS topic the alarms notify (in the alarms' region); none: silent")] = None
    misrouted_datapoints: Annotated[StrictInt, Field(
        ge=1, description="M of 'M of N': periods that must be bad for an alarm")] = 3
    misrouted_evaluation_periods: Annotated[StrictInt, Field(
        ge=1, description="N of 'M of N': periods an alarm looks at")] = 5
    period_s: Annotated[StrictInt | None, Field(
        ge=1, description="Alarm period in seconds, a multiple of 60 (the metrics' "
                          "resolution); default: derived from serve.interval_s and "
                          "serve.jitter_s, the shortest period that always holds a round",
    )] = None
    function_name: Annotated[str, Field(
        description="Lambda name in each region")] = "routewatch-probe"
    hosted_zone_id: Annotated[str | None, Field(
        description="Route 53 hosted zone of the origin name (for dns explain)")] = None


@record(kw_only=True)
class Config(_Section):
    """The whole configuration file."""

    # exactly one of service / services (checked in check()), said to editors too
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "oneOf": [{"required": ["service"]}, {"required": ["services"]}]}

    single_service: Annotated[Service | None, Field(
        alias="service",
        description="The watched application (one; its name is 'default'); or give services",
    )] = None
    services: Annotated[
        dict[Annotated[str, AfterValidator(_label_name)], ServiceEntry] | None, Field(
            min_length=1,
            description="The watched applications by name (the service label), sharing regions "
                        "and vantage points; instead of service")] = None
    regions: Annotated[dict[Annotated[str, AfterValidator(_region_name)], Region], Field(
        min_length=1, description="Every region the app runs in, by AWS region name")]
    vantage_points: Annotated[dict[Annotated[str, AfterValidator(_label_name)], VantagePoint],
                              Field(min_length=1, description="Places the probes run from, by "
                                                              "name (the probe label)")]
    authoritative: Annotated[tuple[str, ...], AfterValidator(_dns_endpoints), Field(
        description="The zone's authoritative name servers, address[:port]")] = ()
    probe: Annotated[ProbeSettings, Field(
        description="How each round measures")] = field(default_factory=ProbeSettings)
    tolerance: Annotated[Tolerance, Field(
        description="How much slower a region may be before it is a misroute",
    )] = field(default_factory=Tolerance)
    ip_ranges: Annotated[IpRangesSettings, Field(
        description="AWS ip-ranges.json for attributing addresses",
    )] = field(default_factory=IpRangesSettings)
    cdn: Annotated[CdnSettings, Field(
        description="The CDN path")] = field(default_factory=CdnSettings)
    serve: Annotated[ServeSettings, Field(
        description="routewatch serve")] = field(default_factory=ServeSettings)
    cloudwatch: Annotated[CloudWatchSettings, Field(
        description="CloudWatch export from serve")] = field(default_factory=CloudWatchSettings)
    alarms: Annotated[AlarmSettings, Field(
        description="CloudWatch alarms and Route 53")] = field(default_factory=AlarmSettings)

    @property
    def service(self) -> Service:
        """The one watched application (a per-service view has exactly one; see
        :meth:`service_views`); :class:`SeveralServices` when there are several."""
        if self.single_service is not None:
            return self.single_service
        if self.services is not None and len(self.services) == 1:
            return next(iter(self.services.values()))
        raise SeveralServices(
            f"this configuration watches {len(self.services or ())} services "
            f"({', '.join(self.services or ())}): name one (--service NAME)")

    @property
    def service_names(self) -> tuple[str, ...]:
        """Every service's name, in order ('default' for the singular ``service:``)."""
        return tuple(self.services) if self.services is not None else (DEFAULT_SERVICE,)

    def for_service(self, name: str) -> Config:
        """The configuration as one service sees it: that service alone (as ``service``) and the
        regions it runs in, each with its own endpoints; everything else shared. Every
        per-service part of routewatch (the round of a vantage point, the path table, the
        judges) runs on such a view. ``KeyError`` for a name not configured."""
        if self.services is None:
            if name != DEFAULT_SERVICE:
                raise KeyError(name)
            return self
        entry = self.services[name]
        regions = dict(self.regions)
        if entry.regions is not None:
            regions = {region: _merged(self.regions[region], own)
                       for region, own in entry.regions.items()}
        return replace(self, single_service=entry.service(), services=None, regions=regions)

    def service_settings(self) -> tuple[tuple[tuple[str, ...], Service], ...]:
        """Each service's own settings with the key path they are written at (``service`` or
        ``services.NAME``), without building a view of the whole configuration."""
        if self.services is None:
            return ((("service",), self.service),)
        return tuple((("services", name), entry) for name, entry in self.services.items())

    def service_views(self, names: Sequence[str] | None = None) -> tuple[tuple[str, Config], ...]:
        """(name, :meth:`for_service` view) of every (or each named) service, in order."""
        return tuple((name, self.for_service(name))
                     for name in (self.service_names if names is None else names))

    def check(self) -> None:
        """The whole file's cross-references (every problem at once, each at its key)."""
        problems: list[tuple[tuple[int | str, ...], str]] = []
        if self.single_service is None and self.services is None:
            problems.append((("service",), "required key is missing (or give services: "
                                           "several applications, by name)"))
        elif self.single_service is not None and self.services is not None:
            problems.append((("services",), "give service (one application) or services "
                                            "(several, by name), not both"))
        for name, entry in (self.services or {}).items():
            if name == DEFAULT_SERVICE:
                problems.append((("services", name), f"{DEFAULT_SERVICE!r} names the singular "
                                 "service: form's one service (metrics, alarms and pages leave "
                                 "it out); give this service another name"))
            for region in entry.regions or {}:
                if region not in self.regions:
                    problems.append((("services", name, "regions", region),
                                     f"{region!r} is not a configured region (the top-level "
                                     f"regions list every region a service may run in)"))
        for name, vantage in self.vantage_points.items():
            if vantage.region is not None and vantage.region not in self.regions:
                problems.append((("vantage_points", name, "region"),
                                 f"{vantage.region!r} is not a configured region"))
        for pop, region in self.cdn.pop_regions.items():
            if region not in self.regions:
                problems.append((("cdn", "pop_regions", pop),
                                 f"{region!r} is not a configured region"))
            if not re.fullmatch(r"[A-Z]{3}", pop) and not _POP_CODE.match(pop):
                problems.append((("cdn", "pop_regions", pop),
                                 f"{pop!r} is not a POP code such as FRA56-P1"))
        if problems:
            raise reference_error(*problems)


def _merged(shared: Region, own: ServiceRegion) -> Region:
    """A top-level region with what one service sets for it instead (its ALB, its port)."""
    region = shared
    if own.alb_name is not None or own.addresses:
        region = replace(region, alb_name=own.alb_name, addresses=own.addresses)
    if own.port is not None:
        region = replace(region, port=own.port)
    return region
