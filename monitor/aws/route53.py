"""What Route 53 says: its own answer for a client subnet, and a routing map over many subnets.

* :func:`explain` asks Route 53's ``TestDNSAnswer`` which answer it gives each vantage point's
  client subnet and compares it with what the probe resolved (at the authoritative servers with
  ECS, and through the vantage point's resolver), each attributed to a region.
* :func:`sweep` queries the zone's authoritative servers with ECS for a list of client subnets
  with locations and, for each, sets the region that answered against the configured region
  nearest the location by great-circle distance; a difference is a mismatch.

Distance is only a proxy for latency (Route 53 uses its latency measurements, not geography), so
a sweep mismatch is a lead to check with a probe from there, not a verdict. An answer whose ECS
scope is /0 or missing is not specific to the subnet asked about (RFC 7871): both commands then
claim nothing about that subnet (``ecs_scope_zero``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from monitor.config import Config, split_endpoint
from monitor.core.attribution import IpRanges, RegionDirectory
from monitor.core.paths.dns import subnet_specific
from monitor.domain.geo import REGION_LOCATIONS, airport_location, great_circle_km, nearest_region
from monitor.domain.reasons import Reason
from probes.dns import DnsEvidence, DnsQuery, probe_dns
from probes.errors import RoutewatchError
from probes.records import record

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client

__all__ = [
    "DnsExplanation",
    "Route53Answer",
    "SubnetLocation",
    "SubnetsFileError",
    "SweepRow",
    "ask_route53",
    "explain",
    "parse_subnets",
    "region_directory",
    "sweep",
    "vantage_subnets",
]

Resolve = Callable[[DnsQuery], Awaitable[DnsEvidence]]


@record
class Route53Answer:
    """Route 53's ``TestDNSAnswer`` response."""

    nameserver: str
    record_name: str
    record_type: str
    record_data: tuple[str, ...]
    response_code: str
    protocol: str


def _subnet_parts(subnet: str) -> tuple[str, str]:
    network = ipaddress.ip_network(subnet, strict=False)
    return str(network.network_address), str(network.prefixlen)


def ask_route53(client: Route53Client, *, hosted_zone_id: str, record_name: str,
                    record_type: str = "A", client_subnet: str | None = None,
                    resolver_ip: str | None = None) -> Route53Answer:
    """Ask Route 53 what it answers a resolver (optionally sending ECS for ``client_subnet``)."""
    from monitor.aws.clients import aws_errors

    request: dict[str, Any] = {"HostedZoneId": hosted_zone_id, "RecordName": record_name,
                               "RecordType": record_type}
    if resolver_ip is not None:
        request["ResolverIP"] = resolver_ip
    if client_subnet is not None:
        request["EDNS0ClientSubnetIP"], request["EDNS0ClientSubnetMask"] = \
            _subnet_parts(client_subnet)
    with aws_errors("route53", "TestDNSAnswer", "global"):
        response = client.test_dns_answer(**request)
    return Route53Answer(
        nameserver=response["Nameserver"],
        record_name=response["RecordName"],
        record_type=response["RecordType"],
        record_data=tuple(response["RecordData"]),
        response_code=response["ResponseCode"],
        protocol=response["Protocol"],
    )


def region_directory(config: Config, resolved_albs: Mapping[str, Sequence[str]] | None = None,
                     ip_ranges: IpRanges | None = None) -> RegionDirectory:
    """Addresses of each region's ALB: configured, plus what its ALB name resolved to."""
    albs = {region: frozenset(settings.addresses) | frozenset((resolved_albs or {}).get(region, ()))
            for region, settings in config.regions.items()}
    return RegionDirectory(frozenset(config.regions), albs, ip_ranges)


def _region_of(values: Sequence[str], directory: RegionDirectory,
               alb_names: Mapping[str, str]) -> str | None:
    """The region owning the answer: an address of its ALB, or its ALB's name (alias answers)."""
    for value in values:
        name = value.rstrip(".").lower()
        if name in alb_names:
            return alb_names[name]
        try:
            ipaddress.ip_address(value)
        except ValueError:
            continue
        owner, _ = directory.region_of_address(value)
        if owner is not None:
            return owner
    return None


async def resolve_albs(config: Config, resolver: str, *, resolve: Resolve = probe_dns,
                       timeout_s: float = 2.0) -> dict[str, tuple[str, ...]]:
    """Resolve every region's ALB name (concurrently) so answers can be attributed to regions."""
    host, port = split_endpoint(resolver, 53)
    named = {r: s.alb_name for r, s in config.regions.items() if s.alb_name}
    answers = await asyncio.gather(*(
        resolve(DnsQuery(name, host, port, timeout_s=timeout_s)) for name in named.values()))
    return {region: answer.addresses for region, answer in zip(named, answers, strict=True)}


