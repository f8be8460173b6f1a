"""The metric documentation (docs/metrics.md) generated from the catalogue."""

from __future__ import annotations

from monitor.domain.reasons import Reason
from monitor.metrics.catalogue import (
    CDN_UPSTREAM_PHASES,
    DNS_RESOLVERS,
    HTTP_PHASES,
    MAX_POP_SERIES,
    METRICS,
    TLS_VERSIONS,
)
from monitor.metrics.samples import CDN_REQUESTS

__all__ = ["LABELS", "metrics_table_markdown"]

LABELS: dict[str, str] = {
    "probe": "vantage point name from the configuration",
    "path": "dns, origin or cdn (errors also: baseline, round, other; TLS metrics also: "
            "baseline)",
    "region": "a configured region, or other",
    "state": "ok, failover, misrouted, unknown",
    "phase": "http: " + ", ".join(HTTP_PHASES) + "; cdn: " + ", ".join(CDN_UPSTREAM_PHASES),
    "resolver": ", ".join(DNS_RESOLVERS),
    "request": ", ".join(CDN_REQUESTS),
    "pop": f"a CloudFront POP code such as FRA56-P1 whose airport is known (at most "
           f"{MAX_POP_SERIES} per process), or other",
    "reason": "a reason of docs/runbook.md#reasons: " + ", ".join(r.value for r in Reason),
    "family": "ipv4, ipv6 (the address family a path or region was measured over)",
    "version": "build_info: routewatch's version (monitor.__version__); tls_version_info: "
               + ", ".join(TLS_VERSIONS) + " or other",
}
"""Every label and the values it can take (docs/metrics.md)."""


def metrics_table_markdown() -> str:
    """The metric table of docs/metrics.md, generated from :data:`METRICS`."""
    lines = ["| metric | type | unit | labels | meaning |", "| --- | --- | --- | --- | --- |"]
    for spec in METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "—"
        lines.append(f"| `{spec.name}` | {spec.type} | {spec.unit} | {labels} | {spec.help} |")
    return "\n".join(lines) + "\n"
