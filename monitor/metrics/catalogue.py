"""The metric catalogue: every metric's name, type, unit, labels and meaning, defined once, and
the bounded values its labels may take.

Label values are bounded: ``region`` comes from the configuration (anything else is ``other``),
``state`` from :class:`~monitor.core.model.RoutingState`, ``phase`` and ``resolver`` from fixed
tuples here, ``pop`` must be a CloudFront POP code whose airport is known, and at most
:data:`MAX_POP_SERIES` distinct ones per process (else ``other``), ``reason`` a
:class:`~monitor.domain.reasons.Reason` (else ``other``).
"""

from __future__ import annotations

import re
import threading
from enum import StrEnum

from monitor.core.paths import PATHS
from monitor.domain.geo import airport_location
from monitor.domain.patterns import POP_CODE
from monitor.domain.reasons import reason_of
from probes.records import record

__all__ = [
    "BASELINE",
    "CDN_UPSTREAM_PHASES",
    "DNS_RESOLVERS",
    "ERROR_PATHS",
    "HTTP_PATHS",
    "HTTP_PHASES",
    "MAX_POP_SERIES",
    "METRICS",
    "OTHER",
    "PREFIX",
    "TLS_VERSIONS",
    "MetricSpec",
    "MetricType",
    "bounded_pop",
    "bounded_reason",
    "bounded_region",
    "bounded_tls_version",
    "error_path",
    "metric",
]

PREFIX = "routewatch_"
OTHER = "other"

HTTP_PHASES = ("resolve", "connect", "tls", "processing", "transfer")
"""``phase`` of ``routewatch_http_phase_seconds``: the phases of probes.http, in order."""

HTTP_PATHS = tuple(spec.path for spec in PATHS if spec.http)
"""Paths that are HTTP requests and so have phases."""

CDN_UPSTREAM_PHASES: dict[str, str] = {
    "dns": "cdn-upstream-dns",
    "connect": "cdn-upstream-connect",
    "fbl": "cdn-upstream-fbl",
    "downstream_fbl": "cdn-downstream-fbl",
}
"""``phase`` of ``routewatch_cdn_upstream_seconds`` → the CloudFront ``Server-Timing`` metric."""

DNS_RESOLVERS = ("recursive", "authoritative")
"""``resolver`` of ``routewatch_dns_lookup_seconds``: through the vantage point's resolver, or
directly at the zone's authoritative servers with ECS."""

ERROR_PATHS = ("round", "dns", "baseline", "origin", "cdn")
"""``path`` of ``routewatch_probe_errors_total``: where in the round the error happened."""

BASELINE = "baseline"
"""``path`` of the TLS metrics for a region measured directly."""

TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
"""``version`` of ``routewatch_tls_version_info`` (anything else is ``other``)."""



class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"


@record
class MetricSpec:
    """One metric: ``name`` is the exposed Prometheus name (counters end in ``_total``)."""

    name: str
    type: MetricType
    unit: str
    labels: tuple[str, ...]
    help: str

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"{self.name}: metric names start with {PREFIX}")
        if (self.type is MetricType.COUNTER) != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters and only counters end in _total")


def _gauge(name: str, unit: str, labels: tuple[str, ...], help_text: str) -> MetricSpec:
    return MetricSpec(PREFIX + name, MetricType.GAUGE, unit, labels, help_text)


