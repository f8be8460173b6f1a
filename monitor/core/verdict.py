"""Routing verdicts: pure functions over evidence, no sockets.

expected region = the closest *healthy* region measured from here (the baseline);
observed region = the one that answered. ``ok`` when they match or the difference is inside the
tolerance; ``failover`` when the nominal closest region is down and the best healthy one answered;
``misrouted`` when a worse region answered beyond the tolerance (penalty in seconds); ``unknown``
with a typed reason when it cannot be told.
"""

from __future__ import annotations

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
]


def estimate_latency(samples: Sequence[float]) -> float | None:
    """The round trip from several samples of one phase: the minimum.

    Noise on a round trip only ever adds time (queueing, a late wake-up, a retransmit), so the
    smallest sample is the best estimate of the path's own delay.
    """
    return min(samples) if samples else None


def phase_for(estimator: Estimator) -> str:
    return {Estimator.FIRST_BYTE: "processing", Estimator.HANDSHAKE: "tls",
            Estimator.CONNECT: "connect"}[estimator]


def allowed_penalty(tolerance: Tolerance, best_seconds: float) -> float:
    """The largest penalty still tolerated: max(absolute, relative × best)."""
    return max(tolerance.absolute_ms / 1000.0, tolerance.relative * best_seconds)


def closest_healthy(regions: Sequence[RegionLatency]) -> RegionLatency | None:
    measured = [r for r in regions if r.healthy and r.latency_seconds is not None]
    return min(measured, key=lambda r: (r.latency_seconds, r.region)) if measured else None


def judge_unknown(reason: Reason | ProbeReason, detail: str, *, served: str | None = None,
                  expected: str | None = None) -> RoutingVerdict:
    return RoutingVerdict(RoutingState.UNKNOWN, served, expected, None, reason_of(reason), detail)


def judge(
    served_region: str | None,
    regions: Sequence[RegionLatency],
    tolerance: Tolerance,
    *,
    nominal_closest: str | None = None,
) -> RoutingVerdict:
    """Compare the region that answered with the closest healthy one."""
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
