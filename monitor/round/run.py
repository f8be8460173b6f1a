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
import os
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.config import Config, VantagePoint
from monitor.core.attribution import IpRanges, RegionDirectory
from monitor.core.evidence import Judgement, PathInputs, Tick, VantageEvidence
from monitor.core.model import (
    DnsLookup,
    DnsLookups,
    ErrorRecord,
    IpFamily,
    PathResult,
    RegionLatency,
    RoundPlan,
    RoundResult,
    RoutingState,
    VantageRound,
)
from monitor.core.paths import PATHS, PathSpec
from monitor.core.paths.dns import dns_query
from monitor.core.verdict import judge_unknown
from monitor.domain.geo import airport_location, nearest_region
from monitor.domain.reasons import Reason
from monitor.round.baseline import (
    SampleSpans,
    Trust,
    measure_baseline,
    sample_estimate,
    sample_ok,
    summarise_row,
)
from monitor.round.lag import (
    DISTURBED_S,
    LagSource,
    StallIndex,
    max_stall,
    shared_lag_monitor,
)
from monitor.round.pacing import DEADLINE_SHARE, Pacer, plan_round
from probes.dns import DnsEvidence, probe_dns
from probes.errors import RoutewatchError
from probes.http import ssl_context_for, warm_up

__all__ = ["Preparation", "Progress", "RoundContext", "UnknownService",
           "UnknownVantagePoint", "run_round"]

log = logging.getLogger(__name__)

class UnknownVantagePoint(RoutewatchError, LookupError):
    """A round was asked for from vantage points the configuration does not have."""


class UnknownService(RoutewatchError, LookupError):
    """A round was asked for services the configuration does not have."""


Progress = Callable[[str, int, int], None]  # (vantage point, checks done, checks planned)


def _collect_and_freeze() -> None:
    """A full collection, then the survivors (modules, config, caches) left out of every later
    one, which otherwise scans them all mid-round (tens of ms of stall at 20 × 30). Once per
    process: a frozen object is only freed by reference counting."""
    gc.collect()
    gc.freeze()


class Preparation:
    """What blocks and must not run per round: importing httpx's lazy modules and loading the
    default CA bundle (``warm_up``, 37–61 ms), a full ``gc.collect()`` (22–51 ms), loading the
    configured CA bundle. Done once per process (:data:`PREPARED`), and the CA bundle again only
    when its file changed (a SIGHUP reload naming an edited bundle). ``serve`` runs a round per
    vantage point while the others measure: a 50 ms stall there lands in their samples. The
    callables are parameters so a test can count them."""

    def __init__(self, *, warm: Callable[[], None] = warm_up,
                 collect: Callable[[], object] = _collect_and_freeze,
                 load_ca: Callable[[str | None], ssl.SSLContext] = ssl_context_for) -> None:
        self._warm = warm
        self._collect = collect
        self._load_ca = load_ca
        self._warmed = False
        self._contexts: dict[tuple[str | None, int, int], ssl.SSLContext] = {}

    def ssl_context(self, ca_file: str | None) -> ssl.SSLContext:
        if not self._warmed:
            self._warm()
            self._collect()  # a full collection now, not in the middle of someone's first byte
            self._warmed = True
        key = (ca_file, *_file_version(ca_file))
        context = self._contexts.get(key)
        if context is None:
            if getattr(self._load_ca, "cache_clear", None) is not None and self._contexts:
                ssl_context_for.cache_clear()  # the bundle changed: read it again
            context = self._contexts[key] = self._load_ca(ca_file)
        return context


def _file_version(path: str | None) -> tuple[int, int]:
    if path is None:
        return (0, 0)
    try:
        found = os.stat(path)
    except OSError:
        return (0, 0)  # loading it will say what is wrong
    return (found.st_mtime_ns, found.st_size)


