"""The baseline: every region measured directly from one vantage point.

Each region is reached at its own ALB address with Host/SNI set to the origin name and the
certificate verified against it; ``samples`` fresh-connection requests per region, all regions
concurrently, starts paced. The row says which region is actually closest from here.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from monitor.config import Config, Estimator, address_policy
from monitor.core.evidence import BaselineSamples
from monitor.core.model import EstimatorReason, RegionLatency, TlsInfo
from monitor.core.paths.http_status import status_ok, status_problem
from monitor.core.verdict import estimate_latency
from monitor.domain.reasons import Reason, reason_of
from monitor.round.lag import DISTURBED_S, MIN_CLEAN_SAMPLES, Span, StallIndex
from monitor.round.pacing import Pacer
from probes.http import PHASES, HttpEvidence, HttpTarget, probe_http
from probes.records import record

__all__ = ["LOCAL_CONNECT_FRACTION", "LOCAL_CONNECT_GAP_S", "BaselineSamples", "SampleSpans",
           "Trust", "app_time", "auto_estimators", "connect_is_local", "connects_flat",
           "measure_baseline",
           "sample_estimate", "summarise_region", "summarise_row"]

SampleSpans = dict[str, list[Span]]
"""Region → each baseline sample's timed phase as a span of loop time, in sample order."""


@record
class Trust:
    """How far a region's samples can be trusted: each sample's disturbance (seconds of its span
    the loop or the lab stalled), in the order of its samples."""

    disturbance_s: tuple[float, ...] = ()
    threshold_s: float = DISTURBED_S  # more than this and a sample is not used

    @classmethod
    def of(cls, spans: Sequence[Span], stalls: StallIndex,
           threshold_s: float = DISTURBED_S) -> Trust:
        return cls(tuple(stalls.disturbance(span) for span in spans), threshold_s)

    def clean(self, index: int) -> bool:
        return index >= len(self.disturbance_s) or self.disturbance_s[index] <= self.threshold_s

    @property
    def disturbed(self) -> int:
        return sum(1 for d in self.disturbance_s if d > self.threshold_s)

def sample_estimate(evidence: HttpEvidence, estimator: Estimator) -> float | None:
    """One sample's round trip by the estimator: the handshake divided by the round trips its
    TLS version costs (never silently two round trips read as one), the first byte, or TCP
    connect; None when the sample lacks it."""
    match estimator:
        case Estimator.HANDSHAKE:
            return evidence.handshake_rtt_seconds
        case Estimator.FIRST_BYTE:
            return evidence.first_byte_seconds
        case Estimator.CONNECT:
            return evidence.phases.get("connect")
        case Estimator.AUTO:  # decided per row from the samples (auto_estimators), not here
            return None


LOCAL_CONNECT_GAP_S = 0.005
"""A connect this much below the handshake's round trip (and below half of it) was not answered
by the server: a real server's handshake adds only its crypto (1–3 ms measured, more on a busy
machine) to the round trip its SYN-ACK already paid."""
LOCAL_CONNECT_FRACTION = 0.5


def connect_is_local(samples: Sequence[HttpEvidence]) -> bool | None:
    """Whether the TCP connect was answered by something near rather than by the server (a
    transparent proxy, a middlebox, the loopback lab's delay proxy): it reads far below the
    handshake's round trip, by the minimums and in at least half the samples — on a real path a
    held SYN-ACK cannot come back early, so a connect is never below the round trip, while a busy
    machine can only add time to either. None when no sample measured both."""
    pairs = [(connect, handshake) for s in samples
             if (connect := s.phases.get("connect")) is not None
             and (handshake := s.handshake_rtt_seconds) is not None]
    if not pairs:
        return None

    def local(connect: float, handshake: float) -> bool:
        return handshake - connect > max(LOCAL_CONNECT_GAP_S, LOCAL_CONNECT_FRACTION * handshake)

    lowest = local(min(c for c, _ in pairs), min(h for _, h in pairs))
    return lowest and 2 * sum(local(c, h) for c, h in pairs) >= len(pairs)


def connects_flat(samples: Mapping[str, Sequence[HttpEvidence]]) -> bool:
    """Whether two or more regions all answered their connects within
    :data:`LOCAL_CONNECT_GAP_S` (by their minimums): distinct regions cannot all be that near one
    vantage point, something near answers them all — a proxy that also terminates TLS, whose
    handshakes are as quick as its connects, so :func:`connect_is_local` cannot see it."""
    lowest = [min(connects) for found in samples.values()
              if (connects := [c for s in found if (c := s.phases.get("connect")) is not None])]
    return len(lowest) >= 2 and max(lowest) < LOCAL_CONNECT_GAP_S


