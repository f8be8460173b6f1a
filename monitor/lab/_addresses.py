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
=====================  ==================  ==========================================

All public HTTPS listeners (regions, edges) share one port P, the config's ``service.port``.
"""

from __future__ import annotations

__all__ = [
    "CONTROL_ADDRESS",
    "DEFAULT_CONTROL_PORT",
    "DNS_ADDRESS",
    "edge_address",
    "edge_origin_address",
    "origin_address",
    "region_address",
    "vantage_address",
]

DNS_ADDRESS = "127.10.0.1"
CONTROL_ADDRESS = "127.10.0.254"
DEFAULT_CONTROL_PORT = 9353


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
