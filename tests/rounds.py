"""The one builder of hand-made rounds for tests (no probing): when the model changes, this
module changes, not every test that needs a round."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from monitor.core.model import (
    Attribution,
    CdnDetails,
    DnsLookup,
    DnsLookups,
    ErrorRecord,
    OriginDetails,
    Path,
    PathDetails,
    PathResult,
    RegionLatency,
    RoundResult,
    RoutingState,
    RoutingVerdict,
    VantageRound,
)
from monitor.metrics import HTTP_PHASES

__all__ = ["path_result", "round_of", "sample_round", "vantage_round", "verdict"]


def verdict(state: RoutingState = RoutingState.OK, served: str | None = "us-east-1",
            expected: str | None = "us-east-1", penalty: float | None = 0.0,
            reason: str | None = None, detail: str = "") -> RoutingVerdict:
    return RoutingVerdict(state, served, expected, penalty, reason, detail)


_TYPICAL = object()
"""``details`` left out: what the path typically carries (None says: no details at all)."""


def typical_details(path: Path, latency: float) -> PathDetails | None:
    """An origin that says nothing of its data path; an edge IAD89 that missed, then hit."""
    if path is Path.ORIGIN:
        return OriginDetails()
    if path is Path.CDN:
        return CdnDetails("IAD89-C1", "miss", "hit",
                          {"cdn-upstream-fbl": latency, "cdn-upstream-dns": latency}, None, None)
    return None


def path_result(path: Path, judged: RoutingVerdict | None = None, *, latency: float = 0.008,
                source: str | None = "header", status: int | None = 200,
                phases: Mapping[str, float] | None = None,
                details: object = _TYPICAL) -> PathResult:
    """One path's result; ``source`` None leaves it unattributed, ``latency`` sets its timings."""
    judged = judged or verdict()
    attribution = Attribution(judged.served_region, source) if source is not None else None
    if phases is None:
        phases = {"resolve": latency} if path is Path.DNS else dict.fromkeys(HTTP_PHASES, latency)
    found = typical_details(path, latency) if details is _TYPICAL else details
    return PathResult(path, judged, attribution, latency, phases,
                      status=None if path is Path.DNS else status, details=found)


def vantage_round(vantage: str = "nyc", *, state: RoutingState = RoutingState.OK,
                  served: str = "us-east-1", expected: str = "us-east-1", penalty: float = 0.0,
                  latency: float = 0.008, paths: Sequence[Path | PathResult] = tuple(Path),
                  regions: Mapping[str, float | None] | None = None,
                  errors: Sequence[ErrorRecord] = (), started_at: float = 1000.0,
                  duration: float | None = None, success: bool = True,
                  origin_status: int | None = 200, cdn_status: int | None = 200,
                  origin_details: OriginDetails | None = None,
                  cdn_details: CdnDetails | None = None) -> VantageRound:
    """A complete round of one vantage point.

    Every path given as a :class:`Path` gets the same verdict (``state``, ``served``,
    ``expected``, ``penalty``); a :class:`PathResult` is taken as it is. ``latency`` sets every
    timing, so a test can tell rounds apart. ``regions`` maps a region to its latency, None for
    one that did not answer (default: the served region at ``latency``, eu-west-1 ``penalty``
    later).
    """
    judged = verdict(state, served, expected, penalty)
    given: dict[Path, PathDetails | None] = {Path.ORIGIN: origin_details, Path.CDN: cdn_details}
    statuses = {Path.ORIGIN: origin_status, Path.CDN: cdn_status}
    results = tuple(
        p if isinstance(p, PathResult) else path_result(
            p, judged, latency=latency, status=statuses.get(p),
            details=given.get(p) or typical_details(p, latency))
        for p in paths)
    if regions is None:
        regions = {"us-east-1": latency, "eu-west-1": latency + penalty}
    rows = tuple(RegionLatency(region, seconds, True, (seconds,)) if seconds is not None
                 else RegionLatency(region, None, False, (), "timeout", "no answer")
                 for region, seconds in regions.items())
    lookup = DnsLookup("127.0.0.53:53", None, "NOERROR", ("127.20.1.1",), (), 60, None, "udp",
                       latency)
    dns = DnsLookups(lookup, lookup) if results else DnsLookups()
    return VantageRound(vantage, started_at, latency if duration is None else duration, rows,
                        results, tuple(errors), dns, success)


def round_of(*rounds: VantageRound) -> RoundResult:
    """The round of several vantage points (started with the first, as long as the longest)."""
    return RoundResult(rounds, rounds[0].started_at, max(r.duration_seconds for r in rounds))


def sample_round(vantage: str = "eu-west-1", *, started_at: float | None = None,
                 misrouted: bool = True) -> RoundResult:
    """A round from one vantage point: dns ok, origin misrouted (or ok), cdn unknown naming a
    region outside the configuration, one region down."""
    served = "us-east-1" if misrouted else "eu-west-1"
    origin = verdict(RoutingState.MISROUTED if misrouted else RoutingState.OK, served,
                     "eu-west-1", 0.075 if misrouted else 0.0)
    return round_of(vantage_round(
        vantage,
        started_at=time.time() if started_at is None else started_at,
        duration=0.42,
        regions={"eu-west-1": 0.012, "us-east-1": 0.087, "ap-south-1": None},
        paths=(
            path_result(Path.DNS, verdict(served="eu-west-1", expected="eu-west-1"),
                        latency=0.003, source="alb_address"),
            path_result(Path.ORIGIN, origin, latency=0.099,
                        phases={"connect": 0.01, "tls": 0.02}),
            path_result(Path.CDN, verdict(RoutingState.UNKNOWN, "mars-east-1", None, None,
                                          "unattributed", "no region"), source=None,
                        details=None),
        ),
        errors=(ErrorRecord("baseline", "timeout", "ap-south-1: no answer"),),
    ))
