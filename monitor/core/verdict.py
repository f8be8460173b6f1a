"""Routing verdicts: pure functions over evidence, no sockets.

expected region = the closest *healthy* region measured from here (the baseline);
observed region = the one that answered. ``ok`` when they match or the difference is inside the
tolerance; ``failover`` when the nominal closest region is down and the best healthy one answered;
``misrouted`` when a worse region answered beyond the tolerance (penalty in seconds); ``unknown``
with a typed reason when it cannot be told.

A verdict says which estimate it rests on. Every sample measures network distance (the TLS
handshake ÷ its round trips) beside the first byte, so with the ``first_byte`` estimator a
misroute must be one by network distance too: a serving region that first byte calls slower but
that is near by network, its extra time being its own app's, is ``ok`` with the finding
``slow_app``, resting on the handshake. Any ``ok`` whose serving region's app is slow beyond
``tolerance.slow_app_ms`` carries that finding; ``slow_app_ms: 0`` turns it off (and judges by
first byte alone).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from monitor.config import Estimator, Tolerance
from monitor.core.model import RegionLatency, RoutingState, RoutingVerdict
from monitor.domain.reasons import Reason, reason_of
from probes.errors import ProbeReason

__all__ = [
    "allowed_penalty",
    "closest_healthy",
    "estimate_latency",
    "judge",
    "judge_unknown",
    "near_but_slow",
    "slow_app",
    "slow_app_seconds",
    "unknown_beside_baseline",
]


def estimate_latency(samples: Sequence[float]) -> float | None:
    """The round trip from several samples of one phase: the minimum.

    Noise on a round trip only ever adds time (queueing, a late wake-up, a retransmit), so the
    smallest sample is the best estimate of the path's own delay.
    """
    return min(samples) if samples else None


def allowed_penalty(tolerance: Tolerance, best_seconds: float) -> float:
    """The largest penalty still tolerated: max(absolute, relative × best)."""
    return max(tolerance.absolute_ms / 1000.0, tolerance.relative * best_seconds)


def closest_healthy(regions: Sequence[RegionLatency]) -> RegionLatency | None:
    measured = [r for r in regions if r.healthy and r.latency_seconds is not None]
    return min(measured, key=lambda r: (r.latency_seconds, r.region)) if measured else None


def judge_unknown(reason: Reason | ProbeReason, detail: str, *, served: str | None = None,
                  expected: str | None = None) -> RoutingVerdict:
    return RoutingVerdict(RoutingState.UNKNOWN, served, expected, None, reason_of(reason), detail)


def unknown_beside_baseline(regions: Sequence[RegionLatency], reason: Reason | ProbeReason,
                            detail: str, *, served: str | None = None) -> RoutingVerdict:
    """``unknown`` for a path that could not be judged (its DNS failed, its request never came
    back) while the baseline still measured which region is closest: that stays expected."""
    best = closest_healthy(regions)
    verdict = judge_unknown(reason, detail, served=served,
                            expected=best.region if best else None)
    return dataclasses.replace(verdict, estimator=best.estimator) if best else verdict


def judge(
    served_region: str | None,
    regions: Sequence[RegionLatency],
    tolerance: Tolerance,
    *,
    nominal_closest: str | None = None,
) -> RoutingVerdict:
    """Compare the region that answered with the closest healthy one (by the estimate the rows
    carry, which the verdict names); a first-byte misroute that network distance does not
    confirm is a slow app near by (:func:`near_but_slow`); an ``ok`` gets the ``slow_app``
    finding when its serving region's app is slow."""
    verdict = _rests_on(_compare(served_region, regions, tolerance, nominal_closest), regions)
    near = near_but_slow(verdict, regions, tolerance, nominal_closest)
    return slow_app(near or verdict, regions, tolerance)


def _rests_on(verdict: RoutingVerdict, regions: Sequence[RegionLatency]) -> RoutingVerdict:
    if verdict.expected_region is None:
        return verdict
    estimator = next((r.estimator for r in regions if r.estimator is not None), None)
    return dataclasses.replace(verdict, estimator=estimator)