PREPARED = Preparation()


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
    lag_sources: tuple[LagSource, ...] = ()
    disturbed_s: float = DISTURBED_S
    plan: RoundPlan | None = None
    spans: dict[str, SampleSpans] = field(default_factory=dict)  # vantage point → its spans

    async def slot(self) -> None:
        """A paced start slot for one check (see :class:`~monitor.round.pacing.Pacer`)."""
        await self.pacer.slot()

    def enabled_paths(self, family: IpFamily = IpFamily.IPV4) -> tuple[PathSpec, ...]:
        return _enabled(self.config, self.paths, family)

    @property
    def families(self) -> tuple[IpFamily, ...]:
        """The address families each vantage point measures, the always-reported one first."""
        return self.config.probe.families

    @classmethod
    def build(cls, config: Config, *, ip_ranges: IpRanges | None = None,
              progress: Progress | None = None, vantage_points: int | None = None,
              lag_sources: Sequence[LagSource] = (),
              prepared: Preparation | None = None, checks: int | None = None) -> RoundContext:
        """Everything that blocks (CA bundle, airport table) happens before any probe starts,
        and only once per process (:class:`Preparation`): a 0.2 s stall while other vantage
        points measure adds 0.2 s to their samples. Must run in the round's event loop (the
        pacer watches that loop's lag). ``checks``: the round's planned starts when this
        context shares its pacer with others (every service's checks); default: this one's."""
        ca = str(config.service.ca_file) if config.service.ca_file else None
        nominal = {name: nominal_closest(vantage, list(config.regions))
                   for name, vantage in config.vantage_points.items()}
        if config.service.cdn_name:
            airport_location("IAD")  # loads the airport table the cdn judge needs
        ssl_context = (prepared or PREPARED).ssl_context(ca)
        count = len(config.vantage_points) if vantage_points is None else vantage_points
        plan = plan_round(count * planned_checks(config) if checks is None else checks,
                          config.probe.pace_ms / 1000.0, config.probe.round_deadline_s)
        lag = shared_lag_monitor()
        pacer = Pacer(plan.gap_seconds, lag=lag, checks=plan.checks,
                      budget_s=plan.deadline_seconds * DEADLINE_SHARE)
        return cls(config, ssl_context, pacer, nominal, ip_ranges, progress,
                   lag_sources=(lag, *lag_sources), plan=plan)


def planned_checks(config: Config, paths: tuple[PathSpec, ...] = PATHS) -> int:
    """The checks one vantage point's round starts: every baseline sample, every path's; in
    each further address family, its paths' and the samples of regions configured with an
    address of it (an ALB name's answer in it is not known before the round)."""
    first = config.probe.families[0]
    return sum(config.probe.samples * len(config.regions if family is first
                                          else _written(config, family))
               + sum(spec.planned_checks(config) for spec in _enabled(config, paths, family))
               for family in config.probe.families)


