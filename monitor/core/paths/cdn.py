"""The ``cdn`` path: which origin region the CloudFront edge (POP) serving us reaches.

Served region = the origin's region header passed through the edge. Expected region = the
configured region closest to the POP: pinned in ``cdn.pop_regions``, else the nearest by
great-circle distance from the POP's airport (its first three letters), skipping regions that
failed this vantage point's baseline. A penalty is given only when the POP is in the vantage
point's own metro (within :data:`SAME_METRO_KM` of its ``location``): then this vantage point's
baseline row stands in for the edge's, which is measured, not guessed. Otherwise it stays empty.

The region header passed through the edge is the only evidence of the region the edge reached,
so when this round shows that header cannot be trusted (another region's app sends the same
name when measured directly, or the origin request saw it on another region's address) the path
is ``unknown`` (``evidence_conflict``), never a confident verdict from a disputed header.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from monitor.config import Config, VantagePoint, address_policy, split_endpoint
from monitor.core.attribution import attribute, region_names
from monitor.core.evidence import Judgement, MeasureContext, PathInputs, Tick, VantageEvidence
from monitor.core.model import (
    Attribution,
    CdnDetails,
    ErrorRecord,
    Path,
    PathResult,
    RoutingState,
    RoutingVerdict,
    TlsInfo,
)
from monitor.core.paths.claims import header_disputes
from monitor.core.paths.http_status import status_problem
from monitor.core.paths.origin import origin_attribution, origin_health
from monitor.core.verdict import allowed_penalty, judge_unknown
from monitor.domain.geo import REGION_LOCATIONS, airport_location, great_circle_km
from monitor.domain.reasons import Reason, reason_of
from probes.cdn import CdnHeaders, CdnTarget, probe_cdn
from probes.errors import DnsNoAnswer, ProbeError, ResponseError

__all__ = ["SAME_METRO_KM", "cdn_enabled", "cdn_planned_checks", "judge_cdn", "measure_cdn",
           "pop_region_ranking"]

SAME_METRO_KM = 300.0


def pop_region_ranking(pop: str, regions: Sequence[str],
                       pinned: Mapping[str, str]) -> tuple[str, ...] | None:
    """Configured regions from closest to farthest for a POP; None when its airport is unknown.

    A pin (full code, else its three-letter prefix) puts that region first.
    """
    airport = pop[:3]
    pin = pinned.get(pop) or pinned.get(airport)
    place = airport_location(airport)
    if place is None:
        return (pin,) if pin else None
    ranked = sorted((great_circle_km(place, REGION_LOCATIONS[r]), r)
                    for r in regions if r in REGION_LOCATIONS)
    order = [r for _, r in ranked]
    if pin:
        order = [pin, *[r for r in order if r != pin]]
    return tuple(order) or None


def _same_metro(pop: str, location: str | None) -> bool:
    if location is None:
        return False
    a, b = airport_location(pop[:3]), airport_location(location)
    return a is not None and b is not None and great_circle_km(a, b) <= SAME_METRO_KM


def cdn_enabled(config: Config) -> bool:
    return config.service.cdn_name is not None


def cdn_planned_checks(config: Config) -> int:
    return 1


async def measure_cdn(context: MeasureContext, vantage: VantagePoint,
                      evidence: VantageEvidence, tick: Tick) -> None:
    """Resolve the CDN name through the vantage point's resolver and request it cache-busted."""
    config = context.config
    if config.service.cdn_name is None:
        return
    host, port = split_endpoint(vantage.resolver, 53)
    await context.slot()
    evidence.cdn = await probe_cdn(
        CdnTarget(
            cdn_name=config.service.cdn_name,
            resolver=host,
            resolver_port=port,
            port=config.service.port,
            path=config.cdn.path,
            region_header=config.service.region_header,
            cache_bust=config.cdn.cache_bust,
            observe_hit=config.cdn.observe_hit,
            local_address=vantage.source_address,
            dns_timeout_s=config.probe.dns_timeout_s,
            rdtype=evidence.family.rdtype,
            request_local_address=vantage.local_address(evidence.family),
        ),
        ssl_context=context.ssl_context,
        connect_timeout_s=config.probe.connect_timeout_s,
        request_timeout_s=config.probe.request_timeout_s,
        body_limit_bytes=config.probe.body_limit_bytes,
        address_policy=address_policy(config),
    )
    tick()


