"""Evidence of one vantage point's round, as gathered, and what every path judge reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.config import Config, VantagePoint
from monitor.core.attribution import RegionDirectory
from monitor.core.model import ErrorRecord, RegionLatency, latency_of
from probes.cdn import CdnEvidence
from probes.dns import DnsEvidence
from probes.http import HttpEvidence

__all__ = ["BaselineSamples", "PathInputs", "VantageEvidence"]

BaselineSamples = dict[str, list[HttpEvidence]]
"""Each region's baseline samples, as taken (filled in by the round, read by the judges)."""


@dataclass
class VantageEvidence:
    """Filled in as measurements land, so a deadline keeps everything already measured."""

    recursive: DnsEvidence | None = None
    authoritative: DnsEvidence | None = None
    alb_answers: dict[str, DnsEvidence] = field(default_factory=dict)
    baseline: BaselineSamples = field(default_factory=dict)
    origin: HttpEvidence | None = None
    cdn: CdnEvidence | None = None


@dataclass(frozen=True)
class PathInputs:
    """Everything a path judge may read; judges are pure functions of this."""

    config: Config
    vantage_name: str
    vantage: VantagePoint
    evidence: VantageEvidence
    regions: tuple[RegionLatency, ...]
    directory: RegionDirectory
    nominal_closest: str | None
    errors: list[ErrorRecord]  # judges append the probe errors they find

    def region_latency(self, region: str | None) -> float | None:
        return latency_of(self.regions, region)