def _enabled(config: Config, paths: Sequence[PathSpec], family: IpFamily
             ) -> tuple[PathSpec, ...]:
    """The paths measured in ``family`` for this configuration."""
    return tuple(spec for spec in paths if spec.enabled(config) and family in spec.families)


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
    services: Sequence[str] | None = None,
    ip_ranges: IpRanges | None = None,
    progress: Progress | None = None,
    paths: tuple[PathSpec, ...] | None = None,
    lag_sources: Sequence[LagSource] = (),
    disturbed_s: float = DISTURBED_S,
) -> RoundResult:
    """One round from every (or the named) vantage point for every (or each named) service,
    concurrently (``paths``: the path table, :data:`~monitor.core.paths.PATHS` unless a test
    passes its own; ``lag_sources``: who else knows when measurements were disturbed, e.g. the
    lab; ``disturbed_s``: a sample disturbed by more is not used, ``inf`` turns measurement trust
    off, as in the benchmark).

    Each service runs on its own view of the configuration (:meth:`Config.for_service`), all of
    them on one pacer whose plan counts every service's checks, so fifty services from one
    vantage point are spread over the round like fifty vantage points; the result holds one
    :class:`VantageRound` per (service, vantage point), services in configuration order."""
    names = list(vantage_points) if vantage_points is not None else list(config.vantage_points)
    unknown = [n for n in names if n not in config.vantage_points]
    if unknown:
        raise UnknownVantagePoint(f"unknown vantage point(s): {', '.join(unknown)}")
    missing = [s for s in services or () if s not in config.service_names]
    if missing:
        raise UnknownService(f"unknown service(s): {', '.join(missing)} "
                             f"(configured: {', '.join(config.service_names)})")
    views = config.service_views(services or None)
    checks = len(names) * sum(planned_checks(view) for _, view in views)
    contexts: list[RoundContext] = []
    counts: dict[tuple[str, str], tuple[int, int]] = {}  # (service, vantage) → done, planned
    for service, view in views:
        context = RoundContext.build(view, ip_ranges=ip_ranges,
                                     progress=_progress_of(service, progress, counts,
                                                           len(views)),
                                     vantage_points=len(names), lag_sources=lag_sources,
                                     checks=checks)
        if contexts:  # one pacer and plan for the whole round
            context = dataclasses.replace(context, pacer=contexts[0].pacer, plan=contexts[0].plan)
        contexts.append(dataclasses.replace(context, paths=paths or context.paths,
                                            disturbed_s=disturbed_s))
    plan = contexts[0].plan
    if plan is not None and not plan.fits:
        log.warning("round cannot fit its deadline: %d checks at least %.1f ms apart take "
                    "%.1f s of a %.1f s deadline; expect unmeasured cells (fewer samples, "
                    "regions, services or vantage points per round, or a longer deadline)",
                    plan.checks, plan.gap_seconds * 1000, plan.planned_seconds,
                    plan.deadline_seconds)
    lag = shared_lag_monitor()
    lag.acquire()
    try:
        started_wall = time.time()
        started = time.perf_counter()
        rounds = await asyncio.gather(*(
            _service_vantage(context, service, name)
            for (service, _), context in zip(views, contexts, strict=True) for name in names))
    finally:
        lag.release()
    return RoundResult(tuple(rounds), started_wall, time.perf_counter() - started, plan)


async def _service_vantage(context: RoundContext, service: str, name: str) -> VantageRound:
    result = await run_vantage(context, name)
    return result if result.service == service else dataclasses.replace(result, service=service)


def _progress_of(service: str, progress: Progress | None,
                 counts: dict[tuple[str, str], tuple[int, int]],
                 services: int) -> Progress | None:
    """Progress of one service's checks; with several services, a vantage point's progress is
    the sum over them in ``counts`` (one bar per vantage point)."""
    if progress is None or services == 1:
        return progress

    def report(vantage: str, done: int, planned: int) -> None:
        counts[(service, vantage)] = (done, planned)
        mine = [v for (_, name), v in counts.items() if name == vantage]
        progress(vantage, sum(d for d, _ in mine), max(planned * services,
                                                        sum(p for _, p in mine)))

    return report


