"""What routewatch exports, by job: the metric catalogue (:mod:`.catalogue`), snapshots and
their store (:mod:`.snapshot`), the samples a snapshot exports (:mod:`.samples`) and the
documentation generated from the catalogue (:mod:`.docs`, ``python -m monitor.metrics``).

The Prometheus collector (:mod:`monitor.exporters.prometheus`) and the CloudWatch exporter build
on :data:`METRICS` and :func:`vantage_samples`; ``docs/metrics.md`` documents the same table and a
test keeps the two in step.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from monitor.metrics.catalogue import (
    BASELINE,
    CDN_UPSTREAM_PHASES,
    DNS_RESOLVERS,
    ERROR_PATHS,
    HTTP_PATHS,
    HTTP_PHASES,
    METRICS,
    OTHER,
    PREFIX,
    TLS_VERSIONS,
    MetricSpec,
    MetricType,
    bounded_pop,
    bounded_reason,
    bounded_region,
    bounded_tls_version,
    metric,
)

if TYPE_CHECKING:
    from monitor.metrics.docs import LABELS, metrics_table_markdown
    from monitor.metrics.samples import CDN_REQUESTS, Sample, snapshot_samples, vantage_samples
    from monitor.metrics.snapshot import (
        LabelSpace,
        Snapshot,
        SnapshotStore,
        VantageSnapshot,
        observed_states,
        path_verdict,
    )

# Imported on first use: the Lambda handler needs only the catalogue (its EMF names and bounded
# labels), not the snapshots, samples and docs serve and the docs build use.
_LAZY = {
    **dict.fromkeys(("LABELS", "metrics_table_markdown"), "monitor.metrics.docs"),
    **dict.fromkeys(("CDN_REQUESTS", "Sample", "snapshot_samples", "vantage_samples"),
                    "monitor.metrics.samples"),
    **dict.fromkeys(("LabelSpace", "Snapshot", "SnapshotStore", "VantageSnapshot",
                     "observed_states", "path_verdict"), "monitor.metrics.snapshot"),
}


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "BASELINE",
    "CDN_REQUESTS",
    "CDN_UPSTREAM_PHASES",
    "DNS_RESOLVERS",
    "ERROR_PATHS",
    "HTTP_PATHS",
    "HTTP_PHASES",
    "LABELS",
    "METRICS",
    "OTHER",
    "PREFIX",
    "TLS_VERSIONS",
    "LabelSpace",
    "MetricSpec",
    "MetricType",
    "Sample",
    "Snapshot",
    "SnapshotStore",
    "VantageSnapshot",
    "bounded_pop",
    "bounded_reason",
    "bounded_region",
    "bounded_tls_version",
    "metric",
    "metrics_table_markdown",
    "observed_states",
    "path_verdict",
    "snapshot_samples",
    "vantage_samples",
]
