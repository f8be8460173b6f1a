"""Which region answered: strongest evidence first, disagreements reported.

1. the origin's region header / health JSON; 2. the answered address is one of a region's ALB
addresses; 3. the address is in an AWS ``ip-ranges.json`` prefix of that region (longest prefix
wins); 4. otherwise unknown.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config import IpRangesSettings
from monitor.core.model import Attribution, AttributionSource

__all__ = ["IpRanges", "IpRangesError", "RegionDirectory", "attribute", "load_ip_ranges"]

log = logging.getLogger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class IpRangesError(Exception):
    """ip-ranges.json could not be read or parsed; names the source."""


@dataclass(frozen=True)
class IpRanges:
    """AWS prefixes by region, searched longest prefix first."""

    prefixes: tuple[tuple[_Network, str], ...]

    @classmethod
    def parse(cls, document: object, source: str) -> IpRanges:
        if not isinstance(document, dict):
            raise IpRangesError(f"{source}: not a JSON object")
        found: list[tuple[_Network, str]] = []
        for key, field_name in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
            entries = document.get(key, [])
            if not isinstance(entries, list):
                raise IpRangesError(f"{source}: {key} is not a list")
            for index, entry in enumerate(entries):
                try:
                    network = ipaddress.ip_network(entry[field_name])
                    region = str(entry["region"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise IpRangesError(f"{source}: {key}[{index}]: bad entry ({exc})") from None
                found.append((network, region))
        found.sort(key=lambda item: item[0].prefixlen, reverse=True)
        return cls(tuple(found))

    def region_of(self, address: str) -> str | None:
        ip = ipaddress.ip_address(address)
        for network, region in self.prefixes:
            if ip.version == network.version and ip in network and region != "GLOBAL":
                return region
        return None


def load_ip_ranges(settings: IpRangesSettings) -> IpRanges | None:
    """Read ip-ranges.json from the configured file, or the URL through a local cache."""
    if settings.file is not None:
        try:
            text = settings.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise IpRangesError(f"{settings.file}: cannot read: {exc.strerror}") from None
        return _parse_text(text, str(settings.file))
    if settings.url is None:
        return None
    cache_dir = settings.cache_dir or Path.home() / ".cache" / "routewatch"
    cached = cache_dir / "ip-ranges.json"
    if cached.exists() and time.time() - cached.stat().st_mtime < settings.max_age_hours * 3600:
        return _parse_text(cached.read_text(encoding="utf-8"), str(cached))
    import httpx

    try:
        response = httpx.get(settings.url, timeout=10.0, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        if cached.exists():
            log.warning("ip-ranges: %s failed (%s); using stale cache %s",
                        settings.url, exc, cached)
            return _parse_text(cached.read_text(encoding="utf-8"), str(cached))
        raise IpRangesError(f"{settings.url}: {exc}") from None
    ranges = _parse_text(response.text, settings.url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached.write_text(response.text, encoding="utf-8")
    return ranges


def _parse_text(text: str, source: str) -> IpRanges:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IpRangesError(f"{source}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return IpRanges.parse(document, source)


@dataclass(frozen=True)
class RegionDirectory:
    """Everything known about where regions live, built once per round."""

    regions: frozenset[str]
    alb_addresses: Mapping[str, frozenset[str]] = field(default_factory=dict)
    ip_ranges: IpRanges | None = None

    def region_of_address(self, address: str) -> tuple[str | None, AttributionSource]:
        for region, addresses in self.alb_addresses.items():
            if address in addresses:
                return region, "alb_address"
        if self.ip_ranges is not None:
            owner = self.ip_ranges.region_of(address)
            if owner is not None:
                return owner, "ip_ranges"
        return None, "none"


def attribute(
    directory: RegionDirectory,
    *,
    addresses: Iterable[str] = (),
    header_region: str | None = None,
    body_region: str | None = None,
) -> Attribution:
    """Combine the evidence for one answer into the region that served it."""
    conflicts: list[str] = []
    # (region, source, as shown in a conflict), strongest evidence first
    claimed: list[tuple[str, AttributionSource, str]] = []
    named: tuple[tuple[str | None, AttributionSource], ...] = (
        (header_region, "header"), (body_region, "health_json"))
    for region, source in named:
        if region:
            claimed.append((region, source, source))
    for address in addresses:
        owner, by_address = directory.region_of_address(address)
        if owner is not None:
            claimed.append((owner, by_address, f"{by_address} {address}"))
    if not claimed:
        return Attribution(None, "none")
    region, source, _ = claimed[0]
    for other, _, other_shown in claimed[1:]:
        if other != region:
            conflicts.append(f"{source} says {region}, {other_shown} says {other}")
    disputed = bool(conflicts)
    if region not in directory.regions:
        conflicts.append(f"{source} names {region!r}, which is not a configured region")
    return Attribution(region, source, tuple(dict.fromkeys(conflicts)), disputed)