async def run_vantage(context: RoundContext, name: str) -> VantageRound:
    """One vantage point's round, bounded by the round deadline."""
    config = context.config
    vantage = config.vantage_points[name]
    loop = asyncio.get_running_loop()
    started_loop = loop.time()
    deadline = started_loop + config.probe.round_deadline_s
    started_wall = time.time()
    started = time.perf_counter()
    evidence = {family: VantageEvidence(family=family) for family in context.families}
    planned = planned_checks(config, context.paths)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if context.progress is not None:
            context.progress(name, done, planned)

    tasks = {asyncio.create_task(spec.measure(context, vantage, found, tick)): family
             for family, found in evidence.items() for spec in context.enabled_paths(family)}
    tasks.update({asyncio.create_task(_baseline(context, name, found, tick)): family
                  for family, found in evidence.items()})
    done_tasks, pending = await asyncio.wait(list(tasks),
                                             timeout=max(0.0, deadline - loop.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await asyncio.gather(*(source.collect() for source in context.lag_sources))
    loop_lag = max_stall(context.lag_sources[:1], started_loop, loop.time())
    crashes = []
    for task in done_tasks:
        if (exc := task.exception()) is not None:  # a bug, not a measurement: keep the rest
            log.error("%s: measurement crashed", name, exc_info=exc)
            family = tasks[task]
            where = "" if family is context.families[0] else f"{family}: "
            crashes.append(ErrorRecord("round", Reason.INTERNAL_ERROR,
                                       f"{where}{type(exc).__name__}: {exc}"))
    try:
        result = judge_families(context, name, evidence, started_wall,
                                time.perf_counter() - started, timed_out=bool(pending))
    except Exception as exc:  # a bug outside the path judges: this vantage point's round only
        log.error("%s: judging crashed", name, exc_info=exc)
        result = VantageRound(name, started_wall, time.perf_counter() - started, (), (),
                              (ErrorRecord("round", Reason.INTERNAL_ERROR,
                                           f"judging crashed: {type(exc).__name__}"),),
                              success=False)
    result = dataclasses.replace(result, loop_lag_seconds=loop_lag)
    if crashes:
        result = dataclasses.replace(result, errors=(*result.errors, *crashes), success=False)
    return result


def _spans_key(vantage_name: str, family: IpFamily) -> str:
    return vantage_name if family is IpFamily.IPV4 else f"{vantage_name} {family}"


def family_addresses(config: Config, family: IpFamily) -> dict[str, list[str]]:
    """Each region's configured addresses of ``family``; in the first family, a region written
    with none of it is measured at its addresses as written (as before families existed)."""
    first = family is config.probe.families[0]
    found = {}
    for region, settings in config.regions.items():
        own = [a for a in settings.addresses if IpFamily.of(a) is family]
        found[region] = own or (list(settings.addresses) if first else [])
    return found


async def _baseline(context: RoundContext, vantage_name: str, evidence: VantageEvidence,
                    tick: Tick) -> None:
    vantage = context.config.vantage_points[vantage_name]
    config = context.config
    family = evidence.family
    addresses = family_addresses(config, family)
    named = [(r, s.alb_name) for r, s in config.regions.items() if not s.addresses and s.alb_name]
    if named:
        answers = await asyncio.gather(*(
            probe_dns(dns_query(config, vantage, alb, family=family))
            for _, alb in named))
        for (region, _), answer in zip(named, answers, strict=True):
            evidence.alb_answers[region] = answer
            addresses[region] = list(answer.addresses)
    planned = family is config.probe.families[0] or not named  # see planned_checks
    await measure_baseline(config, {r: a for r, a in addresses.items() if a or planned},
                           local_address=vantage.local_address(family),
                           ssl_context=context.ssl_context, pacer=context.pacer,
                           into=evidence.baseline,
                           spans=context.spans.setdefault(_spans_key(vantage_name, family), {}),
                           on_sample=tick if planned else None)


# --- judging -------------------------------------------------------------------------------------


def region_directory(context: RoundContext, *evidence: VantageEvidence) -> RegionDirectory:
    """Which addresses are whose: the configured ones and every family's ALB answers."""
    config = context.config
    alb: dict[str, frozenset[str]] = {}
    for region, settings in config.regions.items():
        resolved = [a for found in evidence if (answer := found.alb_answers.get(region))
                    for a in answer.addresses]
        alb[region] = frozenset(settings.addresses) | frozenset(resolved)
    return RegionDirectory(frozenset(config.regions), alb, context.ip_ranges)


def has_addresses(config: Config, evidence: VantageEvidence) -> bool:
    """Whether a family has anything to measure: an answer in it (the origin name, the CDN name,
    a region's ALB name), or a region written with an address of it."""
    family = evidence.family
    answers = [evidence.recursive, evidence.authoritative, *evidence.alb_answers.values(),
               evidence.cdn.dns if evidence.cdn is not None else None]
    return (any(answer is not None and answer.addresses for answer in answers)
            or bool(_written(config, family)))


def judge_families(context: RoundContext, name: str, evidence: Mapping[IpFamily, VantageEvidence],
                   started_wall: float, duration: float, *, timed_out: bool) -> VantageRound:
    """Judge each address family on its own (no I/O): the first always, the others where they
    have addresses. One round's rows and paths, each carrying its family; the round succeeds
    only when every family's paths were judged."""
    first, *others = evidence.values()
    directory = region_directory(context, *evidence.values())
    stalls = StallIndex(context.lag_sources)
    result = judge_vantage(context, name, first, started_wall, duration, timed_out=timed_out,
                           directory=directory, stalls=stalls)
    for found in others:
        if not has_addresses(context.config, found):
            continue  # a family with no address anywhere: no results, not a failure
        more = judge_vantage(context, name, found, started_wall, duration, timed_out=timed_out,
                             directory=directory, stalls=stalls)
        paths = tuple(p for p in more.paths if not _not_published(p))
        if not paths and not more.regions:
            continue
        result = dataclasses.replace(
            result, regions=(*result.regions, *more.regions), paths=(*result.paths, *paths),
            errors=(*result.errors, *(dataclasses.replace(e, message=f"{found.family}: "
                                                          f"{e.message}")
                                      for e in more.errors
                                      if e.reason is not Reason.DNS_NO_ANSWER)),
            success=result.success and not timed_out and all(
                p.verdict.state is not RoutingState.UNKNOWN for p in paths))
    return result


def judge_vantage(context: RoundContext, name: str, evidence: VantageEvidence,
                  started_wall: float, duration: float, *, timed_out: bool,
                  directory: RegionDirectory, stalls: StallIndex) -> VantageRound:
    """Turn one vantage point's evidence of one address family into verdicts (no I/O): the
    regions with an address of that family (every region in the first family), each path
    measured in it."""
    config = context.config
    vantage = config.vantage_points[name]
    family = evidence.family
    spans = context.spans.get(_spans_key(name, family), {})
    addressed = _addressed(config, evidence)
    measured = [region for region in config.regions
                if family is config.probe.families[0] or evidence.baseline.get(region)
                or region in addressed]
    trusts = {region: Trust.of(spans.get(region, ()), stalls, context.disturbed_s)
              for region in measured}
    regions = tuple(dataclasses.replace(row, family=family) for row in summarise_row(
        evidence.baseline, config, finished=not timed_out, trusts=trusts, regions=measured))

    def judged(rows: tuple[RegionLatency, ...]) -> list[Judgement]:
        inputs = PathInputs(config, name, vantage, evidence, rows, directory,
                            context.nominal[name])
        return [dataclasses.replace(j, result=dataclasses.replace(j.result, family=family))
                for spec in context.enabled_paths(family)
                if (j := _judge_guarded(spec, inputs)) is not None]

    if any(r.reason is Reason.MEASUREMENT_DISTURBED for r in regions):
        # judged twice: disturbed regions as read, and as fast as their disturbance allows
        judgements = judged(_bounded(regions, evidence, config, trusts, lower=False))
        floor = judged(_bounded(regions, evidence, config, trusts, lower=True))
        paths = tuple(j.result if _same_verdict(j.result, f.result) else distrust(
            (j.result,), regions)[0] for j, f in zip(judgements, floor, strict=True))
    else:
        judgements = judged(regions)
        paths = tuple(j.result for j in judgements)
    errors = [error for j in judgements for error in j.errors]
    errors.extend(ErrorRecord("baseline", region.reason, f"{region.region}: {region.message}")
                  for region in regions if not region.healthy and region.reason)
    success = not timed_out and all(p.verdict.state != RoutingState.UNKNOWN for p in paths)
    return VantageRound(name, started_wall, duration, regions, paths, tuple(errors),
                        DnsLookups(_dns_lookup(evidence.recursive),
                                   _dns_lookup(evidence.authoritative)),
                        success)


def _not_published(path: PathResult) -> bool:
    """A path whose name has no record of a further family (NODATA): the app does not offer
    that path in that family, which is a choice, not a routing problem; it gives no result."""
    return (path.verdict.state is RoutingState.UNKNOWN
            and path.verdict.reason is Reason.DNS_NO_ANSWER)


def _addressed(config: Config, evidence: VantageEvidence) -> set[str]:
    """Regions with an address of the evidence's family, configured or answered for its ALB."""
    found = _written(config, evidence.family)
    found.update(region for region, answer in evidence.alb_answers.items() if answer.addresses)
    return found


def _written(config: Config, family: IpFamily) -> set[str]:
    """The regions the configuration writes with an address of ``family``."""
    return {region for region, settings in config.regions.items()
            if any(IpFamily.of(a) is family for a in settings.addresses)}


def _bounded(regions: tuple[RegionLatency, ...], evidence: VantageEvidence, config: Config,
             trusts: dict[str, Trust], *, lower: bool) -> tuple[RegionLatency, ...]:
    """The latency matrix with each disturbed region's samples used after all: as read (an upper
    bound: a stall only adds time) or less their disturbance (a lower bound)."""
    rows = []
    for row in regions:
        if row.reason is not Reason.MEASUREMENT_DISTURBED:
            rows.append(row)
            continue
        trust = trusts[row.region]
        values = [value - (trust.disturbance_s[i] if lower and i < len(trust.disturbance_s)
                           else 0.0)
                  for i, sample in enumerate(evidence.baseline.get(row.region, []))
                  if sample_ok(sample)
                  and (value := sample_estimate(sample, row.estimator or config.probe.estimator))
                  is not None]
        rows.append(dataclasses.replace(row, latency_seconds=min(values) if values else None,
                                        samples_seconds=tuple(values), reason=None,
                                        message=None))
    return tuple(rows)


def _same_verdict(a: PathResult, b: PathResult) -> bool:
    return (a.verdict.state, a.verdict.served_region, a.verdict.expected_region) == (
        b.verdict.state, b.verdict.served_region, b.verdict.expected_region)


def distrust(paths: tuple[PathResult, ...],
             regions: tuple[RegionLatency, ...]) -> tuple[PathResult, ...]:
    """A verdict resting on the latency matrix is not given when a region's timing was disturbed:
    the disturbed region may be the closest one, or not as far as it read (pure)."""
    disturbed = [r.region for r in regions if r.reason is Reason.MEASUREMENT_DISTURBED]
    if not disturbed:
        return paths
    detail = (f"timing of {', '.join(disturbed)} disturbed (the loop or the lab stalled while "
              "its samples were in flight): no verdict on disturbed numbers")
    own_reason = {Reason.NO_HEALTHY_REGION}  # "none measured" is the disturbance's doing too
    return tuple(
        path if (path.verdict.state is RoutingState.UNKNOWN
                 and path.verdict.reason not in own_reason) else dataclasses.replace(
            path, verdict=dataclasses.replace(path.verdict, state=RoutingState.UNKNOWN,
                                              penalty_seconds=None,
                                              reason=Reason.MEASUREMENT_DISTURBED,
                                              detail=detail))
        for path in paths)


def _judge_guarded(spec: PathSpec, inputs: PathInputs) -> Judgement | None:
    """A path's judgement; a judge that crashes (a bug, or evidence nobody foresaw) makes that
    path ``internal_error`` and leaves the other paths and the round alone."""
    try:
        return spec.judge(inputs)
    except Exception as exc:
        log.error("%s: judging the %s path crashed", inputs.vantage_name, spec.path,
                  exc_info=exc)
        message = f"judging crashed: {type(exc).__name__}"
        return Judgement(PathResult(spec.path, judge_unknown(Reason.INTERNAL_ERROR, message)),
                         (ErrorRecord(spec.path.value, Reason.INTERNAL_ERROR, message),))


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
