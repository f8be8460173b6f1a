"""What a probe round produces: frozen results that every mode (check, serve, Lambda) shares.

Immutable all the way down: sequences are tuples, mappings are read-only proxies of a private
copy, and each path's own evidence is a frozen details type (:data:`PathDetails`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, TypeAlias

from monitor.config import DEFAULT_SERVICE, Estimator
from monitor.domain.reasons import Reason, reason_of
from probes.addresses import IpFamily
from probes.cdn import CacheResult
from probes.dns import Via
from probes.errors import ProbeError
from probes.http import TlsSession
from probes.records import record

__all__ = [
    "PROBLEM_STATES",
    "Attribution",
    "AttributionSource",
    "CdnDetails",
    "DataPath",
    "DnsDetails",
    "DnsFailureDetails",
    "DnsLookup",
    "DnsLookups",
    "ErrorRecord",
    "EstimatorReason",
    "IpFamily",
    "OriginDetails",
    "Path",
    "PathDetails",
    "PathResult",
    "RegionLatency",
    "ResolverRole",
    "RoundPlan",
    "RoundResult",
    "RoutingState",
    "RoutingVerdict",
    "TlsInfo",
    "VantageRound",
    "frozen_mapping",
    "latency_of",
    "worst_state",
]


def frozen_mapping(mapping: Mapping[str, float]) -> Mapping[str, float]:
    """A read-only copy: nothing reachable from a result can be changed after it is built."""
    return MappingProxyType(dict(mapping))


class RoutingState(StrEnum):
    OK = "ok"
    FAILOVER = "failover"
    MISROUTED = "misrouted"
    UNKNOWN = "unknown"


PROBLEM_STATES = frozenset({RoutingState.MISROUTED, RoutingState.UNKNOWN})
"""The states that need a person: a routing problem (exit 1, a WARNING log line); failover
joins them only with ``--strict``."""

_SEVERITY = {RoutingState.OK: 0, RoutingState.FAILOVER: 1, RoutingState.UNKNOWN: 2,
             RoutingState.MISROUTED: 3}


def worst_state(states: Iterable[RoutingState]) -> RoutingState:
    """The worst of several states (a confirmed misroute over a doubt over a failover over ok);
    ok when there are none."""
    return max(states, key=_SEVERITY.__getitem__, default=RoutingState.OK)


class Path(StrEnum):
    """The ways a client can reach the app; each gets its own verdict (and its own entry in
    :data:`monitor.core.paths.PATHS`)."""

    DNS = "dns"
    ORIGIN = "origin"
    CDN = "cdn"


@record
class TlsInfo:
    """The TLS a region or path negotiated: its version, the round trips its handshake costs
    (TLS 1.3: 1; TLS 1.2: 2, resumed 1) and the earliest expiry (Unix seconds) of the
    certificates the server presented."""

    version: str | None
    handshake_round_trips: int | None = None
    cert_not_after: float | None = None

    @classmethod
    def of(cls, session: TlsSession | None) -> TlsInfo | None:
        """One request's TLS session."""
        if session is None:
            return None
        return cls(session.version, session.handshake_round_trips, session.cert_not_after)

    @classmethod
    def summary(cls, sessions: Iterable[TlsSession | None]) -> TlsInfo | None:
        """Several requests to one region: the version most of them negotiated (with its round
        trips) and the earliest certificate expiry any of them was presented."""
        found = [s for s in sessions if s is not None]
        if not found:
            return None
        (version, round_trips), _ = Counter(
            (s.version, s.handshake_round_trips) for s in found).most_common(1)[0]
        return cls(version, round_trips, min((s.cert_not_after for s in found
                                              if s.cert_not_after is not None), default=None))


EstimatorReason: TypeAlias = Literal["configured", "connect_at_server", "connect_local",
                                     "row_connect_local", "connects_flat", "connect_unverified"]
"""Why a region row uses its estimator: the config names it; or (``auto``) its connect matched
the handshake's round trip (``connect_at_server``), was answered far below it by something near
(``connect_local``: first byte instead), another region of the row's was
(``row_connect_local``: the row compares alike), every region of the row answered its connect
within a few ms, as no set of distinct regions can (``connects_flat``: a proxy near by, TLS
too; first byte), or no sample could tell (``connect_unverified``: first byte)."""