# --- explain -------------------------------------------------------------------------------------


@record
class DnsExplanation:
    """For one vantage point: Route 53's answer for its subnet next to what the probe resolved."""

    vantage: str
    client_subnet: str | None
    route53: Route53Answer | None
    route53_region: str | None
    authoritative: tuple[str, ...] | None
    authoritative_region: str | None
    recursive: tuple[str, ...] | None
    recursive_region: str | None
    error: str | None = None
    authoritative_scope: int | None = None
    authoritative_reason: Reason | None = None  # ecs_scope_zero: not specific to the subnet

    @property
    def agrees(self) -> bool | None:
        """True when the probe's answer (authoritative if asked, else recursive) is in the region
        Route 53 says; None when either side is missing or the authoritative answer is not
        specific to the subnet."""
        if self.authoritative_reason is not None:
            return None
        probe_region = (self.authoritative_region if self.authoritative is not None
                        else self.recursive_region)
        if self.route53_region is None or probe_region is None:
            return None
        return probe_region == self.route53_region


def _public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


async def explain(config: Config, client: Route53Client, *,
                  vantage_points: Sequence[str] | None = None, resolve: Resolve = probe_dns,
                  ip_ranges: IpRanges | None = None) -> list[DnsExplanation]:
    """Compare Route 53's own answer with the probe's, per vantage point with a client subnet."""
    zone = config.alarms.hosted_zone_id
    if not zone:
        raise ValueError("alarms.hosted_zone_id is not set: name the hosted zone to explain")
    qname = config.service.origin_name
    alb_names = {s.alb_name: r for r, s in config.regions.items() if s.alb_name}
    names = list(vantage_points) if vantage_points is not None else list(config.vantage_points)
    out: list[DnsExplanation] = []
    for name in names:
        vantage = config.vantage_points[name]
        resolver_host, resolver_port = split_endpoint(vantage.resolver, 53)
        directory = region_directory(
            config, await resolve_albs(config, vantage.resolver, resolve=resolve,
                                       timeout_s=config.probe.dns_timeout_s), ip_ranges)
        route53: Route53Answer | None = None
        error: str | None = None
        try:
            route53 = await asyncio.to_thread(
                ask_route53, client, hosted_zone_id=zone, record_name=qname,
                client_subnet=vantage.client_subnet,
                resolver_ip=resolver_host if _public(resolver_host) else None)
        except Exception as exc:  # an AwsError names the call; keep going for the others
            error = str(exc)
        authoritative: tuple[str, ...] | None = None
        scope: int | None = None
        reason: Reason | None = None
        for server in config.authoritative:
            host, port = split_endpoint(server, 53)
            answer = await resolve(DnsQuery(qname, host, port, via="authoritative",
                                            client_subnet=vantage.client_subnet,
                                            source_address=vantage.source_address,
                                            timeout_s=config.probe.dns_timeout_s))
            if answer.error is None:
                authoritative, scope = answer.addresses, answer.ecs_scope
                reason = None if subnet_specific(answer) else Reason.ECS_SCOPE_ZERO
                break
        recursive_answer = await resolve(DnsQuery(qname, resolver_host, resolver_port,
                                                  source_address=vantage.source_address,
                                                  timeout_s=config.probe.dns_timeout_s))
        recursive = recursive_answer.addresses if recursive_answer.error is None else None
        out.append(DnsExplanation(
            vantage=name,
            client_subnet=vantage.client_subnet,
            route53=route53,
            route53_region=(_region_of(route53.record_data, directory, alb_names)
                            if route53 else None),
            authoritative=authoritative,
            authoritative_region=(_region_of(authoritative, directory, alb_names)
                                  if authoritative else None),
            recursive=recursive,
            recursive_region=_region_of(recursive, directory, alb_names) if recursive else None,
            error=error,
            authoritative_scope=scope,
            authoritative_reason=reason,
        ))
    return out


# --- sweep ---------------------------------------------------------------------------------------


class SubnetsFileError(RoutewatchError, ValueError):
    """A subnets file line that cannot be read; the message names the line."""


@record
class SubnetLocation:
    """A client subnet and where its clients are."""

    subnet: str
    place: str  # the IATA code or "lat,lon" as written
    location: tuple[float, float]


_LAT_LON = re.compile(r"^(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)$")


