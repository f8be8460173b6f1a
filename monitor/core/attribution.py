"""Which region answered: strongest evidence first, disagreements reported.

1. the origin's region header / health JSON; 2. the answered address is one of a region's ALB
addresses; 3. the address is in an AWS ``ip-ranges.json`` prefix of that region (longest prefix
wins); 4. otherwise unknown.

Region names an app states (header elements, JSON fields) are parsed once, by
:func:`region_names`, and compared only as parsed names.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import IpRangesSettings
from monitor.core.model import Attribution, AttributionSource
from monitor.domain.patterns import REGION_NAME
from probes.errors import RoutewatchError
from probes.records import record

if TYPE_CHECKING:
    import httpx

__all__ = [
    "IpRanges",
    "IpRangesError",
    "RegionDirectory",
    "attribute",
    "fetch_ip_ranges",
    "header_senders",
    "load_ip_ranges",
    "region_name",
    "region_names",
]

log = logging.getLogger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class IpRangesError(RoutewatchError):
    """ip-ranges.json could not be read or parsed; names the source."""


MAX_IP_RANGES_BYTES = 64 * 1024 * 1024  # AWS's file is ~2 MB; a bounded read all the same
MAX_ATTRIBUTED_ADDRESSES = 16  # an answer with 4,000 addresses is attributed by its first few


@record
class IpRanges:
    """AWS prefixes by region, indexed for longest-prefix match: one dictionary lookup per
    distinct prefix length (at most 33 for IPv4, 129 for IPv6), whatever the file's size."""

    prefixes: tuple[tuple[_Network, str], ...]
    _index: Mapping[tuple[int, int], Mapping[int, str]] = field(
        default_factory=dict, repr=False, compare=False)
    _lengths: Mapping[int, tuple[int, ...]] = field(
        default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[int, int], dict[int, str]] = {}
        for network, region in self.prefixes:
            if region == "GLOBAL":  # not a region: never an answer
                continue
            key = (network.version, network.prefixlen)
            index.setdefault(key, {}).setdefault(int(network.network_address), region)
        lengths = {version: tuple(sorted((n for v, n in index if v == version), reverse=True))
                   for version in (4, 6)}
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_lengths", lengths)

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
        """The region of the longest prefix holding ``address`` (None: no AWS prefix does)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        bits = 32 if ip.version == 4 else 128
        value = int(ip)
        for length in self._lengths.get(ip.version, ()):
            mask = ((1 << length) - 1) << (bits - length) if length else 0
            region = self._index[(ip.version, length)].get(value & mask)
            if region is not None:
                return region
        return None


def load_ip_ranges(settings: IpRangesSettings) -> IpRanges | None:
    """Read ip-ranges.json from the configured file, or the URL through a local cache. The URL
    is https (the config insists), followed to no other host, and read within a size bound."""
    if settings.file is not None:
        return _parse_text(_read_bounded(settings.file), str(settings.file))
    if settings.url is None:
        return None
    cache_dir = settings.cache_dir or Path.home() / ".cache" / "routewatch"
    cached = cache_dir / "ip-ranges.json"
    if cached.exists() and time.time() - cached.stat().st_mtime < settings.max_age_hours * 3600:
        return _parse_text(_read_bounded(cached), str(cached))
    try:
        text = fetch_ip_ranges(settings.url)
    except IpRangesError as exc:
        if cached.exists():
            log.warning("ip-ranges: %s (using stale cache %s)", exc, cached)
            return _parse_text(_read_bounded(cached), str(cached))
        raise
    ranges = _parse_text(text, settings.url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached.write_text(text, encoding="utf-8")
    return ranges


def _read_bounded(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_IP_RANGES_BYTES + 1)
    except OSError as exc:
        raise IpRangesError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_IP_RANGES_BYTES:
        raise IpRangesError(f"{path}: larger than {MAX_IP_RANGES_BYTES >> 20} MiB")
    return data.decode("utf-8", errors="replace")


def fetch_ip_ranges(url: str, *, transport: httpx.BaseTransport | None = None) -> str:
    """GET ``url``; a redirect is followed only within the same scheme and host."""
    import httpx

    origin = httpx.URL(url)
    try:
        with httpx.Client(timeout=10.0, follow_redirects=False, transport=transport) as client:
            for _ in range(5):
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        target = response.url.join(response.headers.get("location", ""))
                        if (target.scheme, target.host) != (origin.scheme, origin.host):
                            raise IpRangesError(f"{url}: redirected to another host "
                                                f"({target.host}); not followed")
                        url = str(target)
                        continue
                    response.raise_for_status()
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_IP_RANGES_BYTES:
                            raise IpRangesError(
                                f"{url}: larger than {MAX_IP_RANGES_BYTES >> 20} MiB")
                    return body.decode("utf-8", errors="replace")
    except httpx.HTTPError as exc:
        raise IpRangesError(f"{url}: {exc}") from None
    raise IpRangesError(f"{url}: more than 5 redirects")


def _parse_text(text: str, source: str) -> IpRanges:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IpRangesError(f"{source}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return IpRanges.parse(document, source)


MAX_CLAIMED_REGIONS = 8  # a header listing more regions than that is not naming one


def region_names(values: Iterable[str]) -> tuple[str, ...]:
    """Region names as an app states them (the elements of a list-valued header, a JSON field),
    parsed once: stripped, a region name in lower case, duplicates folded, in order
    (``US-East-1, us-east-1`` is one region); what is no region name is kept as stated."""
    found: dict[str, None] = {}
    for value in itertools.islice(values, 64):
        name = value.strip()[:64]
        if REGION_NAME.match(name.lower()):
            name = name.lower()
        if name:
            found.setdefault(name)
    return tuple(itertools.islice(found, MAX_CLAIMED_REGIONS))


def region_name(value: str | None) -> str | None:
    """One stated region name, parsed as :func:`region_names` does (None: none stated)."""
    names = region_names(() if value is None else (value,))
    return names[0] if names else None


def header_senders(claims: Mapping[str, Sequence[str]]) -> Mapping[str, frozenset[str]]:
    """Region named by a header → the regions whose own address sent that header (from each
    region's parsed header values, measured directly). A header that some other region's app
    also sends cannot tell which region answered."""
    senders: dict[str, set[str]] = {}
    for region, named in claims.items():
        for claimed in named:
            senders.setdefault(claimed, set()).add(region)
    return {claimed: frozenset(regions) for claimed, regions in senders.items()}


@record
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
    header_regions: Sequence[str] = (),
    body_region: str | None = None,
) -> Attribution:
    """Combine the evidence for one answer into the region that served it. ``header_regions``
    are the region header's parsed names (:func:`region_names`): more than one is a conflict."""
    conflicts: list[str] = []
    # (region, source, as shown in a conflict), strongest evidence first
    claimed: list[tuple[str, AttributionSource, str]] = []
    named: list[tuple[str | None, AttributionSource]] = [
        (region, "header") for region in region_names(header_regions)]
    named.append((region_name(body_region), "health_json"))
    for region, source in named:
        if region:
            claimed.append((region, source, source))
    for address in itertools.islice(addresses, MAX_ATTRIBUTED_ADDRESSES):
        owner, by_address = directory.region_of_address(address)
        if owner is not None:
            claimed.append((owner, by_address, f"{by_address} {address}"))
    if not claimed:
        return Attribution(None, "none")
    region, source, shown = claimed[0]
    for other, _, other_shown in claimed[1:]:
        if other != region:
            conflicts.append(f"{shown} says {region}, {other_shown} says {other}")
    disputed = bool(conflicts)
    if region not in directory.regions:
        conflicts.append(f"{source} names {region!r}, which is not a configured region")
    return Attribution(region, source, tuple(dict.fromkeys(conflicts)), disputed)
