"""Fan-out of every published round to the exporters beside Prometheus (e.g. CloudWatch)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from monitor.core.model import VantageRound

__all__ = ["RoundExporter", "export_round"]

log = logging.getLogger(__name__)

RoundExporter = Callable[[VantageRound], object]
"""Called with every published round (e.g. CloudWatch PutMetricData); must not block."""


def export_round(exporters: Sequence[RoundExporter], result: VantageRound) -> None:
    """Hand the round to every exporter; one failing exporter stops neither rounds nor others."""
    for export in exporters:
        try:
            export(result)
        except Exception:  # an exporter's failure must not stop rounds or other exporters
            log.exception("%s: exporter %r failed", result.vantage, export)