METRICS: tuple[MetricSpec, ...] = (
    _gauge("round_success", "boolean", ("probe", "service"),
           "1 if the vantage point's latest round finished within its deadline with every path "
           "judged, 0 otherwise."),
    _gauge("round_duration_seconds", "seconds", ("probe", "service"),
           "Wall-clock duration of the vantage point's latest round."),
    _gauge("last_round_timestamp_seconds", "unix seconds", ("probe", "service"),
           "When the vantage point's latest round finished."),
    _gauge("round_interval_seconds", "seconds", ("probe", "service"),
           "Configured interval between the vantage point's rounds (for staleness alerts)."),
    _gauge("loop_lag_seconds", "seconds", ("probe", "service"),
           "The longest event-loop stall while the vantage point's latest round measured; "
           "samples overlapping a stall are left out (reason measurement_disturbed)."),
    MetricSpec(PREFIX + "rounds_total", MetricType.COUNTER, "rounds",
               ("probe", "service"),
               "Rounds finished by the vantage point since routewatch started."),
    _gauge("dns_lookup_seconds", "seconds", ("probe", "service", "resolver"),
           "Duration of the origin name lookup, through the recursive resolver or directly at the "
           "authoritative servers with ECS."),
    _gauge("region_latency_seconds", "seconds", ("probe", "service", "region"),
           "Round trip to the region measured directly (baseline estimator); absent while the "
           "region does not answer."),
    _gauge("region_healthy", "boolean", ("probe", "service", "region"),
           "1 if the region answered the vantage point's baseline, 0 if not."),
    _gauge("path_latency_seconds", "seconds", ("probe", "service", "path"),
           "Time to first byte of the path's request (request sent to first response byte); "
           "absent when the request failed."),
    _gauge("http_phase_seconds", "seconds", ("probe", "service", "path", "phase"),
           "Duration of each phase of the path's HTTP request; 0 for phases that did not happen."),
    _gauge("http_status_code", "status code", ("probe", "service", "path"),
           "HTTP status code of the path's response; absent when no response came."),
    _gauge("path_success", "boolean", ("probe", "service", "path"),
           "1 if the path was measured and judged this round (its state is ok, failover or "
           "misrouted), 0 if it could not be (unknown: failed, timed out, unattributed, "
           "disturbed); blackbox_exporter's probe_success, per path."),
    _gauge("served_region", "boolean", ("probe", "service", "path", "region"),
           "1 for the region that answered on the path this round, 0 for the others (all 0 when "
           "it could not be told)."),
    _gauge("expected_region", "boolean", ("probe", "service", "path", "region"),
           "1 for the region that should have answered (the closest healthy one), 0 for others."),
    _gauge("routing_state", "boolean", ("probe", "service", "path", "state"),
           "1 for the path's stable routing state (after hysteresis), 0 for the other states."),
    _gauge("routing_observed_state", "boolean", ("probe", "service", "path", "state"),
           "1 for the routing state this round's verdict gave, before hysteresis."),
    _gauge("routing_state_streak", "rounds", ("probe", "service", "path"),
           "Consecutive rounds, up to the latest, whose verdict was the latest observed state."),
    _gauge("routing_hysteresis_rounds", "rounds", (),
           "Consecutive rounds that must agree before a routing state flips."),
    _gauge("routing_penalty_seconds", "seconds", ("probe", "service", "path"),
           "How much slower the served region is than the expected one; absent when unknown."),
    _gauge("family_region_latency_seconds", "seconds", ("probe", "service", "family", "region"),
           "Round trip to the region measured directly over one address family (ipv4: its IPv4 "
           "addresses, ipv6: its IPv6 ones); exported only for a vantage point with IPv6 "
           "results, absent while the region does not answer in that family."),
    _gauge("family_path_success", "boolean", ("probe", "service", "path", "family"),
           "routewatch_path_success per address family (ipv4: A answer and IPv4 requests, ipv6: "
           "AAAA and IPv6); exported only for a vantage point with IPv6 results."),
    _gauge("family_routing_observed_state", "boolean",
           ("probe", "service", "path", "family", "state"),
           "1 for the routing state this round's verdict gave the path in that address family; "
           "the path's own series (routewatch_routing_state and the others without a family "
           "label) follow its worst family. Exported only for a vantage point with IPv6 "
           "results."),
    _gauge("family_routing_penalty_seconds", "seconds", ("probe", "service", "path", "family"),
           "routewatch_routing_penalty_seconds per address family; absent when unknown, and for "
           "a vantage point without IPv6 results."),
    _gauge("cdn_cache_hit", "boolean", ("probe", "service", "request"),
           "1 if the edge answered from its cache (x-cache Hit or RefreshHit), else 0; request "
           "first is the cache-busted request (a hit means cache busting failed), repeat the same "
           "URL again (a hit means the edge caches)."),
    _gauge("cdn_upstream_seconds", "seconds", ("probe", "service", "phase"),
           "CloudFront Server-Timing durations: upstream dns, connect, first byte (fbl) and "
           "downstream first byte; 0 when not reported."),
    _gauge("cdn_pop", "boolean", ("probe", "service", "pop"),
           "1 for the CloudFront POP that answered the vantage point (other if not a POP code)."),
    _gauge("data_path_local", "boolean", ("probe", "service", "path"),
           "1 if the serving region read its data (DynamoDB) in its own region, 0 if elsewhere; "
           "absent when the app does not report it or which region served is disputed."),
    _gauge("data_region", "boolean", ("probe", "service", "path", "region"),
           "1 for the region whose DynamoDB table served the data, 0 for the others."),
    _gauge("data_read_seconds", "seconds", ("probe", "service", "path"),
           "The app's own DynamoDB read time as it reports it in the health JSON."),
    _gauge("tls_cert_expiry_timestamp_seconds", "unix seconds",
           ("probe", "service", "path", "region"),
           "Earliest notAfter of the certificates the server presented (leaf and intermediates): "
           "path baseline for each region measured directly (region: that region), origin and "
           "cdn for the path's request (region: the one that served, other when unknown)."),
    _gauge("tls_version_info", "info", ("probe", "service", "path", "region", "version"),
           "Always 1; version is the TLS version negotiated (TLSv1.2, TLSv1.3, …, other), per "
           "path and region as for routewatch_tls_cert_expiry_timestamp_seconds."),
    MetricSpec(PREFIX + "probe_errors_total", MetricType.COUNTER, "errors",
               ("probe", "service", "path", "reason"),
               "Probe errors by where they happened and their typed reason."),
    _gauge("config_last_reload_successful", "boolean", (),
           "1 if the last configuration (re)load succeeded, 0 if it failed and the previous "
           "configuration is still in use."),
    _gauge("config_last_reload_success_timestamp_seconds", "unix seconds", (),
           "When the configuration was last loaded successfully."),
    _gauge("build_info", "info", ("version",),
           "Always 1; the version label is the running routewatch's version."),
    MetricSpec(PREFIX + "cloudwatch_failed_requests_total", MetricType.COUNTER, "requests",
               ("reason",),
               "PutMetricData requests (one per batch of a flush) that failed after botocore's "
               "retries, by typed AWS error reason; exported when cloudwatch.enabled."),
    MetricSpec(PREFIX + "cloudwatch_dropped_datapoints_total", MetricType.COUNTER, "datapoints",
               ("reason",),
               "Datapoints the CloudWatch exporter dropped: buffer_full (the oldest, when the "
               "buffer is full) or request_failed (their request failed); exported when "
               "cloudwatch.enabled."),
)

