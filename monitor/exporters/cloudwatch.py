"""CloudWatch metrics of a round: EMF on stdout (Lambda) and PutMetricData (long-running mode).

Both publish the same datapoints (:func:`round_datapoints`) in namespace ``RouteWatch`` with
dimensions drawn only from ``Probe`` (the vantage point), ``Path`` (dns, origin, cdn) and
``Region`` (a configured region, anything else becomes ``other``), so the number of series is
bounded by the configuration. A configuration with several ``services`` publishes every
datapoint twice: with a ``Service`` dimension after ``Probe`` (one series per service, what the
per-service alarms read) and without it (every service's values in one series: Maximum of
``Misrouted`` is "any service misrouted", what the probe stack's alarms read); the singular
``service:`` publishes the second only, as before. Times are in milliseconds, everything else is
a count.

* :class:`EmfEmitter` builds Embedded Metric Format documents with aws-lambda-powertools and
  prints them: CloudWatch Logs turns them into metrics, so the Lambda needs no AWS API call and no
  boto3 on its hot path.
* :class:`CloudWatchPublisher` buffers datapoints (bounded; the oldest are dropped, counted and
  logged when it is full) and sends them from a background thread with PutMetricData, at most
  1000 values per request, with botocore's adaptive retry mode absorbing throttling. ``export``
  only appends to the buffer, so a slow or throttled CloudWatch never delays a round. Failed
  requests (by AWS error reason) and dropped datapoints (by reason) are also counted into a
  :data:`CounterSink` (``serve``'s snapshot store), so ``/metrics`` shows a failing export.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from monitor.config import DEFAULT_SERVICE, CloudWatchSettings
from monitor.core.model import RoundResult, RoutingState
from monitor.metrics import OTHER, bounded_reason
from probes.records import record

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef

__all__ = [
    "CLOUDWATCH_METRICS",
    "DIMENSION_NAMES",
    "DROPPED_DATAPOINTS",
    "DROP_REASONS",
    "FAILED_REQUESTS",
    "MAX_VALUES_PER_REQUEST",
    "CloudWatchMetric",
    "CloudWatchPublisher",
    "CounterSink",
    "Datapoint",
    "EmfEmitter",
    "FlushOutcome",
    "batches",
    "round_datapoints",
    "service_dimensions",
    "with_service",
]

log = logging.getLogger(__name__)

Unit = Literal["Milliseconds", "Count"]
DIMENSION_NAMES = ("Probe", "Service", "Path", "Region")
MAX_VALUES_PER_REQUEST = 1000  # PutMetricData: at most 1000 metrics (values) per request
_MAX_REQUEST_BYTES = 900_000  # PutMetricData accepts 1 MB; keep a margin for the envelope
_EMF_MAX_METRICS = 100  # EMF: at most 100 metrics per directive


@record
class CloudWatchMetric:
    """One metric of the namespace: its unit, dimensions, meaning, and the Prometheus metric of
    :data:`monitor.metrics.METRICS` it mirrors (None for the exporter's own)."""

    name: str
    unit: Unit
    dimensions: tuple[str, ...]
    help: str
    mirrors: str | None


def _m(name: str, unit: Unit, dimensions: tuple[str, ...], mirrors: str | None,
       help_text: str) -> CloudWatchMetric:
    return CloudWatchMetric(name, unit, dimensions, help_text, mirrors)


_PROBE, _PROBE_REGION, _PROBE_PATH = ("Probe",), ("Probe", "Region"), ("Probe", "Path")

# Alarm-friendly shapes: a routing state is a 0/1 metric per state (an M-of-N alarm is the
# hysteresis), and served/expected region carry only the region that answered, not a one-hot row.
CLOUDWATCH_METRICS: dict[str, CloudWatchMetric] = {m.name: m for m in (
    _m("RoundCompleted", "Count", _PROBE, "routewatch_rounds_total",
       "1 per finished round; its absence is what the stale alarm watches"),
    _m("RoundSuccess", "Count", _PROBE, "routewatch_round_success",
       "1 when the round completed and judged every path, else 0"),
    _m("RoundDuration", "Milliseconds", _PROBE, "routewatch_round_duration_seconds",
       "Wall time of the round"),
    _m("ProbeErrors", "Count", _PROBE, "routewatch_probe_errors_total",
       "Errors recorded in the round"),
    _m("UnhealthyRegions", "Count", _PROBE, "routewatch_region_healthy",
       "Configured regions that did not answer the probe's baseline"),
    _m("RegionLatency", "Milliseconds", _PROBE_REGION, "routewatch_region_latency_seconds",
       "Round trip to the region measured directly (the baseline); absent while unhealthy"),
    _m("RegionHealthy", "Count", _PROBE_REGION, "routewatch_region_healthy",
       "1 if the region answered the baseline, else 0"),
    _m("Misrouted", "Count", _PROBE_PATH, "routewatch_routing_observed_state",
       "1 when a worse region than the closest answered, beyond tolerance, else 0"),
    _m("Unknown", "Count", _PROBE_PATH, "routewatch_routing_observed_state",
       "1 when the path could not be judged, else 0"),
    _m("Failover", "Count", _PROBE_PATH, "routewatch_routing_observed_state",
       "1 when the closest region is down and the next best answered, else 0"),
    _m("RoutingPenalty", "Milliseconds", _PROBE_PATH, "routewatch_routing_penalty_seconds",
       "How much slower the served region is than the expected one"),
    _m("PathLatency", "Milliseconds", _PROBE_PATH, "routewatch_path_latency_seconds",
       "Latency through the path (dns: the lookup through the resolver)"),
    _m("ServedRegion", "Count", ("Probe", "Path", "Region"), "routewatch_served_region",
       "1 for the region that answered the path"),
    _m("ExpectedRegion", "Count", ("Probe", "Path", "Region"), "routewatch_expected_region",
       "1 for the region that should have answered the path"),
    _m("DroppedDatapoints", "Count", (), None,
       "Datapoints the PutMetricData exporter dropped (buffer full or request rejected)"),
)}


@record
class Datapoint:
    """One value of one metric at one time, with its dimensions (name, value) in order."""

    name: str
    value: float
    dimensions: tuple[tuple[str, str], ...]
    timestamp: float  # epoch seconds

    @property
    def unit(self) -> Unit:
        return CLOUDWATCH_METRICS[self.name].unit


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def with_service(dimensions: tuple[tuple[str, str], ...],
                 service: str) -> tuple[tuple[str, str], ...]:
    """A datapoint's dimensions with ``Service`` after ``Probe``."""
    return (*dimensions[:1], ("Service", service), *dimensions[1:])


def service_dimensions(metric: CloudWatchMetric) -> tuple[str, ...]:
    """The dimensions of a metric's per-service series (several services only)."""
    return (*metric.dimensions[:1], "Service", *metric.dimensions[1:])


def round_datapoints(result: RoundResult, regions: Collection[str]) -> list[Datapoint]:
    """The datapoints of one round; ``regions`` (the configured ones) bounds the Region values."""

    def region_value(region: str | None) -> str:
        return region if region is not None and region in regions else OTHER

    points: list[Datapoint] = []
    for vantage in result.vantage_points:
        at = vantage.started_at

        def add(name: str, value: float, *dims: tuple[str, str], at: float = at,
                service: str = vantage.service) -> None:
            expected = CLOUDWATCH_METRICS[name].dimensions
            if tuple(d for d, _ in dims) != expected:
                raise ValueError(f"{name} has dimensions {expected}, not {dims}")
            points.append(Datapoint(name, float(value), dims, at))
            if service != DEFAULT_SERVICE:  # one of several services: its own series too
                points.append(Datapoint(name, float(value), with_service(dims, service), at))

        probe = ("Probe", vantage.vantage)
        add("RoundCompleted", 1, probe)
        add("RoundSuccess", 1 if vantage.success else 0, probe)
        add("RoundDuration", _ms(vantage.duration_seconds), probe)
        add("ProbeErrors", len(vantage.errors), probe)
        # the first family's latency row; each path by its worst family (no Family dimension:
        # an IPv6 misroute shows as the path's, under the dimensions alarms already watch)
        rows = vantage.primary_regions
        add("UnhealthyRegions", sum(1 for r in rows if not r.healthy), probe)
        for region in rows:
            where = ("Region", region_value(region.region))
            add("RegionHealthy", 1 if region.healthy else 0, probe, where)
            if region.healthy and region.latency_seconds is not None:
                add("RegionLatency", _ms(region.latency_seconds), probe, where)
        for path in (found for name in dict.fromkeys(p.path for p in vantage.paths)
                     if (found := vantage.path(name)) is not None):
            on = ("Path", path.path.value)
            verdict = path.verdict
            add("Misrouted", 1 if verdict.state == RoutingState.MISROUTED else 0, probe, on)
            add("Unknown", 1 if verdict.state == RoutingState.UNKNOWN else 0, probe, on)
            add("Failover", 1 if verdict.state == RoutingState.FAILOVER else 0, probe, on)
            if verdict.penalty_seconds is not None:
                add("RoutingPenalty", _ms(verdict.penalty_seconds), probe, on)
            if path.latency_seconds is not None:
                add("PathLatency", _ms(path.latency_seconds), probe, on)
            if verdict.served_region is not None:
                add("ServedRegion", 1, probe, on, ("Region", region_value(verdict.served_region)))
            if verdict.expected_region is not None:
                add("ExpectedRegion", 1, probe, on,
                    ("Region", region_value(verdict.expected_region)))
    return points


# --- EMF (Lambda) --------------------------------------------------------------------------------


class EmfEmitter:
    """Collects datapoints and prints them as EMF documents, one per dimension set and time.

    powertools builds and validates each document (units, names, dimension limits); the documents
    go to ``out`` (stdout, read at flush time, by default), which Lambda ships to CloudWatch Logs.
    """

    def __init__(self, namespace: str = "RouteWatch", out: TextIO | None = None) -> None:
        self.namespace = namespace
        self._out = out
        self._pending: list[Datapoint] = []

    def add(self, datapoints: Iterable[Datapoint]) -> None:
        self._pending.extend(datapoints)

    def documents(self) -> list[dict[str, Any]]:
        """The EMF documents for what was added (does not clear it)."""
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
            AmazonCloudWatchEMFProvider,
        )

        groups: dict[tuple[tuple[tuple[str, str], ...], int], list[Datapoint]] = {}
        for point in self._pending:
            groups.setdefault((point.dimensions, int(point.timestamp * 1000)), []).append(point)
        documents: list[dict[str, Any]] = []
        for (dimensions, timestamp_ms), points in groups.items():
            names = list(dict.fromkeys(p.name for p in points))
            for start in range(0, len(names), _EMF_MAX_METRICS):
                chunk = set(names[start:start + _EMF_MAX_METRICS])
                # service="" keeps powertools from adding a "service" dimension (bounded set)
                provider = AmazonCloudWatchEMFProvider(namespace=self.namespace, service="")
                for name, value in dimensions:
                    provider.add_dimension(name=name, value=value)
                for point in points:
                    if point.name in chunk:
                        provider.add_metric(name=point.name, unit=point.unit, value=point.value)
                provider.set_timestamp(timestamp_ms)
                documents.append(dict(provider.serialize_metric_set()))
        return documents

    def flush(self) -> int:
        """Print every pending document (one JSON line each) and clear; returns how many."""
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled

        if not self._pending:
            return 0
        try:
            if is_metrics_disabled():
                return 0
            documents = self.documents()
            out = self._out if self._out is not None else sys.stdout
            for document in documents:
                out.write(json.dumps(document, separators=(",", ":")) + "\n")
            out.flush()
            return len(documents)
        finally:
            self._pending.clear()


