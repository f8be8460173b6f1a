"""Exporters: where round results go, one module each (metric definitions: :mod:`monitor.metrics`).

``prometheus`` — a scrape endpoint over the latest snapshot (``routewatch serve``).
``cloudwatch`` — EMF on stdout (Lambda) and PutMetricData (long-running).
"""

from __future__ import annotations

EXPORTERS: dict[str, str] = {
    "prometheus": "monitor.exporters.prometheus",
    "cloudwatch": "monitor.exporters.cloudwatch",
}
"""Exporter name → module, so a new exporter is one new file plus one entry here."""

__all__ = ["EXPORTERS"]
