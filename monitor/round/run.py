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

from monitor.config import Config, VantagePoint
from monitor.core.attribution import IpRanges, RegionDirectory
from monitor.core.evidence import PathInputs, Tick, VantageEvidence
from monitor.core.model import (
    DnsLookup,
    DnsLookups,
    ErrorRecord,
    RoundResult,
    RoutingState,
    VantageRound,
)
from monitor.core.paths import PATHS, PathSpec
from monitor.core.paths.dns import dns_query
from monitor.domain.geo import airport_location, nearest_region
from monitor.domain.reasons import Reason
from monitor.round.baseline import measure_baseline, summarise_region
from monitor.round.pacing import Pacer
from probes.dns import DnsEvidence, probe_dns
from probes.errors import RoutewatchError
from probes.http import ssl_context_for, warm_up

__all__ = ["Progress", "RoundContext", "UnknownVantagePoint", "run_round"]

log = logging.getLogger(__name__)

class UnknownVantagePoint(RoutewatchError, LookupError):
    """A round was asked for from vantage points the configuration does not have."""


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
    paths: tuple[PathSpec, ...] = PATHS

    async def slot(self) -> None:
        """A paced start slot for one check (see :class:`~monitor.round.pacing.Pacer`)."""
        await self.pacer.slot()

    def enabled_paths(self) -> tuple[PathSpec, ...]:
        return tuple(spec for spec in self.paths if spec.enabled(self.config))

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
    paths: tuple[PathSpec, ...] | None = None,
) -> RoundResult:
    """One round from every (or the named) vantage point, concurrently (``paths``: the path
    table, :data:`~monitor.core.paths.PATHS` unless a test passes its own)."""
    names = list(vantage_points) if vantage_points is not None else list(config.vantage_points)
    unknown = [n for n in names if n not in config.vantage_points]
    if unknown:
        raise UnknownVantagePoint(f"unknown vantage point(s): {', '.join(unknown)}")
    context = RoundContext.build(config, ip_ranges=ip_ranges, progress=progress)
    if paths is not None:
        context = dataclasses.replace(context, paths=paths)
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
    specs = context.enabled_paths()
    planned = (len(config.regions) * config.probe.samples
               + sum(spec.planned_checks(config) for spec in specs))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if context.progress is not None:
            context.progress(name, done, planned)

    tasks = [asyncio.create_task(spec.measure(context, vantage, evidence, tick))
             for spec in specs]
    tasks.append(asyncio.create_task(_baseline(context, vantage, evidence, tick)))
    done_tasks, pending = await asyncio.wait(tasks,
                                             timeout=max(0.0, deadline - loop.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    crashes = []
    for task in done_tasks:
        if (exc := task.exception()) is not None:  # a bug, not a measurement: keep the rest
            log.error("%s: measurement crashed", name, exc_info=exc)
            crashes.append(ErrorRecord("round", Reason.INTERNAL_ERROR,
                                       f"{type(exc).__name__}: {exc}"))
    result = judge_vantage(context, name, evidence, started_wall,
                           time.perf_counter() - started, timed_out=bool(pending))
    if crashes:
        result = dataclasses.replace(result, errors=(*result.errors, *crashes), success=False)
    return result


async def _baseline(context: RoundContext, vantage: VantagePoint, evidence: VantageEvidence,
                    tick: Tick) -> None:
    config = context.config
    addresses: dict[str, list[str]] = {}
    for region, settings in config.regions.items():
        addresses[region] = list(settings.addresses)
    named = [(r, s.alb_name) for r, s in config.regions.items() if not s.addresses and s.alb_name]
    if named:
        answers = await asyncio.gather(*(
            probe_dns(dns_query(config, vantage, alb))
            for _, alb in named))
        for (region, _), answer in zip(named, answers, strict=True):
            evidence.alb_answers[region] = answer
            addresses[region] = list(answer.addresses)
    await measure_baseline(config, addresses, local_address=vantage.source_address,
                           ssl_context=context.ssl_context, pacer=context.pacer,
                           into=evidence.baseline, on_sample=tick)


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
    inputs = PathInputs(config, name, vantage, evidence, regions,
                        region_directory(context, evidence), context.nominal[name])
    judgements = [j for spec in context.enabled_paths() if (j := spec.judge(inputs)) is not None]
    paths = tuple(j.result for j in judgements)
    errors = [error for j in judgements for error in j.errors]
    errors.extend(ErrorRecord("baseline", region.reason, f"{region.region}: {region.message}")
                  for region in regions if not region.healthy and region.reason)
    success = not timed_out and all(p.verdict.state != RoutingState.UNKNOWN for p in paths)
    return VantageRound(name, started_wall, duration, regions, paths, tuple(errors),
                        DnsLookups(_dns_lookup(evidence.recursive),
                                   _dns_lookup(evidence.authoritative)),
                        success)


def _dns_lookup(answer: DnsEvidence | None) -> DnsLookup | None:
    if answer is None:
        return None
    return DnsLookup(
        server=answer.server,
        client_subnet=answer.client_subnet,
        rcode=answer.rcode,
        addresses=answer.addresses,
        cname_chain=answer.cname_chain,
        ttl=answer.ttl,
        ecs_scope=answer.ecs_scope,
        transport=answer.transport,
        duration_seconds=answer.duration_seconds,
        error=answer.error.reason if answer.error else None,
    )
