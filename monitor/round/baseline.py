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
from dataclasses import dataclass

from monitor.config import Config, Estimator, address_policy
from monitor.core.evidence import BaselineSamples
from monitor.core.model import RegionLatency, TlsInfo
from monitor.core.paths.http_status import status_ok, status_problem
from monitor.core.verdict import estimate_latency
from monitor.domain.reasons import Reason, reason_of
from monitor.round.lag import DISTURBED_S, MIN_CLEAN_SAMPLES, Span, StallIndex
from monitor.round.pacing import Pacer
from probes.http import PHASES, HttpEvidence, HttpTarget, probe_http

__all__ = ["BaselineSamples", "SampleSpans", "Trust", "app_time", "measure_baseline",
           "sample_estimate", "summarise_region"]

SampleSpans = dict[str, list[Span]]
"""Region → each baseline sample's timed phase as a span of loop time, in sample order."""


@dataclass(frozen=True)
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


_TIMED_PHASE = {Estimator.HANDSHAKE: "tls", Estimator.FIRST_BYTE: "processing",
                Estimator.CONNECT: "connect"}
"""The phase each estimator reads: the span measurement trust checks for stalls."""


def sample_ok(evidence: HttpEvidence) -> bool:
    """A sample counts when it got a 2xx answer: a redirect, an error page or a 404 means the
    region does not serve the health path as the app contract says."""
    return evidence.error is None and status_ok(evidence.status)


def summarise_region(
    region: str, samples: Sequence[HttpEvidence], config: Config, *, finished: bool = True,
    trust: Trust = Trust(),
) -> RegionLatency:
    """One latency-matrix cell from its samples (pure): the estimator's estimate, and beside it
    network distance (handshake), first byte and the app's own time, whatever the estimator.
    Disturbed samples are left out (measurement trust); a region answering with too few clean
    samples is healthy with no latency, ``measurement_disturbed``."""
    estimator = config.probe.estimator
    answered = [(i, s) for i, s in enumerate(samples) if sample_ok(s)]
    clean = [s for i, s in answered if trust.clean(i)]
    good = [value for s in clean if (value := sample_estimate(s, estimator)) is not None]
    tls = TlsInfo.summary(s.tls for s in samples)
    disturbed = trust.disturbed
    if answered and len(clean) < MIN_CLEAN_SAMPLES:
        worst = max(trust.disturbance_s, default=0.0)
        return RegionLatency(region, None, True, (), Reason.MEASUREMENT_DISTURBED,
                             f"{len(answered) - len(clean)} of {len(answered)} samples taken "
                             f"while the loop or the lab stalled (up to {worst * 1000:.1f} ms)",
                             disturbed_samples=disturbed, estimator=estimator, tls=tls)
    if good:
        handshake = estimate_latency([v for s in clean
                                      if (v := s.handshake_rtt_seconds) is not None])
        first_byte = estimate_latency([v for s in clean
                                       if (v := s.first_byte_seconds) is not None])
        return RegionLatency(region, estimate_latency(good), True, tuple(good),
                             estimator=estimator, handshake_seconds=handshake,
                             first_byte_seconds=first_byte, app_seconds=app_time(clean),
                             tls=tls, disturbed_samples=disturbed)
    failures = [s for s in samples if not sample_ok(s)]
    if not failures:
        reason, message = (Reason.DEADLINE, "no sample finished before the round deadline")
        if finished:
            reason, message = (Reason.NO_SAMPLES, "no sample was taken")
        if answered:  # answered, but none measured what the estimator needs
            reason, message = (Reason.NO_SAMPLES, f"no sample has a {estimator} estimate")
        return RegionLatency(region, None, False, (), reason, message, estimator, tls=tls)
    reasons = Counter(_failure_reason(s) for s in failures)
    reason = reasons.most_common(1)[0][0]
    example = next(s for s in failures if _failure_reason(s) == reason)
    return RegionLatency(region, None, False, (), reason, _failure_message(example), estimator,
                         tls=tls)


def _failure_reason(evidence: HttpEvidence) -> Reason:
    if evidence.error is not None:
        return reason_of(evidence.error.reason)
    return Reason.HTTP_STATUS


def _failure_message(evidence: HttpEvidence) -> str:
    if evidence.error is not None:
        return str(evidence.error)
    return f"{status_problem(evidence)} from {evidence.target.url}"


def phase_span(evidence: HttpEvidence, phase: str, start: float, end: float) -> Span:
    """The loop time of a sample's timed ``phase``: the phases run in order from the probe's
    start (monotonic seconds, the loop's clock), so the phase ends where the phases up to it add
    up to (never after the probe returned)."""
    elapsed = 0.0
    for name in PHASES:
        elapsed += evidence.phases.get(name, 0.0)
        if name == phase:
            break
    phase_end = min(end, start + elapsed)
    return Span(phase_end - evidence.phases.get(phase, 0.0), phase_end)


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
    phase = _TIMED_PHASE[probe.estimator]

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