def auto_estimators(samples: Mapping[str, Sequence[HttpEvidence]]) -> dict[
        str, tuple[Estimator, EstimatorReason]]:
    """The ``auto`` estimator of each region of one vantage point's row, and why: ``connect``
    when every region that could tell answered its connect at the server; ``first_byte`` for
    the whole row when any region's connect was answered locally, or every region's connect
    was near (:func:`connects_flat`) — so the regions compare alike: a connect beside a first
    byte would charge one region its app's time — or none could tell."""
    local = {region: connect_is_local(found) for region, found in samples.items()}
    if not any(v is not None for v in local.values()):
        return {region: (Estimator.FIRST_BYTE, "connect_unverified") for region in samples}
    if any(local.values()):
        return {region: (Estimator.FIRST_BYTE, "connect_local" if local[region]
                         else "row_connect_local") for region in samples}
    if connects_flat(samples):
        return {region: (Estimator.FIRST_BYTE, "connects_flat") for region in samples}
    return {region: (Estimator.CONNECT, "connect_at_server") for region in samples}


def app_time(samples: Sequence[HttpEvidence]) -> float | None:
    """What the app adds to a round trip, at least: the smallest first byte minus handshake
    round trip of any sample, less the spread of the handshake round trips. A slow app adds its
    time to every sample alike; a busy machine adds time to some samples and not others, and the
    spread it leaves takes back what it could have faked (None: nothing measured both)."""
    pairs = [(s.first_byte_seconds, s.handshake_rtt_seconds) for s in samples]
    measured = [(fb, hs) for fb, hs in pairs if fb is not None and hs is not None]
    if not measured:
        return None
    spread = max(hs for _, hs in measured) - min(hs for _, hs in measured)
    return max(0.0, min(fb - hs for fb, hs in measured) - spread)


_TIMED_PHASES = {Estimator.HANDSHAKE: ("tls", "tls"),
                 Estimator.FIRST_BYTE: ("processing", "processing"),
                 Estimator.CONNECT: ("connect", "connect"),
                 Estimator.AUTO: ("connect", "processing")}
"""The phases each estimator reads (first, last): the span measurement trust checks for stalls
(``auto`` reads connect, the handshake to decide, and the first byte)."""


def sample_ok(evidence: HttpEvidence) -> bool:
    """A sample counts when it got a 2xx answer: a redirect, an error page or a 404 means the
    region does not serve the health path as the app contract says."""
    return evidence.error is None and status_ok(evidence.status)


def _answered(samples: Sequence[HttpEvidence],
              trust: Trust) -> tuple[list[HttpEvidence], list[HttpEvidence]]:
    """The samples that got an answer, and those of them taken undisturbed."""
    answered = [(i, s) for i, s in enumerate(samples) if sample_ok(s)]
    return [s for _, s in answered], [s for i, s in answered if trust.clean(i)]


def _usable(samples: Sequence[HttpEvidence], trust: Trust) -> list[HttpEvidence]:
    """The samples ``auto`` decides on: the clean answered ones, else every answered one."""
    answered, clean = _answered(samples, trust)
    return clean or answered


def summarise_row(baseline: Mapping[str, Sequence[HttpEvidence]], config: Config, *,
                  finished: bool = True, trusts: Mapping[str, Trust] | None = None,
                  regions: Sequence[str] | None = None) -> tuple[RegionLatency, ...]:
    """One vantage point's latency-matrix row (pure): each of ``regions`` (default: every
    configured region) summarised (:func:`summarise_region`) by one estimator, ``auto`` decided
    over the whole row."""
    trusts = trusts or {}
    row = list(config.regions) if regions is None else list(regions)
    chosen: Mapping[str, tuple[Estimator, EstimatorReason]] = {}
    if config.probe.estimator is Estimator.AUTO:
        chosen = auto_estimators({region: _usable(baseline.get(region, []),
                                                  trusts.get(region, Trust()))
                                  for region in row})
    return tuple(summarise_region(region, baseline.get(region, []), config, finished=finished,
                                  trust=trusts.get(region, Trust()), chosen=chosen.get(region))
                 for region in row)


