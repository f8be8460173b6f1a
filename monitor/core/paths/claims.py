"""What each region's app says it is, as measured directly: a region header that another
region's app also sends cannot name the region that answered (on any path of the round)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.core.attribution import header_senders, region_names
from monitor.core.evidence import PathInputs

__all__ = ["baseline_header_claims", "header_disputes"]


def baseline_header_claims(inputs: PathInputs) -> Mapping[str, tuple[str, ...]]:
    """Region → the region names its own address's app sent in the region header (parsed), over
    the baseline samples that got a response."""
    header = inputs.config.service.region_header
    return {region: region_names(value for sample in samples if sample.status is not None
                                 for value in sample.header_list(header))
            for region, samples in inputs.evidence.baseline.items()}


def header_disputes(inputs: PathInputs, header_regions: Sequence[str]) -> tuple[str, ...]:
    """Why a region header seen on a path cannot be trusted: for each region it names, the other
    regions whose app sends that same name (one line each; empty when none does)."""
    senders = header_senders(baseline_header_claims(inputs))
    header = inputs.config.service.region_header
    disputes = []
    for claimed in region_names(header_regions):
        others = sorted(senders.get(claimed, frozenset()) - {claimed})
        if others:
            disputes.append(f"{header} {claimed} is also what {', '.join(others)} sends "
                            f"(measured directly), so it cannot name the region")
    return tuple(disputes)