# --- PutMetricData (long-running mode) -----------------------------------------------------------


def _datum(point: Datapoint) -> MetricDatumTypeDef:
    return {
        "MetricName": point.name,
        "Dimensions": [{"Name": name, "Value": value} for name, value in point.dimensions],
        "Timestamp": datetime.fromtimestamp(point.timestamp, UTC),
        "Value": point.value,
        "Unit": point.unit,
    }


def _datum_size(point: Datapoint) -> int:
    """A generous estimate of a datum's size in the query-encoded request."""
    return 160 + len(point.name) * 2 + sum(40 + len(n) + len(v) for n, v in point.dimensions)


def batches(points: Sequence[Datapoint]) -> list[list[Datapoint]]:
    """Split into requests of at most 1000 values and well under the 1 MB request limit."""
    out: list[list[Datapoint]] = []
    current: list[Datapoint] = []
    size = 0
    for point in points:
        point_size = _datum_size(point)
        if current and (len(current) >= MAX_VALUES_PER_REQUEST
                        or size + point_size > _MAX_REQUEST_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(point)
        size += point_size
    if current:
        out.append(current)
    return out


CounterSink = Callable[[str, tuple[str, ...], float], None]
"""(metric name, label values, amount): adds to a counter of :data:`monitor.metrics.METRICS`,
e.g. :meth:`monitor.metrics.SnapshotStore.count`."""

FAILED_REQUESTS = "cloudwatch_failed_requests_total"
DROPPED_DATAPOINTS = "cloudwatch_dropped_datapoints_total"
DROP_REASONS = ("buffer_full", "request_failed")


@record
class FlushOutcome:
    requests: int
    sent: int
    rejected: int


class CloudWatchPublisher:
    """Sends round datapoints with PutMetricData, off the round's path.

    ``export(result)`` converts and appends to a bounded buffer and returns at once; a worker
    thread (``start``) or an explicit ``flush()`` drains it. When the buffer is full the oldest
    datapoints are dropped; a request that fails after botocore's retries drops its batch. Both
    are counted in ``dropped`` (by reason), logged, and published as ``DroppedDatapoints``; failed
    requests are counted in ``failed_requests`` (by AWS error reason). ``counters`` receives the
    same counts (every reason at 0 first, so the series exist before the first failure).
    """

    def __init__(
        self,
        *,
        namespace: str,
        regions: Collection[str],
        client: CloudWatchClient | None = None,
        client_factory: Callable[[], CloudWatchClient] | None = None,
        buffer_limit: int = 10_000,
        flush_interval_s: float = 10.0,
        counters: CounterSink | None = None,
    ) -> None:
        from monitor.aws.clients import aws_error_reasons

        if client is None and client_factory is None:
            raise ValueError("give client or client_factory")
        self.namespace = namespace
        self.regions = frozenset(regions)
        self.buffer_limit = buffer_limit
        self.flush_interval_s = flush_interval_s
        self._client = client
        self._client_factory = client_factory
        self._buffer: deque[Datapoint] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.failed_requests: dict[str, int] = dict.fromkeys(aws_error_reasons(), 0)
        self._counters = counters
        self._dropped_unreported = 0
        self.sent = 0
        self.requests = 0
        for reason in self.dropped:
            self._report(DROPPED_DATAPOINTS, reason, 0)
        for reason in self.failed_requests:
            self._report(FAILED_REQUESTS, reason, 0)

    @classmethod
    def from_settings(cls, settings: CloudWatchSettings, regions: Collection[str], *,
                      endpoint_url: str | None = None,
                      counters: CounterSink | None = None) -> CloudWatchPublisher:
        """Build from :class:`~monitor.config.CloudWatchSettings`. The client is made now, so a
        missing SDK or a bad region is an :class:`~monitor.aws.clients.AwsError` at start, not a
        failure at every flush."""
        from monitor.aws.clients import cloudwatch_client

        return cls(namespace=settings.namespace, regions=regions,
                   client=cloudwatch_client(settings.region, endpoint_url=endpoint_url),
                   buffer_limit=settings.buffer_limit, counters=counters)

    def _report(self, name: str, reason: str, amount: int) -> None:
        if self._counters is not None:
            self._counters(name, (reason,), float(amount))

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def export(self, result: RoundResult) -> int:
        """Queue a round's datapoints; never blocks on the network. Returns how many queued."""
        return self.enqueue(round_datapoints(result, self.regions))

    def enqueue(self, points: Iterable[Datapoint]) -> int:
        count = 0
        overflow = 0
        with self._lock:
            for point in points:
                if len(self._buffer) >= self.buffer_limit:
                    self._buffer.popleft()  # the newest data matters most
                    overflow += 1
                self._buffer.append(point)
                count += 1
            if overflow:
                self._count_dropped("buffer_full", overflow)
        if overflow:
            self._report(DROPPED_DATAPOINTS, "buffer_full", overflow)
            log.warning("cloudwatch: buffer full (%d datapoints): dropped the %d oldest",
                        self.buffer_limit, overflow)
        self._wake.set()
        return count

    def _count_dropped(self, reason: str, count: int) -> None:
        self.dropped[reason] += count
        self._dropped_unreported += count

    def _take(self) -> list[Datapoint]:
        with self._lock:
            points = list(self._buffer)
            self._buffer.clear()
            if self._dropped_unreported:
                points.append(Datapoint("DroppedDatapoints", float(self._dropped_unreported), (),
                                        time.time()))
                self._dropped_unreported = 0
        return points

    def flush(self) -> FlushOutcome:
        """Send everything buffered now, in batches; never raises for an AWS failure."""
        from monitor.aws.clients import AwsError, aws_errors

        with self._flush_lock:
            points = self._take()
            if not points:
                return FlushOutcome(0, 0, 0)
            client = self._get_client()
            requests = sent = rejected = 0
            for batch in batches(points):
                requests += 1
                try:
                    with aws_errors("cloudwatch", "PutMetricData", _client_region(client)):
                        client.put_metric_data(Namespace=self.namespace,
                                               MetricData=[_datum(p) for p in batch])
                    sent += len(batch)
                except AwsError as exc:
                    rejected += len(batch)
                    reason = bounded_reason(exc.reason)
                    with self._lock:
                        self._count_dropped("request_failed", len(batch))
                        self.failed_requests[reason] = self.failed_requests.get(reason, 0) + 1
                    self._report(DROPPED_DATAPOINTS, "request_failed", len(batch))
                    self._report(FAILED_REQUESTS, reason, 1)
                    log.warning("cloudwatch: dropped %d datapoints: %s", len(batch), exc)
            self.requests += requests
            self.sent += sent
            return FlushOutcome(requests, sent, rejected)

    def _get_client(self) -> CloudWatchClient:
        if self._client is None:
            if self._client_factory is None:
                raise ValueError("give client or client_factory")
            self._client = self._client_factory()
        return self._client

    # --- background worker -----------------------------------------------------------------------

    def start(self) -> None:
        """Flush from a daemon thread every ``flush_interval_s`` (and soon after each export)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="routewatch-cloudwatch",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the worker must survive anything, or metrics stop silently
                log.exception("cloudwatch: flush failed")

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the worker and send what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.flush()


def _client_region(client: Any) -> str | None:
    try:
        return str(client.meta.region_name)
    except AttributeError:
        return None
