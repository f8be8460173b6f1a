"""The lab's address plan: every component has its own loopback address, so the source address
of a packet says who sent it (Linux routes all of 127.0.0.0/8 to the loopback interface).

=====================  ==================  ==========================================
component              address             port
=====================  ==================  ==========================================
authoritative DNS      127.10.0.1          free port D, UDP and TCP
control endpoint       127.10.0.254        free port (``lab up``: 9353 if free)
region i (1-based)     127.20.<i>.1        P, the delay proxy (the region's "ALB")
origin of region i     127.20.<i>.2        free port, HTTPS app server behind the proxy
vantage point j        127.30.<j>.1        source address of its probes
edge k                 127.40.<k>.1        P, delay proxy; source of its DNS queries and fetches
edge k's server        127.40.<k>.2        free port, the caching HTTPS reverse proxy
client subnet of j     198.18.<j>.0/24     only inside DNS packets (ECS), never routed
region i over IPv6     fd00:20:<i>::1      P, the region's IPv6 delay proxy (``ipv6``)
vantage point j, IPv6  fd00:30:<j>::1      source address of its IPv6 probes (``ipv6``)
edge k over IPv6       fd00:40:<k>::1      P, the edge's IPv6 delay proxy (``ipv6``)
=====================  ==================  ==========================================

The IPv6 addresses exist only in a dual-stack world (scenario ``ipv6: true``), which runs where
they are on ``lo``: a network namespace of its own (:func:`ipv6_addresses` lists what to add;
the host's ``lo`` has ``::1`` only, and nothing here ever adds an address outside a namespace).

All public HTTPS listeners (regions, edges) share one port P, the config's ``service.port``.
"""

from __future__ import annotations

__all__ = [
    "CONTROL_ADDRESS",
    "DEFAULT_CONTROL_PORT",
    "DNS_ADDRESS",
    "LAB_IPV6_NETWORK",
    "edge_address",
    "edge_address_v6",
    "edge_origin_address",
    "ipv6_addresses",
    "origin_address",
    "region_address",
    "region_address_v6",
    "vantage_address",
    "vantage_address_v6",
]

DNS_ADDRESS = "127.10.0.1"
CONTROL_ADDRESS = "127.10.0.254"
DEFAULT_CONTROL_PORT = 9353
LAB_IPV6_NETWORK = "fd00::/16"
"""Where a dual-stack world's IPv6 addresses are (unique local addresses, RFC 4193)."""


def region_address(index: int) -> str:
    """The public address (delay proxy) of the region at 1-based ``index``."""
    return f"127.20.{index}.1"


def origin_address(index: int) -> str:
    """The private address of the region's origin server, behind its delay proxy."""
    return f"127.20.{index}.2"


def vantage_address(index: int) -> str:
    return f"127.30.{index}.1"


def edge_address(index: int) -> str:
    return f"127.40.{index}.1"


def edge_origin_address(index: int) -> str:
    """The private address of the edge's caching server, behind its delay proxy."""
    return f"127.40.{index}.2"


def region_address_v6(index: int) -> str:
    """The IPv6 public address (delay proxy) of the region at 1-based ``index``."""
    return f"fd00:20:{index:x}::1"


def vantage_address_v6(index: int) -> str:
    return f"fd00:30:{index:x}::1"


def edge_address_v6(index: int) -> str:
    """The IPv6 public address (delay proxy) of the edge at 1-based ``index``."""
    return f"fd00:40:{index:x}::1"


def ipv6_addresses(regions: int, vantage_points: int, edges: int = 0) -> list[str]:
    """Every IPv6 address a dual-stack world with this many regions, vantage points and edges
    uses."""
    return ([region_address_v6(i) for i in range(1, regions + 1)]
            + [vantage_address_v6(j) for j in range(1, vantage_points + 1)]
            + [edge_address_v6(k) for k in range(1, edges + 1)])