def parse_subnets(text: str, source: str = "subnets") -> list[SubnetLocation]:
    """One subnet per line: ``SUBNET LOCATION``, where LOCATION is an IATA airport code
    (``FRA``) or ``lat,lon``; ``#`` starts a comment; anything after LOCATION is ignored."""
    rows: list[SubnetLocation] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{source}:{number}"
        if len(words) < 2:
            raise SubnetsFileError(f"{where}: expected 'SUBNET LOCATION', got {line.strip()!r}")
        try:
            subnet = str(ipaddress.ip_network(words[0], strict=False))
        except ValueError:
            raise SubnetsFileError(f"{where}: {words[0]!r} is not a subnet") from None
        place = words[1]
        match = _LAT_LON.match(place)
        if match:
            lat, lon = float(match.group(1)), float(match.group(2))
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise SubnetsFileError(f"{where}: {place!r} is not a latitude,longitude")
            location: tuple[float, float] = (lat, lon)
        elif re.fullmatch(r"[A-Za-z]{3}", place):
            place = place.upper()
            airport = airport_location(place)
            if airport is None:
                raise SubnetsFileError(f"{where}: {place!r} is not a known IATA airport code")
            location = airport
        else:
            raise SubnetsFileError(f"{where}: {place!r} is neither an IATA code nor lat,lon")
        rows.append(SubnetLocation(subnet, place, location))
    if not rows:
        raise SubnetsFileError(f"{source}: no subnets")
    return rows


def vantage_subnets(config: Config) -> list[SubnetLocation]:
    """The configured vantage points that have both a client subnet and a location."""
    rows = []
    for vantage in config.vantage_points.values():
        place = vantage.location
        location = airport_location(place) if place else None
        if vantage.client_subnet and place and location:
            rows.append(SubnetLocation(vantage.client_subnet, place, location))
    return rows


@record
class SweepRow:
    """One subnet of the routing map."""

    subnet: str
    place: str
    answered_region: str | None
    nearest_region: str | None
    addresses: tuple[str, ...]
    server: str | None
    distance_km: dict[str, float]
    error: str | None = None
    ecs_scope: int | None = None
    reason: Reason | None = None  # ecs_scope_zero: the answer is not specific to the subnet

    @property
    def mismatch(self) -> bool:
        return (self.reason is None and self.answered_region is not None
                and self.nearest_region is not None
                and self.answered_region != self.nearest_region)

    @property
    def extra_km(self) -> float | None:
        """How much farther the answered region is than the nearest one."""
        if (not self.mismatch or self.answered_region not in self.distance_km
                or self.nearest_region is None):
            return None
        return self.distance_km[self.answered_region] - self.distance_km[self.nearest_region]


async def sweep(config: Config, subnets: Sequence[SubnetLocation], *,
                resolve: Resolve = probe_dns, directory: RegionDirectory | None = None,
                concurrency: int = 8, pace_s: float = 0.005,
                source_address: str | None = None) -> list[SweepRow]:
    """Query the authoritative servers with ECS for every subnet; rows in input order."""
    if not config.authoritative:
        raise ValueError("no authoritative servers configured: add 'authoritative' to the config")
    if directory is None:
        first_resolver = next(iter(config.vantage_points.values())).resolver
        directory = region_directory(
            config, await resolve_albs(config, first_resolver, resolve=resolve,
                                       timeout_s=config.probe.dns_timeout_s))
    alb_names = {s.alb_name: r for r, s in config.regions.items() if s.alb_name}
    servers = [split_endpoint(s, 53) for s in config.authoritative]
    regions = list(config.regions)
    limit = asyncio.Semaphore(max(1, concurrency))
    qname = config.service.origin_name

    async def one(index: int, item: SubnetLocation) -> SweepRow:
        await asyncio.sleep(index * pace_s)  # a burst of queries reads as a flood to a server
        distances = {r: round(great_circle_km(item.location, REGION_LOCATIONS[r]), 1)
                     for r in regions if r in REGION_LOCATIONS}
        nearest = nearest_region(item.location, regions)
        error: str | None = None
        async with limit:
            for host, port in servers:  # the first server that answers wins
                answer = await resolve(DnsQuery(qname, host, port, via="authoritative",
                                                client_subnet=item.subnet,
                                                source_address=source_address,
                                                timeout_s=config.probe.dns_timeout_s))
                if answer.error is None:
                    region = _region_of(answer.addresses, directory, alb_names)
                    return SweepRow(item.subnet, item.place, region, nearest, answer.addresses,
                                    answer.server, distances,
                                    None if region else "answer not attributable to a region",
                                    answer.ecs_scope,
                                    None if subnet_specific(answer) else Reason.ECS_SCOPE_ZERO)
                error = f"{answer.error.reason}: {answer.error}"
        return SweepRow(item.subnet, item.place, None, nearest, (), None, distances, error)

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(subnets))))
