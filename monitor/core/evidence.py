"""Evidence of one vantage point's round, as gathered, and what every path measures and judges.

A path's ``measure`` coroutine fills its part of :class:`VantageEvidence` (through a
:class:`MeasureContext`, which the round provides); its judge is a pure function of
:class:`PathInputs` returning a :class:`Judgement`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.config import Config, VantagePoint
from monitor.core.attribution import RegionDirectory
from monitor.core.model import ErrorRecord, IpFamily, PathResult, RegionLatency, latency_of
from probes.cdn import CdnEvidence
from probes.dns import DnsEvidence
from probes.http import HttpEvidence
from probes.records import record

__all__ = [
    "BaselineSamples",
    "Judgement",
    "Measure",
    "MeasureContext",
    "PathInputs",
    "Tick",
    "VantageEvidence",
]

BaselineSamples = dict[str, list[HttpEvidence]]
"""Region → the baseline samples taken so far (filled in as they land)."""

Tick = Callable[[], None]
"""Called once per planned check as it completes (progress)."""


class MeasureContext(Protocol):
    """What a path's measurement may use from the round: the configuration, the one shared TLS
    context, and a paced start slot (bursts distort timings)."""

    @property
    def config(self) -> Config: ...

    @property
    def ssl_context(self) -> ssl.SSLContext: ...

    async def slot(self) -> None: ...


@dataclass
class VantageEvidence:
    """Filled in as measurements land, so a deadline keeps everything already measured; one per
    address family (``family``: which records are resolved and which addresses requested)."""

    family: IpFamily = IpFamily.IPV4
    recursive: DnsEvidence | None = None
    authoritative: DnsEvidence | None = None
    alb_answers: dict[str, DnsEvidence] = field(default_factory=dict)
    baseline: BaselineSamples = field(default_factory=dict)
    origin: HttpEvidence | None = None
    cdn: CdnEvidence | None = None
    recursive_done: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the recursive lookup has an answer (the origin request goes where it points)."""


Measure = Callable[[MeasureContext, VantagePoint, VantageEvidence, Tick],
                   Coroutine[Any, Any, None]]
"""A path's measurement: fills its part of the evidence, calls ``tick`` once per planned check."""


@record
class PathInputs:
    """Everything a path judge may read; judges are pure functions of this."""

    config: Config
    vantage_name: str
    vantage: VantagePoint
    evidence: VantageEvidence
    regions: tuple[RegionLatency, ...]
    directory: RegionDirectory
    nominal_closest: str | None

    def region_latency(self, region: str | None) -> float | None:
        return latency_of(self.regions, region)


@record
class Judgement:
    """A judge's answer: the path's result and the probe errors it found on the way."""

    result: PathResult
    errors: tuple[ErrorRecord, ...] = ()
