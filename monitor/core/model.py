"""What a probe round produces: frozen results that every mode (check, serve, Lambda) shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Attribution",
    "ErrorRecord",
    "Path",
    "PathResult",
    "RegionLatency",
    "RoundResult",
    "RoutingState",
    "RoutingVerdict",
    "VantageRound",
    "latency_of",
]


class RoutingState(StrEnum):
    OK = "ok"
    FAILOVER = "failover"
    MISROUTED = "misrouted"
    UNKNOWN = "unknown"


class Path(StrEnum):
    """The ways a client can reach the app; each gets its own verdict."""

    DNS = "dns"
    ORIGIN = "origin"
    CDN = "cdn"


@dataclass(frozen=True)
class RegionLatency:
    """One row of the latency matrix: this vantage point to one region, measured directly."""

    region: str
    latency_seconds: float | None
    healthy: bool
    samples_seconds: tuple[float, ...] = ()
    reason: str | None = None
    message: str | None = None


def latency_of(regions: tuple[RegionLatency, ...], region: str | None) -> float | None:
    """A region's measured round trip in one latency-matrix row (None: unmeasured, unknown)."""
    return next((r.latency_seconds for r in regions if r.region == region), None)


@dataclass(frozen=True)
class Attribution:
    """Which region answered, from which evidence; disagreeing evidence is kept in ``conflicts``."""

    region: str | None
    source: str  # header | health_json | alb_address | ip_ranges | none
    conflicts: tuple[str, ...] = ()
    disputed: bool = False  # two sources name different regions: which one answered is unclear


@dataclass(frozen=True)
class RoutingVerdict:
    state: RoutingState
    served_region: str | None
    expected_region: str | None
    penalty_seconds: float | None = None
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class PathResult:
    """The verdict for one path plus the evidence it rests on."""

    path: Path
    verdict: RoutingVerdict
    attribution: Attribution | None = None
    latency_seconds: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    address: str | None = None
    status: int | None = None
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorRecord:
    path: str
    reason: str
    message: str


@dataclass(frozen=True)
class VantageRound:
    """One vantage point's round."""

    vantage: str
    started_at: float
    duration_seconds: float
    regions: tuple[RegionLatency, ...]
    paths: tuple[PathResult, ...]
    errors: tuple[ErrorRecord, ...] = ()
    dns: dict[str, Any] = field(default_factory=dict)
    success: bool = True

    def path(self, path: Path) -> PathResult | None:
        return next((p for p in self.paths if p.path == path), None)


@dataclass(frozen=True)
class RoundResult:
    vantage_points: tuple[VantageRound, ...]
    started_at: float
    duration_seconds: float