def judge_cdn(inputs: PathInputs) -> Judgement | None:
    config = inputs.config
    if config.service.cdn_name is None:
        return None
    cdn = inputs.evidence.cdn
    if cdn is None:
        verdict = judge_unknown(Reason.DEADLINE, "no CDN answer before the round deadline")
        return Judgement(PathResult(Path.CDN, verdict),
                         (ErrorRecord("cdn", Reason.DEADLINE, verdict.detail),))
    first = cdn.first
    if cdn.dns.error is not None or first is None:
        error: ProbeError = cdn.dns.error or DnsNoAnswer(f"no address for {cdn.target.cdn_name}")
        return Judgement(PathResult(Path.CDN, judge_unknown(error.reason, f"CDN name: {error}")),
                         (ErrorRecord.of("cdn", error),))
    edge = first.target.address
    phases = {**first.phases, "resolve": cdn.dns.duration_seconds}
    headers = cdn.first_headers
    if first.error is not None or headers is None:
        failure: ProbeError = first.error or ResponseError("no response headers",
                                                           target=first.target.url)
        return Judgement(PathResult(Path.CDN, judge_unknown(failure.reason,
                                                            f"edge {edge}: {failure}"),
                                    phases=phases, address=edge),
                         (ErrorRecord.of("cdn", failure),))
    notes = [f"{p.reason}: {p.message}" for p in headers.problems]
    errors = tuple(ErrorRecord("cdn", reason_of(p.reason), p.message) for p in headers.problems)
    details = CdnDetails(
        pop=headers.pop,
        cache=headers.cache,
        cache_repeat=cdn.repeat_headers.cache if cdn.repeat_headers else None,
        server_timing=headers.server_timing,
        edge_address=edge,
        request_id=headers.request_id,
    )
    header_regions = first.header_list(inputs.config.service.region_header)
    attribution, verdict = _cdn_verdict(inputs, headers, header_regions, edge)
    if attribution is not None:
        notes.extend(attribution.conflicts)
    status = status_problem(first)
    if status is not None:  # the edge's error page (or redirect) is no answer from a region
        errors = (*errors, ErrorRecord("cdn", Reason.HTTP_STATUS, f"edge {edge}: {status}"))
        if verdict.state is RoutingState.MISROUTED:
            notes.append(f"edge {edge} answered {status}")
        else:
            verdict = judge_unknown(Reason.HTTP_STATUS, f"edge {edge} answered {status}",
                                    served=verdict.served_region,
                                    expected=verdict.expected_region)
    return Judgement(PathResult(Path.CDN, verdict, attribution, first.first_byte_seconds, phases,
                                edge, first.status, tuple(notes), details, TlsInfo.of(first.tls)),
                     errors)


def _origin_disputes(inputs: PathInputs, header_regions: tuple[str, ...],
                     known: tuple[str, ...]) -> tuple[str, ...]:
    """The origin request of this round saw the same region header on a disputed answer (its
    conflicts, those not ``known`` already)."""
    response = inputs.evidence.origin
    if response is None or response.error is not None or response.status is None:
        return ()
    origin = origin_attribution(inputs, response, origin_health(inputs.config, response))
    if not origin.disputed or origin.region is None or origin.region not in header_regions:
        return ()
    return tuple(f"origin path: {conflict}" for conflict in origin.conflicts
                 if conflict not in known)


def _cdn_verdict(inputs: PathInputs, headers: CdnHeaders, header_values: tuple[str, ...],
                 edge: str) -> tuple[Attribution | None, RoutingVerdict]:
    """The verdict from the edge's headers and this vantage point's baseline (pure)."""
    config = inputs.config
    if headers.pop is None:
        return None, judge_unknown(Reason.POP_MISSING, f"edge {edge} sent no x-amz-cf-pop header")
    if headers.pop == "other":
        return None, judge_unknown(Reason.POP_INVALID, f"{headers.pop_raw!r} is not a POP code")
    ranking = pop_region_ranking(headers.pop, list(config.regions), config.cdn.pop_regions)
    if ranking is None:
        return None, judge_unknown(
            Reason.UNKNOWN_POP, f"POP {headers.pop}: airport {headers.pop[:3]} is unknown "
            f"(pin it in cdn.pop_regions)")
    attribution = attribute(inputs.directory, header_regions=header_values)
    healthy = {r.region for r in inputs.regions if r.healthy}
    expected = next((r for r in ranking if r in healthy), None)
    served = attribution.region
    if served is None:
        return None, judge_unknown(Reason.UNATTRIBUTED, f"the edge passed no "
                                   f"{config.service.region_header} header through",
                                   expected=expected)
    header_regions = region_names(header_values)
    measured = header_disputes(inputs, header_regions)
    disputes = (*measured, *_origin_disputes(inputs, header_regions, measured))
    if attribution.disputed or disputes:
        attribution = dataclasses.replace(
            attribution, disputed=True,
            conflicts=tuple(dict.fromkeys((*attribution.conflicts, *disputes))))
        return attribution, judge_unknown(
            Reason.EVIDENCE_CONFLICT, f"POP {headers.pop} passed {config.service.region_header} "
            f"{', '.join(header_regions)}, which cannot name the region it reached: "
            + "; ".join(attribution.conflicts), expected=expected)
    if expected is None:
        return None, judge_unknown(Reason.NO_HEALTHY_REGION,
                                   "no configured region is healthy from here", served=served)
    penalty = None
    if _same_metro(headers.pop, inputs.vantage.location):
        served_latency = inputs.region_latency(served)
        expected_latency = inputs.region_latency(expected)
        if served_latency is not None and expected_latency is not None:
            penalty = served_latency - expected_latency
    detail = f"POP {headers.pop} reached {served}"
    if served == expected:
        state = RoutingState.OK if ranking[0] == expected else RoutingState.FAILOVER
        reason = None if state is RoutingState.OK else Reason.CLOSEST_REGION_DOWN
        if state is RoutingState.FAILOVER:
            detail += f"; {ranking[0]} (closest to the POP) is down"
        verdict = RoutingVerdict(state, served, expected, penalty, reason, detail)
    else:
        expected_latency = inputs.region_latency(expected)
        tolerated = (penalty is not None and expected_latency is not None
                     and penalty <= allowed_penalty(config.tolerance, expected_latency))
        verdict = RoutingVerdict(
            RoutingState.OK if tolerated else RoutingState.MISROUTED, served, expected, penalty,
            None if tolerated else Reason.EDGE_ORIGIN_REGION,
            detail + f", {expected} is closer to it" + (" (within tolerance)" if tolerated else ""))
    return attribution, verdict