@record
class RegionLatency:
    """One row of the latency matrix: this vantage point to one region, measured directly.

    ``latency_seconds`` is the ``estimator``'s estimate (the minimum of ``samples_seconds``);
    beside it every sample measures network distance (``handshake_seconds``: the TLS handshake
    divided by its round trips) and ``first_byte_seconds``; ``app_seconds`` is what the app adds
    (first byte minus the handshake's round trip); ``connect_seconds`` is the TCP connect
    (minimum), and ``estimator_reason`` says why the row uses its estimator.
    """

    region: str
    latency_seconds: float | None
    healthy: bool
    samples_seconds: tuple[float, ...] = ()
    reason: Reason | None = None
    message: str | None = None
    estimator: Estimator | None = None
    handshake_seconds: float | None = None
    first_byte_seconds: float | None = None
    app_seconds: float | None = None
    tls: TlsInfo | None = None
    disturbed_samples: int = 0  # samples left out: taken while the loop or the lab stalled
    family: IpFamily = IpFamily.IPV4  # which of the region's addresses were measured
    connect_seconds: float | None = None
    estimator_reason: EstimatorReason | None = None


def latency_of(regions: tuple[RegionLatency, ...], region: str | None,
               estimator: Estimator | None = None) -> float | None:
    """A region's measured round trip in one latency-matrix row (None: unmeasured, unknown); by
    the handshake when a verdict resting on it asks (``estimator``), else the row's estimate."""
    row = next((r for r in regions if r.region == region), None)
    if row is None:
        return None
    if estimator is Estimator.HANDSHAKE and row.estimator is not Estimator.HANDSHAKE:
        return row.handshake_seconds
    return row.latency_seconds


AttributionSource: TypeAlias = Literal["header", "health_json", "alb_address", "ip_ranges", "none"]
"""Which evidence named the serving region, strongest first (``none``: nothing did)."""


@record
class Attribution:
    """Which region answered, from which evidence; disagreeing evidence is kept in ``conflicts``."""

    region: str | None
    source: AttributionSource
    conflicts: tuple[str, ...] = ()
    disputed: bool = False  # two sources name different regions: which one answered is unclear


@record
class RoutingVerdict:
    state: RoutingState
    served_region: str | None
    expected_region: str | None
    penalty_seconds: float | None = None
    reason: Reason | None = None  # None when plainly ok (ok with a finding: slow_app)
    detail: str = ""
    estimator: Estimator | None = None  # which latency estimate the comparison rests on


# --- each path's own evidence --------------------------------------------------------------------


@record
class DnsDetails:
    """The ``dns`` path: what the vantage point's resolver answered, and what the authoritative
    servers answer for its client subnet (``ecs_answered`` false when they were not asked or
    failed). An answer whose ECS scope is /0 or missing is not specific to the subnet (RFC 7871):
    then ``ecs_region`` is None and ``ecs_reason`` says why."""

    addresses: tuple[str, ...]
    ttl: int | None
    cname_chain: tuple[str, ...] = ()
    ecs_answered: bool = False
    ecs_region: str | None = None
    ecs_scope: int | None = None
    ecs_reason: Reason | None = None


@record
class DnsFailureDetails:
    """The ``dns`` path when the resolver's answer was an error: its rcode, if any came."""

    rcode: str | None


@record
class DataPath:
    """Where the serving region read its data (the health JSON's DynamoDB fields); ``local`` is
    None when which region served is disputed (then nobody can say whether the data stayed)."""

    dynamodb_region: str
    local: bool | None
    read_seconds: float | None = None

    @property
    def state(self) -> Literal["local", "remote", "disputed"]:
        return "disputed" if self.local is None else "local" if self.local else "remote"

    @classmethod
    def observed(cls, dynamodb_region: str, serving_region: str | None,
                 read_seconds: float | None = None, *, disputed: bool = False) -> DataPath:
        """The data-path rule, in one place: local when the table is in the serving region
        (both parsed region names), unknown while the serving region is disputed."""
        return cls(dynamodb_region, None if disputed else dynamodb_region == serving_region,
                   read_seconds)


@record
class OriginDetails:
    """The ``origin`` path's response beyond the verdict; ``data_path`` when the app reports it."""

    data_path: DataPath | None = None


@record
class CdnDetails:
    """The ``cdn`` path: what the edge reported (POP, cache results, Server-Timing seconds)."""

    pop: str | None
    cache: CacheResult | None
    cache_repeat: CacheResult | None
    server_timing: Mapping[str, float]
    edge_address: str | None
    request_id: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "server_timing", frozen_mapping(self.server_timing))


