"""``run_round``: the one orchestration path under ``check``, ``serve`` and the Lambda handler.

From each vantage point, concurrently: resolve the origin name (recursive resolver, and the
authoritative servers with ECS), measure every region directly (the baseline), request the origin
at the address DNS answered (and, when configured, the CDN); then judge each path. A hard
per-round deadline cancels whatever is still running and judges what was measured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config import Config, VantagePoint, split_endpoint
from monitor.core.attribution import IpRanges, RegionDirectory
from monitor.core.evidence import PathInputs, VantageEvidence
from monitor.core.model import ErrorRecord, RoundResult, RoutingState, VantageRound
from monitor.core.paths import PATH_JUDGES
from monitor.domain.geo import airport_location, nearest_region
from monitor.round.baseline import measure_baseline, summarise_region
from monitor.round.pacing import Pacer
from probes.cdn import CdnTarget, probe_cdn
from probes.dns import DnsEvidence, DnsQuery, probe_dns
from probes.http import HttpTarget, probe_http, ssl_context_for, warm_up

__all__ = ["Progress", "RoundContext", "run_round"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (vantage point, checks done, checks planned)


@dataclass
class RoundContext:
    """What every vantage point of a round shares; built once per round."""

    config: Config
    ssl_context: ssl.SSLContext
    pacer: Pacer
    nominal: dict[str, str | None]
    ip_ranges: IpRanges | None = None
    progress: Progress | None = None

    @classmethod
    def build(cls, config: Config, *, ip_ranges: IpRanges | None = None,
              progress: Progress | None = None) -> RoundContext:
        """Everything that blocks (CA bundle, airport table) happens here, before any probe
        starts: a 0.2 s stall while other vantage points measure adds 0.2 s to their samples."""
        ca = str(config.service.ca_file) if config.service.ca_file else None
        nominal = {name: nominal_closest(vantage, list(config.regions))
                   for name, vantage in config.vantage_points.items()}
        if config.service.cdn_name:
            airport_location("IAD")  # loads the airport table the cdn judge needs
        warm_up()
        gc.collect()  # a full collection now, not in the middle of someone's first byte
        return cls(config, ssl_context_for(ca), Pacer(config.probe.pace_ms / 1000.0),
                   nominal, ip_ranges, progress)


def nominal_closest(vantage: VantagePoint, regions: Sequence[str]) -> str | None:
    """The region a vantage point should be closest to without measuring: where it runs, or the
    region nearest its airport code."""
    if vantage.region is not None:
        return vantage.region
    if vantage.location is not None:
        place = airport_location(vantage.location)
        if place is not None:
            return nearest_region(place, regions)
    return None


async def run_round(
    config: Config,
    *,
    vantage_points: Sequence[str] | None = None,
    ip_ranges: IpRanges | None = None,
    progress: Progress | None = None,
) -> RoundResult:
    """One round from every (or the named) vantage point, concurrently."""
    names = list(vantage_points) if vantage_points is not None else list(config.vantage_points)
    unknown = [n for n in names if n not in config.vantage_points]
    if unknown:
        raise KeyError(f"unknown vantage point(s): {', '.join(unknown)}")
    context = RoundContext.build(config, ip_ranges=ip_ranges, progress=progress)
    started_wall = time.time()
    started = time.perf_counter()
    rounds = await asyncio.gather(*(run_vantage(context, name) for name in names))
    return RoundResult(tuple(rounds), started_wall, time.perf_counter() - started)


async def run_vantage(context: RoundContext, name: str) -> VantageRound:
    """One vantage point's round, bounded by the round deadline."""
    config = context.config
    vantage = config.vantage_points[name]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.probe.round_deadline_s
    started_wall = time.time()
    started = time.perf_counter()
    evidence = VantageEvidence()
    planned = _planned_checks(config)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if context.progress is not None:
            context.progress(name, done, planned)

    tasks = [asyncio.create_task(_resolve_and_request_origin(context, vantage, evidence, tick)),
             asyncio.create_task(_baseline(context, vantage, evidence, tick))]
    if config.authoritative:
        tasks.append(asyncio.create_task(_resolve_authoritative(context, vantage, evidence, tick)))
    if config.service.cdn_name:
        tasks.append(asyncio.create_task(_request_cdn(context, vantage, evidence, tick)))
    done_tasks, pending = await asyncio.wait(tasks,
                                             timeout=max(0.0, deadline - loop.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    crashes = []
    for task in done_tasks:
        if (exc := task.exception()) is not None:  # a bug, not a measurement: keep the rest
            log.error("%s: measurement crashed", name, exc_info=exc)
            crashes.append(ErrorRecord("round", "internal_error", f"{type(exc).__name__}: {exc}"))
    result = judge_vantage(context, name, evidence, started_wall,
                           time.perf_counter() - started, timed_out=bool(pending))
    if crashes:
        result = dataclasses.replace(result, errors=(*result.errors, *crashes), success=False)
    return result


def _planned_checks(config: Config) -> int:
    return (2 + len(config.regions) * config.probe.samples + (1 if config.authoritative else 0)
            + (1 if config.service.cdn_name else 0))


def _dns_query(context: RoundContext, vantage: VantagePoint, qname: str, *,
               authoritative_server: str | None = None) -> DnsQuery:
    """A query through the vantage point's resolver, or at one authoritative server with ECS."""
    host, port = split_endpoint(authoritative_server or vantage.resolver, 53)
    return DnsQuery(
        qname=qname,
        server=host,
        port=port,
        via="authoritative" if authoritative_server else "recursive",
        client_subnet=vantage.client_subnet if authoritative_server else None,
        source_address=vantage.source_address,
        timeout_s=context.config.probe.dns_timeout_s,
    )


async def _resolve_authoritative(context: RoundContext, vantage: VantagePoint,
                                 evidence: VantageEvidence, tick: Callable[[], None]) -> None:
    await context.pacer.slot()
    for server in context.config.authoritative:  # the first server that answers wins
        evidence.authoritative = await probe_dns(_dns_query(
            context, vantage, context.config.service.origin_name, authoritative_server=server))
        if evidence.authoritative.rcode is not None:
            break
    tick()


async def _resolve_and_request_origin(context: RoundContext, vantage: VantagePoint,
                                      evidence: VantageEvidence,
                                      tick: Callable[[], None]) -> None:
    config = context.config
    await context.pacer.slot()
    evidence.recursive = await probe_dns(
        _dns_query(context, vantage, config.service.origin_name))
    tick()
    if evidence.recursive.error is not None or not evidence.recursive.addresses:
        tick()
        return
    await context.pacer.slot()
    evidence.origin = await probe_http(
        HttpTarget(
            host=config.service.origin_name,
            address=evidence.recursive.addresses[0],
            port=config.service.port,
            path=config.service.health_path,
            local_address=vantage.source_address,
        ),
        ssl_context=context.ssl_context,
        connect_timeout_s=config.probe.connect_timeout_s,
        request_timeout_s=config.probe.request_timeout_s,
        body_limit_bytes=config.probe.body_limit_bytes,
    )
    tick()


async def _baseline(context: RoundContext, vantage: VantagePoint, evidence: VantageEvidence,
                    tick: Callable[[], None]) -> None:
    config = context.config
    addresses: dict[str, list[str]] = {}
    for region, settings in config.regions.items():
        addresses[region] = list(settings.addresses)
    named = [(r, s.alb_name) for r, s in config.regions.items() if not s.addresses and s.alb_name]
    if named:
        answers = await asyncio.gather(*(
            probe_dns(_dns_query(context, vantage, alb))
            for _, alb in named))
        for (region, _), answer in zip(named, answers, strict=True):
            evidence.alb_answers[region] = answer
            addresses[region] = list(answer.addresses)
    await measure_baseline(config, addresses, local_address=vantage.source_address,
                           ssl_context=context.ssl_context, pacer=context.pacer,
                           into=evidence.baseline, on_sample=tick)


async def _request_cdn(context: RoundContext, vantage: VantagePoint, evidence: VantageEvidence,
                      tick: Callable[[], None]) -> None:
    config = context.config
    assert config.service.cdn_name is not None
    host, port = split_endpoint(vantage.resolver, 53)
    await context.pacer.slot()
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
        ),
        ssl_context=context.ssl_context,
        connect_timeout_s=config.probe.connect_timeout_s,
        request_timeout_s=config.probe.request_timeout_s,
        body_limit_bytes=config.probe.body_limit_bytes,
    )
    tick()


