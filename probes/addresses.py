"""Addresses a probe must never connect to unless the configuration allows them.

A DNS answer decides where a probe connects, so a hostile or hijacked answer could make routewatch
open connections to the instance metadata service (169.254.169.254), to private networks or to
itself. :class:`AddressPolicy` refuses every address that is not globally routable unicast —
link-local, loopback, private (RFC 1918, fc00::/7), shared (CGNAT, 100.64/10), multicast,
unspecified, documentation, benchmarking and other special ranges — and IPv6 addresses that embed
such an IPv4 address (IPv4-mapped, 6to4, the NAT64 well-known prefix), unless an allowed network
holds it (the lab allows 127/8).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum

from probes.records import record

__all__ = ["AddressPolicy", "IpFamily", "special_range"]


class IpFamily(StrEnum):
    """An address family: each is resolved (A, AAAA), measured and judged on its own."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @property
    def rdtype(self) -> str:
        """The DNS record type holding this family's addresses."""
        return "A" if self is IpFamily.IPV4 else "AAAA"

    @classmethod
    def of(cls, address: str) -> IpFamily | None:
        """The family of an IP address (None: not an IP address)."""
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return None
        return cls.IPV4 if parsed.version == 4 else cls.IPV6

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _kind(address: _Address) -> str | None:
    """Why an address is special (None: globally routable unicast)."""
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "shared (CGNAT)"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "special-purpose"),
    )
    return next((name for found, name in checks if found), None)


def _embedded_v4(address: _Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def special_range(address: str) -> str | None:
    """What special range ``address`` is in ("link-local", "private", …); None when it is a
    globally routable unicast address. Not an IP address at all counts as special."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    inner = _embedded_v4(parsed)
    if inner is not None and (inner_kind := _kind(inner)) is not None:
        return f"{inner_kind} ({inner} inside)"
    return _kind(parsed)


@record
class AddressPolicy:
    """Which addresses a probe may connect to: globally routable unicast, plus ``allowed``."""

    allowed: tuple[_Network, ...] = ()

    @classmethod
    def allowing(cls, *networks: str) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def refusal(self, address: str) -> str | None:
        """Why connecting to ``address`` is refused (None: it is allowed)."""
        kind = special_range(address)
        if kind is None:
            return None
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return kind
        candidates = [parsed, *([inner] if (inner := _embedded_v4(parsed)) else [])]
        if any(c.version == n.version and c in n for c in candidates for n in self.allowed):
            return None
        return kind