PathDetails: TypeAlias = DnsDetails | DnsFailureDetails | OriginDetails | CdnDetails
"""A path's own evidence, one frozen type per path."""


@record
class PathResult:
    """The verdict for one path plus the evidence it rests on."""

    path: Path
    verdict: RoutingVerdict
    attribution: Attribution | None = None
    latency_seconds: float | None = None
    phases: Mapping[str, float] = field(default_factory=dict)
    address: str | None = None
    status: int | None = None
    notes: tuple[str, ...] = ()
    details: PathDetails | None = None
    tls: TlsInfo | None = None  # an HTTP path's TLS session
    family: IpFamily = IpFamily.IPV4  # the address family resolved and requested

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", frozen_mapping(self.phases))


@record
class ErrorRecord:
    """A probe error of the round: where it happened (a path, ``baseline`` or ``round``), why."""

    path: str
    reason: Reason
    message: str

    @classmethod
    def of(cls, path: str, error: ProbeError) -> ErrorRecord:
        """The record of a probe's typed error."""
        return cls(path, reason_of(error.reason), str(error))


ResolverRole: TypeAlias = Via
"""Who a DNS query went to: the vantage point's resolver, or the zone's servers with ECS."""


@record
class DnsLookup:
    """One DNS query of the round as it went (the JSON document's ``dns`` entries)."""

    server: str
    client_subnet: str | None
    rcode: str | None
    addresses: tuple[str, ...]
    cname_chain: tuple[str, ...]
    ttl: int | None
    ecs_scope: int | None
    transport: str
    duration_seconds: float
    error: str | None = None  # the error's reason


@record
class DnsLookups:
    """The round's lookups of the origin name, by resolver role (None: not made)."""

    recursive: DnsLookup | None = None
    authoritative: DnsLookup | None = None

    def by_role(self) -> tuple[tuple[ResolverRole, DnsLookup], ...]:
        found: tuple[tuple[ResolverRole, DnsLookup | None], ...] = (
            ("recursive", self.recursive), ("authoritative", self.authoritative))
        return tuple((role, lookup) for role, lookup in found if lookup is not None)


@record
class VantageRound:
    """One vantage point's round."""

    vantage: str
    started_at: float
    duration_seconds: float
    regions: tuple[RegionLatency, ...]
    paths: tuple[PathResult, ...]
    errors: tuple[ErrorRecord, ...] = ()
    dns: DnsLookups = DnsLookups()
    success: bool = True
    loop_lag_seconds: float | None = None  # the longest event-loop stall during the round
    service: str = DEFAULT_SERVICE  # which of the configuration's services this round judged

    def path(self, path: Path) -> PathResult | None:
        """The path's result; with several address families, the worst family's (the first
        family's when they are equally bad), so one misrouted family is never hidden."""
        found = [p for p in self.paths if p.path == path]
        if not found:
            return None
        worst = worst_state(p.verdict.state for p in found)
        return next(p for p in found if p.verdict.state is worst)

    @property
    def families(self) -> tuple[IpFamily, ...]:
        """The address families this round has results for, in order."""
        return tuple(dict.fromkeys([*(p.family for p in self.paths),
                                    *(r.family for r in self.regions)]))

    @property
    def dual_stack(self) -> bool:
        """Whether any result is not IPv4 (then documents name each result's family)."""
        return any(family is not IpFamily.IPV4 for family in self.families)

    def family_regions(self, family: IpFamily) -> tuple[RegionLatency, ...]:
        """The latency-matrix row measured over ``family``."""
        return tuple(r for r in self.regions if r.family is family)

    @property
    def primary_regions(self) -> tuple[RegionLatency, ...]:
        """The first family's latency-matrix row: the one the family-less series, metrics and
        logs report (none when the round has no results)."""
        families = self.families
        return self.family_regions(families[0]) if families else ()


@record
class RoundPlan:
    """How a round's check starts were spread: ``checks`` starts ``gap_seconds`` apart, planned
    to take ``planned_seconds`` of a ``deadline_seconds`` deadline; ``fits`` false when even the
    narrowest gap could not fit them (the round said so up front)."""

    checks: int
    gap_seconds: float
    planned_seconds: float
    deadline_seconds: float
    fits: bool


@record
class RoundResult:
    vantage_points: tuple[VantageRound, ...]
    started_at: float
    duration_seconds: float
    plan: RoundPlan | None = None