# --- judging -------------------------------------------------------------------------------------


def region_directory(context: RoundContext, evidence: VantageEvidence) -> RegionDirectory:
    config = context.config
    alb: dict[str, frozenset[str]] = {}
    for region, settings in config.regions.items():
        resolved = evidence.alb_answers.get(region)
        alb[region] = frozenset(settings.addresses) | frozenset(
            resolved.addresses if resolved else ())
    return RegionDirectory(frozenset(config.regions), alb, context.ip_ranges)


def judge_vantage(context: RoundContext, name: str, evidence: VantageEvidence,
                  started_wall: float, duration: float, *, timed_out: bool) -> VantageRound:
    """Turn one vantage point's evidence into verdicts (no I/O)."""
    config = context.config
    vantage = config.vantage_points[name]
    regions = tuple(
        summarise_region(region, evidence.baseline.get(region, []), config, finished=not timed_out)
        for region in config.regions
    )
    errors: list[ErrorRecord] = []
    inputs = PathInputs(config, name, vantage, evidence, regions,
                        region_directory(context, evidence),
                        context.nominal[name], errors)
    paths = tuple(p for judge_path in PATH_JUDGES.values()
                  if (p := judge_path(inputs)) is not None)
    for region in regions:
        if not region.healthy and region.reason:
            errors.append(ErrorRecord("baseline", region.reason,
                                      f"{region.region}: {region.message}"))
    success = not timed_out and all(p.verdict.state != RoutingState.UNKNOWN for p in paths)
    dns_doc = {
        kind: _dns_summary(answer)
        for kind, answer in (("recursive", evidence.recursive),
                             ("authoritative", evidence.authoritative))
        if answer is not None
    }
    return VantageRound(name, started_wall, duration, regions, paths, tuple(errors), dns_doc,
                        success)


def _dns_summary(answer: DnsEvidence) -> dict[str, Any]:
    return {
        "server": answer.server,
        "client_subnet": answer.client_subnet,
        "rcode": answer.rcode,
        "addresses": list(answer.addresses),
        "cname_chain": list(answer.cname_chain),
        "ttl": answer.ttl,
        "ecs_scope": answer.ecs_scope,
        "transport": answer.transport,
        "duration_seconds": answer.duration_seconds,
        "error": answer.error.reason if answer.error else None,
    }
