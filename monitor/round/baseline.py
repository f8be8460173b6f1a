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

from monitor.config import Config
from monitor.core.evidence import BaselineSamples
from monitor.core.model import RegionLatency
from monitor.core.verdict import estimate_latency, phase_for
from monitor.domain.reasons import Reason, reason_of
from monitor.round.pacing import Pacer
from probes.http import HttpEvidence, HttpTarget, probe_http

__all__ = ["BaselineSamples", "measure_baseline", "summarise_region"]

def sample_ok(evidence: HttpEvidence) -> bool:
    return evidence.error is None and evidence.status is not None and evidence.status < 500


def summarise_region(
    region: str, samples: Sequence[HttpEvidence], config: Config, *, finished: bool = True
) -> RegionLatency:
    """One latency-matrix cell from its samples (pure)."""
    phase = phase_for(config.probe.estimator)
    good = [s.phases[phase] for s in samples if sample_ok(s) and phase in s.phases]
    if good:
        return RegionLatency(region, estimate_latency(good), True, tuple(good))
    failures = [s for s in samples if not sample_ok(s)]
    if not failures:
        reason, message = (Reason.DEADLINE, "no sample finished before the round deadline")
        if finished:
            reason, message = (Reason.NO_SAMPLES, "no sample was taken")
        return RegionLatency(region, None, False, (), reason, message)
    reasons = Counter(_failure_reason(s) for s in failures)
    reason = reasons.most_common(1)[0][0]
    example = next(s for s in failures if _failure_reason(s) == reason)
    return RegionLatency(region, None, False, (), reason, _failure_message(example))


def _failure_reason(evidence: HttpEvidence) -> Reason:
    if evidence.error is not None:
        return reason_of(evidence.error.reason)
    return Reason.HTTP_STATUS


def _failure_message(evidence: HttpEvidence) -> str:
    if evidence.error is not None:
        return str(evidence.error)
    return f"HTTP {evidence.status} from {evidence.target.url}"


async def measure_baseline(
    config: Config,
    region_addresses: Mapping[str, Sequence[str]],
    *,
    local_address: str | None,
    ssl_context: ssl.SSLContext,
    pacer: Pacer,
    into: BaselineSamples,
    on_sample: Callable[[], None] | None = None,
) -> None:
    """Take every sample, appending each to ``into[region]`` as it lands (so a deadline keeps
    what was measured)."""
    probe = config.probe
    service = config.service

    async def one(region: str, address: str) -> None:
        await pacer.slot()
        target = HttpTarget(
            host=service.origin_name,
            address=address,
            port=config.regions[region].port or service.port,
            path=service.health_path,
            local_address=local_address,
        )
        evidence = await probe_http(
            target,
            ssl_context=ssl_context,
            connect_timeout_s=probe.connect_timeout_s,
            request_timeout_s=probe.request_timeout_s,
            body_limit_bytes=probe.body_limit_bytes,
        )
        into.setdefault(region, []).append(evidence)
        if on_sample is not None:
            on_sample()

    async with asyncio.TaskGroup() as group:
        # interleave regions so each region's samples are spread over the round
        for index in range(probe.samples):
            for region, addresses in region_addresses.items():
                if addresses:
                    group.create_task(one(region, addresses[index % len(addresses)]))