def summarise_region(
    region: str, samples: Sequence[HttpEvidence], config: Config, *, finished: bool = True,
    trust: Trust = Trust(), chosen: tuple[Estimator, EstimatorReason] | None = None,
) -> RegionLatency:
    """One latency-matrix cell from its samples (pure): the estimator's estimate, and beside it
    connect, network distance (handshake), first byte and the app's own time, whatever the
    estimator. Disturbed samples are left out (measurement trust); a region answering with too
    few clean samples is healthy with no latency, ``measurement_disturbed``. ``auto`` is decided
    by ``chosen`` (the row's, :func:`summarise_row`), else on this region's samples alone."""
    if chosen is None and config.probe.estimator is Estimator.AUTO:
        chosen = auto_estimators({region: _usable(samples, trust)})[region]
    estimator, why = chosen or (config.probe.estimator, "configured")
    answered, clean = _answered(samples, trust)
    good = [value for s in clean if (value := sample_estimate(s, estimator)) is not None]
    tls = TlsInfo.summary(s.tls for s in samples)
    disturbed = trust.disturbed
    if answered and len(clean) < MIN_CLEAN_SAMPLES:
        worst = max(trust.disturbance_s, default=0.0)
        return RegionLatency(region, None, True, (), Reason.MEASUREMENT_DISTURBED,
                             f"{len(answered) - len(clean)} of {len(answered)} samples taken "
                             f"while the loop or the lab stalled (up to {worst * 1000:.1f} ms)",
                             disturbed_samples=disturbed, estimator=estimator, tls=tls,
                             estimator_reason=why)
    if good:
        handshake = estimate_latency([v for s in clean
                                      if (v := s.handshake_rtt_seconds) is not None])
        first_byte = estimate_latency([v for s in clean
                                       if (v := s.first_byte_seconds) is not None])
        connect = estimate_latency([v for s in clean if (v := s.phases.get("connect"))
                                    is not None])
        return RegionLatency(region, estimate_latency(good), True, tuple(good),
                             estimator=estimator, handshake_seconds=handshake,
                             first_byte_seconds=first_byte, app_seconds=app_time(clean),
                             tls=tls, disturbed_samples=disturbed, connect_seconds=connect,
                             estimator_reason=why)
    failures = [s for s in samples if not sample_ok(s)]
    if not failures:
        reason, message = (Reason.DEADLINE, "no sample finished before the round deadline")
        if finished:
            reason, message = (Reason.NO_SAMPLES, "no sample was taken")
        if answered:  # answered, but none measured what the estimator needs
            reason, message = (Reason.NO_SAMPLES, f"no sample has a {estimator} estimate")
        return RegionLatency(region, None, False, (), reason, message, estimator, tls=tls,
                             estimator_reason=why)
    reasons = Counter(_failure_reason(s) for s in failures)
    reason = reasons.most_common(1)[0][0]
    example = next(s for s in failures if _failure_reason(s) == reason)
    return RegionLatency(region, None, False, (), reason, _failure_message(example), estimator,
                         tls=tls, estimator_reason=why)


def _failure_reason(evidence: HttpEvidence) -> Reason:
    if evidence.error is not None:
        return reason_of(evidence.error.reason)
    return Reason.HTTP_STATUS


def _failure_message(evidence: HttpEvidence) -> str:
    if evidence.error is not None:
        return str(evidence.error)
    return f"{status_problem(evidence)} from {evidence.target.url}"


def phase_span(evidence: HttpEvidence, phases: tuple[str, str], start: float,
               end: float) -> Span:
    """The loop time of a sample's timed phases (first, last): the phases run in order from the
    probe's start (monotonic seconds, the loop's clock), so the last ends where the phases up to
    it add up to (never after the probe returned), and the first began its own time before the
    phases between them."""
    first, last = phases
    elapsed = 0.0
    span = 0.0
    counting = False
    for name in PHASES:
        counting = counting or name == first
        elapsed += evidence.phases.get(name, 0.0)
        span += evidence.phases.get(name, 0.0) if counting else 0.0
        if name == last:
            break
    phase_end = min(end, start + elapsed)
    return Span(phase_end - span, phase_end)


async def measure_baseline(
    config: Config,
    region_addresses: Mapping[str, Sequence[str]],
    *,
    local_address: str | None,
    ssl_context: ssl.SSLContext,
    pacer: Pacer,
    into: BaselineSamples,
    spans: SampleSpans | None = None,
    on_sample: Callable[[], None] | None = None,
) -> None:
    """Take every sample, appending each to ``into[region]`` (and its span of loop time to
    ``spans[region]``) as it lands, so a deadline keeps what was measured."""
    probe = config.probe
    service = config.service
    policy = address_policy(config)  # an ALB name's answer is a DNS answer like any other
    phase = _TIMED_PHASES[probe.estimator]

    async def one(region: str, address: str) -> None:
        async with pacer.check():
            await sample(region, address)

    async def sample(region: str, address: str) -> None:
        target = HttpTarget(
            host=service.origin_name,
            address=address,
            port=config.regions[region].port or service.port,
            path=service.health_path,
            local_address=local_address,
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        evidence = await probe_http(
            target,
            ssl_context=ssl_context,
            connect_timeout_s=probe.connect_timeout_s,
            request_timeout_s=probe.request_timeout_s,
            body_limit_bytes=probe.body_limit_bytes,
            address_policy=policy,
        )
        into.setdefault(region, []).append(evidence)
        if spans is not None:
            spans.setdefault(region, []).append(phase_span(evidence, phase, start, loop.time()))
        if on_sample is not None:
            on_sample()

    async with asyncio.TaskGroup() as group:
        # interleave regions so each region's samples are spread over the round
        for index in range(probe.samples):
            for region, addresses in region_addresses.items():
                if addresses:
                    group.create_task(one(region, addresses[index % len(addresses)]))