def near_but_slow(verdict: RoutingVerdict, regions: Sequence[RegionLatency],
                  tolerance: Tolerance, nominal_closest: str | None) -> RoutingVerdict | None:
    """The verdict by network distance when first byte calls the serving region slower but the
    handshake's round trip does not, and that region's app is slow (:func:`slow_app_seconds`):
    its first byte is slow because of its app, not its distance. None when that is not the case
    (the first-byte verdict stands)."""
    rows = {r.region: r for r in regions}
    served = rows.get(verdict.served_region or "")
    if (verdict.reason is not Reason.SLOWER_REGION or verdict.estimator is not Estimator.FIRST_BYTE
            or served is None or slow_app_seconds(served, regions, tolerance) is None):
        return None
    if any(r.healthy and r.handshake_seconds is None for r in regions):
        return None  # distance was not measured everywhere: nothing to set against first byte
    network = tuple(dataclasses.replace(r, latency_seconds=r.handshake_seconds,
                                        estimator=Estimator.HANDSHAKE) for r in regions)
    by_network = _rests_on(_compare(served.region, network, tolerance, nominal_closest), network)
    if by_network.state not in (RoutingState.OK, RoutingState.FAILOVER):
        return None
    return dataclasses.replace(
        by_network, detail=f"{by_network.detail} (by network round trip); by first byte "
                           f"{verdict.expected_region} reads {verdict.penalty_seconds * 1000:.1f} "
                           f"ms closer, which is {served.region}'s app"
        if verdict.penalty_seconds is not None else by_network.detail)


def slow_app_seconds(row: RegionLatency, regions: Sequence[RegionLatency],
                     tolerance: Tolerance) -> float | None:
    """How much longer a region's app takes than the quickest app of the round, when that is
    beyond ``tolerance.slow_app_ms`` (None: not slow, not measured, or the finding is off).
    Measured against the quickest app, not against nothing: what slows every region alike (a
    busy machine, a health handler slow everywhere) makes no region slower than the others."""
    limit = tolerance.slow_app_ms / 1000.0
    apps = [r.app_seconds for r in regions if r.healthy and r.app_seconds is not None]
    if limit <= 0 or row.app_seconds is None or not apps:
        return None
    excess = row.app_seconds - min(apps)
    return excess if excess > limit else None


def slow_app(verdict: RoutingVerdict, regions: Sequence[RegionLatency],
             tolerance: Tolerance) -> RoutingVerdict:
    """An ``ok`` verdict whose serving region's app is slow (:func:`slow_app_seconds`) gets the
    finding ``slow_app``: the region is near, its app is slow; that is not a misroute."""
    row = next((r for r in regions if r.region == verdict.served_region), None)
    if verdict.state is not RoutingState.OK or verdict.reason is not None or row is None:
        return verdict
    excess = slow_app_seconds(row, regions, tolerance)
    if excess is None or row.app_seconds is None:
        return verdict
    network = row.handshake_seconds or 0.0
    return dataclasses.replace(
        verdict, reason=Reason.SLOW_APP,
        detail=f"{verdict.detail}; {row.region}'s app takes {row.app_seconds * 1000:.1f} ms "
               f"beyond its {network * 1000:.1f} ms round trip, {excess * 1000:.1f} ms more "
               f"than the quickest region's (slow_app)")


def _compare(served_region: str | None, regions: Sequence[RegionLatency], tolerance: Tolerance,
             nominal_closest: str | None) -> RoutingVerdict:
    best = closest_healthy(regions)
    if best is None:
        return judge_unknown(Reason.NO_HEALTHY_REGION, "no region answered the baseline",
                             served=served_region)
    expected = best.region
    if served_region is None:
        return judge_unknown(Reason.UNATTRIBUTED, "could not tell which region answered",
                             expected=expected)
    rows = {r.region: r for r in regions}
    served = rows.get(served_region)
    if served is None:
        return judge_unknown(Reason.UNCONFIGURED_REGION,
                             f"{served_region} answered but is not a configured region",
                             served=served_region, expected=expected)
    nominal = rows.get(nominal_closest) if nominal_closest else None
    best_seconds = best.latency_seconds or 0.0  # closest_healthy only returns measured rows
    if not served.healthy or served.latency_seconds is None:
        return RoutingVerdict(
            RoutingState.MISROUTED, served_region, expected, None, Reason.SERVED_UNHEALTHY,
            f"{served_region} answered but failed the baseline ({served.reason}); "
            f"{expected} is healthy",
        )
    penalty = served.latency_seconds - best_seconds
    if served_region != expected and penalty > allowed_penalty(tolerance, best_seconds):
        return RoutingVerdict(
            RoutingState.MISROUTED, served_region, expected, penalty, Reason.SLOWER_REGION,
            f"{served_region} answered, {expected} is {penalty * 1000:.1f} ms closer",
        )
    if nominal is not None and not nominal.healthy:
        return RoutingVerdict(
            RoutingState.FAILOVER, served_region, expected, penalty, Reason.CLOSEST_REGION_DOWN,
            f"{nominal.region} (nominally closest) is down ({nominal.reason}); "
            f"{served_region} answered",
        )
    detail = ("closest region answered" if served_region == expected else
              f"{served_region} answered, {expected} is {penalty * 1000:.1f} ms closer "
              "(within tolerance)")
    return RoutingVerdict(RoutingState.OK, served_region, expected, penalty, None, detail)