_BY_NAME = {spec.name: spec for spec in METRICS}


def metric(name: str) -> MetricSpec:
    """The spec of a metric by its full or short (unprefixed) name."""
    return _BY_NAME[name if name.startswith(PREFIX) else PREFIX + name]


def bounded_region(region: str | None, regions: tuple[str, ...]) -> str | None:
    """A configured region as is, any other name as ``other``, None stays None."""
    if region is None:
        return None
    return region if region in regions else OTHER


def bounded_tls_version(version: str | None) -> str:
    """A TLS version of :data:`TLS_VERSIONS` as is, anything else ``other``."""
    return version if version in TLS_VERSIONS else OTHER


MAX_POP_SERIES = 256
"""Distinct ``pop`` label values one process exports (CloudFront has some 600 POPs, a vantage
point meets a handful); once reached, a POP not seen before is ``other``."""


class _PopLabels:
    """The POP label values this process has exported so far, at most ``cap`` of them."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def bounded(self, pop: str | None) -> str:
        if pop is None or not POP_CODE.fullmatch(pop) or airport_location(pop[:3]) is None:
            return OTHER
        with self._lock:
            if pop not in self._seen and len(self._seen) >= self._cap:
                return OTHER
            self._seen.add(pop)
        return pop


_POP_LABELS = _PopLabels(MAX_POP_SERIES)


def bounded_pop(pop: str | None) -> str:
    """A POP code such as ``FRA56-P1`` whose airport is known, among the first
    :data:`MAX_POP_SERIES` this process exports; anything else (or nothing) is ``other``."""
    return _POP_LABELS.bounded(pop)


def bounded_reason(reason: str) -> str:
    """A :class:`~monitor.domain.reasons.Reason` as is, anything else ``other``."""
    return reason_of(reason).value


def error_path(path: str) -> str:
    """Where an error happened (its record's ``path``) as a bounded label value."""
    head = re.split(r"[:/.\s]", path.strip().lower(), maxsplit=1)[0]
    return head if head in ERROR_PATHS else OTHER
