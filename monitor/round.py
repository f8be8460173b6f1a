"""``run_round``: the one orchestration path under ``check``, ``serve`` and the Lambda handler.

From each vantage point, concurrently: resolve the origin name (recursive resolver, and the
authoritative servers with ECS), measure every region directly (the baseline), request the origin
at the address DNS answered (and, when configured, the CDN); then judge each path. A hard
per-round deadline cancels whatever is still running and judges what was measured.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.attribution import IpRanges, RegionDirectory, attribute
from monitor.baseline import BaselineSamples, measure_baseline, summarise_region
from monitor.config import Config, VantagePoint, split_endpoint
from monitor.geo import airport_location, nearest_region
from monitor.model import (
    ErrorRecord,
    Path,
    PathResult,
    RegionLatency,
    RoundResult,
    VantageRound,
)
from monitor.pacing import Pacer
from monitor.verdict import judge, judge_unknown
from probes.dns import DnsEvidence, DnsQuery, probe_dns
from probes.http import HttpEvidence, HttpTarget, probe_http, ssl_context_for

__all__ = ["Progress", "RoundContext", "run_round", "run_round_sync"]

Progress = Callable[[str, int, int], None]  # (vantage point, checks done, checks planned)


@dataclass
class RoundContext:
    """What every vantage point of a round shares; built once per round."""

    config: Config
    ssl_context: ssl.SSLContext
    pacer: Pacer
    ip_ranges: IpRanges | None = None
    progress: Progress | None = None

    @classmethod
    def build(cls, config: Config, *, ip_ranges: IpRanges | None = None,
              progress: Progress | None = None) -> RoundContext:
        ca = str(config.service.ca_file) if config.service.ca_file else None
        return cls(config, ssl_context_for(ca), Pacer(config.probe.pace_ms / 1000.0),
                   ip_ranges, progress)


@dataclass
class VantageEvidence:
    """Evidence gathered so far for one vantage point; filled in as measurements land."""

    recursive: DnsEvidence | None = None
    authoritative: DnsEvidence | None = None
    alb_answers: dict[str, DnsEvidence] = field(default_factory=dict)
    baseline: BaselineSamples = field(default_factory=dict)
    origin: HttpEvidence | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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


def run_round_sync(config: Config, **kwargs: Any) -> RoundResult:
    return asyncio.run(run_round(config, **kwargs))


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
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    timed_out = bool(pending)
    return judge_vantage(context, name, evidence, started_wall,
                         time.perf_counter() - started, timed_out=timed_out)


def _planned_checks(config: Config) -> int:
    return 2 + len(config.regions) * config.probe.samples + (1 if config.authoritative else 0)


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
    directory = region_directory(context, evidence)
    nominal = nominal_closest(vantage, list(config.regions))
    errors: list[ErrorRecord] = []
    paths = [
        judge_dns_path(evidence, regions, directory, context, nominal, errors, timed_out),
        judge_origin_path(evidence, regions, directory, context, nominal, errors, timed_out),
    ]
    for region in regions:
        if not region.healthy and region.reason:
            errors.append(ErrorRecord("baseline", region.reason,
                                      f"{region.region}: {region.message}"))
    success = not timed_out and all(p.verdict.state != "unknown" for p in paths)
    dns_doc = {
        kind: _dns_summary(answer)
        for kind, answer in (("recursive", evidence.recursive),
                             ("authoritative", evidence.authoritative))
        if answer is not None
    }
    return VantageRound(name, started_wall, duration, regions, tuple(paths), tuple(errors),
                        dns_doc, success)


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


def judge_dns_path(evidence: VantageEvidence, regions: Sequence[RegionLatency],
                   directory: RegionDirectory, context: RoundContext, nominal: str | None,
                   errors: list[ErrorRecord], timed_out: bool) -> PathResult:
    answer = evidence.recursive
    if answer is None:
        verdict = judge_unknown("deadline", "no DNS answer before the round deadline")
        errors.append(ErrorRecord("dns", "deadline", verdict.detail))
        return PathResult(Path.DNS, verdict)
    latency = answer.duration_seconds
    if answer.error is not None:
        errors.append(ErrorRecord("dns", answer.error.reason, str(answer.error)))
        return PathResult(Path.DNS, judge_unknown(answer.error.reason, str(answer.error)),
                          latency_seconds=latency, extra={"rcode": answer.rcode})
    attribution = attribute(directory, addresses=answer.addresses)
    verdict = judge(attribution.region, regions, context.config.tolerance,
                    nominal_closest=nominal)
    if attribution.region is None:
        verdict = judge_unknown("unattributed",
                                f"no region owns {', '.join(answer.addresses)}",
                                expected=verdict.expected_region)
    notes = list(attribution.conflicts)
    extra: dict[str, Any] = {"addresses": list(answer.addresses), "ttl": answer.ttl}
    authoritative = evidence.authoritative
    if authoritative is not None and authoritative.error is None:
        ecs_region = attribute(directory, addresses=authoritative.addresses).region
        extra["ecs_region"] = ecs_region
        if ecs_region != attribution.region:
            notes.append(
                f"the authoritative answer for subnet {authoritative.client_subnet} is "
                f"{ecs_region}, the resolver answered {attribution.region}")
    elif authoritative is not None and authoritative.error is not None:
        errors.append(ErrorRecord("dns", authoritative.error.reason, str(authoritative.error)))
    return PathResult(Path.DNS, verdict, attribution, latency,
                      {"resolve": latency}, answer.addresses[0], None, tuple(notes), extra)


def judge_origin_path(evidence: VantageEvidence, regions: Sequence[RegionLatency],
                      directory: RegionDirectory, context: RoundContext, nominal: str | None,
                      errors: list[ErrorRecord], timed_out: bool) -> PathResult:
    config = context.config
    dns_answer = evidence.recursive
    if dns_answer is not None and dns_answer.error is not None:
        return PathResult(Path.ORIGIN, judge_unknown(
            dns_answer.error.reason, f"origin not requested: {dns_answer.error}"))
    response = evidence.origin
    if response is None:
        verdict = judge_unknown("deadline", "no origin answer before the round deadline")
        errors.append(ErrorRecord("origin", "deadline", verdict.detail))
        return PathResult(Path.ORIGIN, verdict)
    phases = dict(response.phases)
    if dns_answer is not None:
        phases["resolve"] = dns_answer.duration_seconds
    address = response.target.address
    if response.error is not None:
        errors.append(ErrorRecord("origin", response.error.reason, str(response.error)))
        attribution = attribute(directory, addresses=[address])
        failed = judge_unknown(response.error.reason, str(response.error),
                               served=attribution.region)
        return PathResult(Path.ORIGIN, failed, attribution, None, phases, address)
    health = parse_health(response.body)
    notes: list[str] = []
    if health.problem:
        notes.append(health.problem)
    attribution = attribute(
        directory,
        header_region=response.header(config.service.region_header),
        body_region=health.region,
        addresses=[response.peer_address or address],
    )
    notes.extend(attribution.conflicts)
    verdict = judge(attribution.region, regions, config.tolerance, nominal_closest=nominal)
    if attribution.region is None:
        verdict = judge_unknown(
            "unattributed",
            f"no {config.service.region_header} header and no region owns {address}",
            expected=verdict.expected_region)
    if response.status is not None and response.status >= 400:
        notes.append(f"origin answered HTTP {response.status}")
        errors.append(ErrorRecord("origin", "http_status", f"HTTP {response.status}"))
    extra: dict[str, Any] = {}
    if health.dynamodb_region is not None:
        extra["dynamodb_region"] = health.dynamodb_region
        extra["data_path_local"] = health.dynamodb_region == attribution.region
        if health.dynamodb_read_ms is not None:
            extra["dynamodb_read_seconds"] = health.dynamodb_read_ms / 1000.0
        if not extra["data_path_local"]:
            notes.append(f"data path leaves the serving region: {attribution.region} reads "
                         f"DynamoDB in {health.dynamodb_region}")
    return PathResult(Path.ORIGIN, verdict, attribution, response.first_byte_seconds, phases,
                      response.peer_address or address, response.status, tuple(notes), extra)


@dataclass(frozen=True)
class HealthDocument:
    region: str | None = None
    dynamodb_region: str | None = None
    dynamodb_read_ms: float | None = None
    problem: str | None = None


def parse_health(body: bytes) -> HealthDocument:
    """The app contract's health JSON; anything unexpected becomes a problem note, never a crash."""
    if not body:
        return HealthDocument()
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return HealthDocument(problem=f"health body is not JSON ({exc.__class__.__name__})")
    if not isinstance(document, Mapping):
        return HealthDocument(problem="health body is not a JSON object")

    def text(key: str) -> str | None:
        value = document.get(key)
        return value if isinstance(value, str) and value else None

    read_ms = document.get("dynamodb_read_ms")
    number = float(read_ms) if isinstance(read_ms, int | float) and read_ms >= 0 else None
    return HealthDocument(text("region"), text("dynamodb_region"), number)
