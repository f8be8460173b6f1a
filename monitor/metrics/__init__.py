"""What routewatch exports: every metric's name, type, unit, labels and meaning, defined once.

The Prometheus collector (:mod:`monitor.exporters.prometheus`) and the CloudWatch exporter build
on :data:`METRICS` and :func:`vantage_samples`; ``docs/metrics.md`` documents the same table and a
test keeps the two in step.

Label values are bounded: ``region`` comes from the configuration (anything else is ``other``),
``state`` from :class:`~monitor.core.model.RoutingState`, ``phase`` and ``resolver`` from fixed
tuples here, ``pop`` must look like a CloudFront POP code (else ``other``), ``reason`` like a
reason identifier (else ``other``).

A :class:`Snapshot` is immutable: the serving side replaces it whole after every round
(:class:`SnapshotStore`), so a scrape reads one consistent set of rounds.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from monitor import __version__
from monitor.config import Config
from monitor.core.hysteresis import Hysteresis, observe_paths
from monitor.core.model import (
    CdnDetails,
    DataPath,
    OriginDetails,
    Path,
    PathResult,
    RoutingState,
    RoutingVerdict,
    VantageRound,
)
from monitor.core.paths import PATHS, enabled_paths
from monitor.domain.patterns import POP_CODE
from monitor.domain.reasons import Reason, reason_of

__all__ = [
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
    "metric",
    "metrics_table_markdown",
    "observed_states",
    "path_verdict",
    "snapshot_samples",
    "vantage_samples",
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



class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"


@dataclass(frozen=True)
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
    _gauge("round_success", "boolean", ("probe",),
           "1 if the vantage point's latest round finished within its deadline with every path "
           "judged, 0 otherwise."),
    _gauge("round_duration_seconds", "seconds", ("probe",),
           "Wall-clock duration of the vantage point's latest round."),
    _gauge("last_round_timestamp_seconds", "unix seconds", ("probe",),
           "When the vantage point's latest round finished."),
    _gauge("round_interval_seconds", "seconds", ("probe",),
           "Configured interval between the vantage point's rounds (for staleness alerts)."),
    MetricSpec(PREFIX + "rounds_total", MetricType.COUNTER, "rounds", ("probe",),
               "Rounds finished by the vantage point since routewatch started."),
    _gauge("dns_lookup_seconds", "seconds", ("probe", "resolver"),
           "Duration of the origin name lookup, through the recursive resolver or directly at the "
           "authoritative servers with ECS."),
    _gauge("region_latency_seconds", "seconds", ("probe", "region"),
           "Round trip to the region measured directly (baseline estimator); absent while the "
           "region does not answer."),
    _gauge("region_healthy", "boolean", ("probe", "region"),
           "1 if the region answered the vantage point's baseline, 0 if not."),
    _gauge("path_latency_seconds", "seconds", ("probe", "path"),
           "Time to first byte of the path's request (request sent to first response byte); "
           "absent when the request failed."),
    _gauge("http_phase_seconds", "seconds", ("probe", "path", "phase"),
           "Duration of each phase of the path's HTTP request; 0 for phases that did not happen."),
    _gauge("http_status_code", "status code", ("probe", "path"),
           "HTTP status code of the path's response; absent when no response came."),
    _gauge("served_region", "boolean", ("probe", "path", "region"),
           "1 for the region that answered on the path this round, 0 for the others (all 0 when "
           "it could not be told)."),
    _gauge("expected_region", "boolean", ("probe", "path", "region"),
           "1 for the region that should have answered (the closest healthy one), 0 for others."),
    _gauge("routing_state", "boolean", ("probe", "path", "state"),
           "1 for the path's stable routing state (after hysteresis), 0 for the other states."),
    _gauge("routing_observed_state", "boolean", ("probe", "path", "state"),
           "1 for the routing state this round's verdict gave, before hysteresis."),
    _gauge("routing_state_streak", "rounds", ("probe", "path"),
           "Consecutive rounds, up to the latest, whose verdict was the latest observed state."),
    _gauge("routing_hysteresis_rounds", "rounds", (),
           "Consecutive rounds that must agree before a routing state flips."),
    _gauge("routing_penalty_seconds", "seconds", ("probe", "path"),
           "How much slower the served region is than the expected one; absent when unknown."),
    _gauge("cdn_cache_hit", "boolean", ("probe", "request"),
           "1 if the edge answered from its cache (x-cache Hit or RefreshHit), else 0; request "
           "first is the cache-busted request (a hit means cache busting failed), repeat the same "
           "URL again (a hit means the edge caches)."),
    _gauge("cdn_upstream_seconds", "seconds", ("probe", "phase"),
           "CloudFront Server-Timing durations: upstream dns, connect, first byte (fbl) and "
           "downstream first byte; 0 when not reported."),
    _gauge("cdn_pop", "boolean", ("probe", "pop"),
           "1 for the CloudFront POP that answered the vantage point (other if not a POP code)."),
    _gauge("data_path_local", "boolean", ("probe", "path"),
           "1 if the serving region read its data (DynamoDB) in its own region, 0 if elsewhere; "
           "absent when the app does not report it."),
    _gauge("data_region", "boolean", ("probe", "path", "region"),
           "1 for the region whose DynamoDB table served the data, 0 for the others."),
    _gauge("data_read_seconds", "seconds", ("probe", "path"),
           "The app's own DynamoDB read time as it reports it in the health JSON."),
    MetricSpec(PREFIX + "probe_errors_total", MetricType.COUNTER, "errors",
               ("probe", "path", "reason"),
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


def bounded_pop(pop: str | None) -> str:
    """A POP code such as ``FRA56-P1``; anything else (or nothing) is ``other``."""
    return pop if pop is not None and POP_CODE.match(pop) else OTHER


def bounded_reason(reason: str) -> str:
    """A :class:`~monitor.domain.reasons.Reason` as is, anything else ``other``."""
    return reason_of(reason).value


def _error_path(path: str) -> str:
    head = re.split(r"[:/.\s]", path.strip().lower(), maxsplit=1)[0]
    return head if head in ERROR_PATHS else OTHER


# --- snapshots -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelSpace:
    """The bounded label values the configuration allows."""

    vantage_points: tuple[str, ...]
    regions: tuple[str, ...]
    paths: tuple[Path, ...]
    interval_s: float
    hysteresis_rounds: int

    @classmethod
    def from_config(cls, config: Config) -> LabelSpace:
        return cls(tuple(config.vantage_points), tuple(config.regions), enabled_paths(config),
                   config.serve.interval_s, config.serve.hysteresis_rounds)


@dataclass(frozen=True)
class VantageSnapshot:
    """A vantage point's latest round with what serving adds: hysteresis and counters."""

    result: VantageRound
    routing: Mapping[Path, Hysteresis]
    finished_at: float
    rounds_total: int = 1
    errors_total: Mapping[tuple[str, str], int] = field(
        default_factory=lambda: MappingProxyType({}))

    @classmethod
    def single(cls, result: VantageRound, paths: tuple[Path, ...] = tuple(Path)) -> VantageSnapshot:
        """A snapshot of one round on its own (no history), e.g. for a Lambda invocation."""
        routing = observe_paths(None, observed_states(result, paths), 1)
        return cls(result, MappingProxyType(routing), result.started_at + result.duration_seconds,
                   1, MappingProxyType(_count_errors({}, result)))


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape exports."""

    space: LabelSpace
    vantage: Mapping[str, VantageSnapshot]
    started_at: float
    reload_successful: bool = True
    reload_success_at: float | None = None
    counters: Mapping[tuple[str, tuple[str, ...]], float] = field(
        default_factory=lambda: MappingProxyType({}))
    """Process-wide counters outside the rounds (e.g. an exporter's failures): (name, labels)."""

    @property
    def last_round_finished_at(self) -> float | None:
        return max((v.finished_at for v in self.vantage.values()), default=None)


def path_verdict(result: VantageRound, path: Path) -> RoutingVerdict:
    """The verdict of a path in a round; a path missing from the round is ``unknown``."""
    found = result.path(path)
    if found is not None:
        return found.verdict
    reason = Reason.ROUND_FAILED if not result.success else Reason.NOT_PROBED
    return RoutingVerdict(RoutingState.UNKNOWN, None, None, None, reason,
                          f"no {path} result in this round")


def observed_states(result: VantageRound, paths: tuple[Path, ...]) -> dict[Path, RoutingState]:
    return {path: path_verdict(result, path).state for path in paths}


def _count_errors(previous: Mapping[tuple[str, str], int],
                  result: VantageRound) -> dict[tuple[str, str], int]:
    counts = dict(previous)
    for error in result.errors:
        key = (_error_path(error.path), bounded_reason(error.reason))
        counts[key] = counts.get(key, 0) + 1
    return counts


class SnapshotStore:
    """Holds the current :class:`Snapshot` and replaces it whole on every change.

    Readers (the scrape thread) take :meth:`current` without locking: replacing a reference is
    atomic, and nothing reachable from a snapshot is ever mutated.
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._snapshot = Snapshot(LabelSpace.from_config(config), MappingProxyType({}), now,
                                  True, now)

    def current(self) -> Snapshot:
        return self._snapshot

    def publish(self, result: VantageRound) -> VantageSnapshot | None:
        """Record a finished round; a round of a vantage point no longer configured is dropped."""
        with self._lock:
            snapshot = self._snapshot
            space = snapshot.space
            if result.vantage not in space.vantage_points:
                return None
            before = snapshot.vantage.get(result.vantage)
            routing = observe_paths(before.routing if before else None,
                                    observed_states(result, space.paths), space.hysteresis_rounds)
            entry = VantageSnapshot(
                result=result,
                routing=MappingProxyType(routing),
                finished_at=self._clock(),
                rounds_total=(before.rounds_total if before else 0) + 1,
                errors_total=MappingProxyType(
                    _count_errors(before.errors_total if before else {}, result)),
            )
            vantage = dict(snapshot.vantage)
            vantage[result.vantage] = entry
            self._snapshot = replace(snapshot, vantage=MappingProxyType(vantage))
            return entry

    def reconfigure(self, config: Config) -> None:
        """Adopt a new configuration: removed vantage points vanish, the others keep history."""
        with self._lock:
            space = LabelSpace.from_config(config)
            kept = {name: entry for name, entry in self._snapshot.vantage.items()
                    if name in space.vantage_points}
            self._snapshot = replace(self._snapshot, space=space, vantage=MappingProxyType(kept),
                                     reload_successful=True, reload_success_at=self._clock())

    def reload_failed(self) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, reload_successful=False)

    def count(self, name: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """Add to a process-wide counter of :data:`METRICS` (0 creates its series)."""
        spec = metric(name)
        if spec.type is not MetricType.COUNTER or len(labels) != len(spec.labels) \
                or amount < 0:
            raise ValueError(f"{spec.name} cannot count {amount} for labels {labels}")
        with self._lock:
            counters = dict(self._snapshot.counters)
            key = (spec.name, labels)
            counters[key] = counters.get(key, 0.0) + amount
            self._snapshot = replace(self._snapshot, counters=MappingProxyType(counters))


# --- samples -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    spec: MetricSpec
    labels: tuple[str, ...]
    value: float


def _flag(condition: bool) -> float:
    return 1.0 if condition else 0.0


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _status_code(found: PathResult | None) -> int | None:
    """The response's status; None when the request got no response (or a nonsense one)."""
    status = found.status if found is not None else None
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        return None
    return status


def _dns_lookups(result: VantageRound) -> dict[str, float]:
    """Lookup durations by resolver role from the round's DNS evidence (0 when not measured)."""
    found = dict.fromkeys(DNS_RESOLVERS, 0.0)
    for role, lookup in result.dns.by_role():
        seconds = _seconds(lookup.duration_seconds)
        if seconds is not None:
            found[role] = seconds
    return found


CDN_REQUESTS = ("first", "repeat")
"""``request`` of ``routewatch_cdn_cache_hit``: the cache-busted request, and the same again."""

_CACHE_HITS = frozenset({"hit", "refresh_hit"})


def _cache_results(cdn: CdnDetails | None) -> dict[str, str | None]:
    """The ``x-cache`` result of each request of :data:`CDN_REQUESTS`."""
    return dict(zip(CDN_REQUESTS, (cdn.cache, cdn.cache_repeat) if cdn else (None, None),
                    strict=True))


def _server_timing(cdn: CdnDetails | None) -> dict[str, float]:
    timing = cdn.server_timing if cdn else {}
    out = {}
    for label, metric_name in CDN_UPSTREAM_PHASES.items():
        seconds = _seconds(timing.get(metric_name))
        if seconds is not None:
            out[label] = seconds
    return out


def _data_path(found: PathResult | None) -> DataPath | None:
    """Where a path's serving region read its data, when it is known which region served."""
    if (found is None or found.attribution is None or found.attribution.region is None
            or not isinstance(found.details, OriginDetails)):
        return None
    return found.details.data_path


def _one_hot(spec: MetricSpec, prefix: tuple[str, ...], chosen: str | None,
             values: tuple[str, ...]) -> Iterator[Sample]:
    for value in values:
        yield Sample(spec, (*prefix, value), _flag(value == chosen))


def vantage_samples(space: LabelSpace, entry: VantageSnapshot) -> Iterator[Sample]:
    """Every sample one vantage point exports for its latest round, in :data:`METRICS` order.

    Phases, states and regions are exported in full on every round, failed rounds too, so series
    do not appear and disappear with the verdict.
    """
    result = entry.result
    probe = result.vantage
    regions = (*space.regions, OTHER)
    states = tuple(state.value for state in RoutingState)
    yield Sample(metric("round_success"), (probe,), _flag(result.success))
    yield Sample(metric("round_duration_seconds"), (probe,), result.duration_seconds)
    yield Sample(metric("last_round_timestamp_seconds"), (probe,), entry.finished_at)
    yield Sample(metric("round_interval_seconds"), (probe,), space.interval_s)
    yield Sample(metric("rounds_total"), (probe,), float(entry.rounds_total))
    for resolver, seconds in _dns_lookups(result).items():
        yield Sample(metric("dns_lookup_seconds"), (probe, resolver), seconds)

    rows = {row.region: row for row in result.regions}
    for region in space.regions:
        row = rows.get(region)
        latency = _seconds(row.latency_seconds) if row and row.healthy else None
        if latency is not None:
            yield Sample(metric("region_latency_seconds"), (probe, region), latency)
    for region in space.regions:
        row = rows.get(region)
        yield Sample(metric("region_healthy"), (probe, region), _flag(bool(row and row.healthy)))

    results: dict[Path, PathResult | None] = {path: result.path(path) for path in space.paths}
    verdicts = {path: path_verdict(result, path) for path in space.paths}
    http_paths = [path for path in space.paths if path in HTTP_PATHS]
    for path in http_paths:
        found = results[path]
        latency = _seconds(found.latency_seconds) if found else None
        if latency is not None:
            yield Sample(metric("path_latency_seconds"), (probe, path.value), latency)
    for path in http_paths:
        found = results[path]
        phases: Mapping[str, float] = found.phases if found else {}
        for phase in HTTP_PHASES:
            yield Sample(metric("http_phase_seconds"), (probe, path.value, phase),
                         _seconds(phases.get(phase)) or 0.0)
    for path in http_paths:
        status = _status_code(results[path])
        if status is not None:
            yield Sample(metric("http_status_code"), (probe, path.value), float(status))
    for path in space.paths:
        served = bounded_region(verdicts[path].served_region, space.regions)
        yield from _one_hot(metric("served_region"), (probe, path.value), served, regions)
    for path in space.paths:
        expected = bounded_region(verdicts[path].expected_region, space.regions)
        yield from _one_hot(metric("expected_region"), (probe, path.value), expected, regions)
    for path in space.paths:
        stable = entry.routing[path].stable.value if path in entry.routing else None
        yield from _one_hot(metric("routing_state"), (probe, path.value), stable, states)
    for path in space.paths:
        yield from _one_hot(metric("routing_observed_state"), (probe, path.value),
                            verdicts[path].state.value, states)
    for path in space.paths:
        if path in entry.routing:
            yield Sample(metric("routing_state_streak"), (probe, path.value),
                         float(entry.routing[path].streak))
    for path in space.paths:
        penalty = verdicts[path].penalty_seconds
        if penalty is not None and math.isfinite(penalty):
            yield Sample(metric("routing_penalty_seconds"), (probe, path.value), penalty)

    if Path.CDN in space.paths:
        cdn = results[Path.CDN]
        details = cdn.details if cdn is not None and isinstance(cdn.details, CdnDetails) else None
        for request, cache in _cache_results(details).items():
            yield Sample(metric("cdn_cache_hit"), (probe, request), _flag(cache in _CACHE_HITS))
        timing = _server_timing(details)
        for phase in CDN_UPSTREAM_PHASES:
            yield Sample(metric("cdn_upstream_seconds"), (probe, phase), timing.get(phase, 0.0))
        if cdn is not None:
            yield Sample(metric("cdn_pop"), (probe, bounded_pop(details.pop if details else None)),
                         1.0)

    data = [(path, data_path) for path in http_paths
            if (data_path := _data_path(results[path])) is not None]
    for path, data_path in data:
        yield Sample(metric("data_path_local"), (probe, path.value), _flag(data_path.local))
    for path, data_path in data:
        yield from _one_hot(metric("data_region"), (probe, path.value),
                            bounded_region(data_path.dynamodb_region, space.regions), regions)
    for path, data_path in data:
        read = _seconds(data_path.read_seconds)
        if read is not None:
            yield Sample(metric("data_read_seconds"), (probe, path.value), read)

    for (path_label, reason), count in sorted(entry.errors_total.items()):
        yield Sample(metric("probe_errors_total"), (probe, path_label, reason), float(count))


def snapshot_samples(snapshot: Snapshot) -> dict[MetricSpec, list[Sample]]:
    """Every sample of a snapshot, grouped by metric in :data:`METRICS` order."""
    grouped: dict[MetricSpec, list[Sample]] = {spec: [] for spec in METRICS}
    space = snapshot.space
    grouped[metric("routing_hysteresis_rounds")].append(
        Sample(metric("routing_hysteresis_rounds"), (), float(space.hysteresis_rounds)))
    grouped[metric("config_last_reload_successful")].append(
        Sample(metric("config_last_reload_successful"), (), _flag(snapshot.reload_successful)))
    if snapshot.reload_success_at is not None:
        grouped[metric("config_last_reload_success_timestamp_seconds")].append(
            Sample(metric("config_last_reload_success_timestamp_seconds"), (),
                   snapshot.reload_success_at))
    grouped[metric("build_info")].append(Sample(metric("build_info"), (__version__,), 1.0))
    for (name, labels), value in sorted(snapshot.counters.items()):
        grouped[metric(name)].append(Sample(metric(name), labels, value))
    for name in space.vantage_points:
        entry = snapshot.vantage.get(name)
        if entry is not None:
            for sample in vantage_samples(space, entry):
                grouped[sample.spec].append(sample)
    return grouped


# --- documentation -------------------------------------------------------------------------------

LABELS: dict[str, str] = {
    "probe": "vantage point name from the configuration",
    "path": "dns, origin or cdn (errors also: baseline, round, other)",
    "region": "a configured region, or other",
    "state": "ok, failover, misrouted, unknown",
    "phase": "http: " + ", ".join(HTTP_PHASES) + "; cdn: " + ", ".join(CDN_UPSTREAM_PHASES),
    "resolver": ", ".join(DNS_RESOLVERS),
    "request": ", ".join(CDN_REQUESTS),
    "pop": "a CloudFront POP code such as FRA56-P1, or other",
    "reason": "a reason of docs/runbook.md#reasons: " + ", ".join(r.value for r in Reason),
    "version": "routewatch's version (monitor.__version__)",
}
"""Every label and the values it can take (docs/metrics.md)."""


def metrics_table_markdown() -> str:
    """The metric table of docs/metrics.md, generated from :data:`METRICS`."""
    lines = ["| metric | type | unit | labels | meaning |", "| --- | --- | --- | --- | --- |"]
    for spec in METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "—"
        lines.append(f"| `{spec.name}` | {spec.type} | {spec.unit} | {labels} | {spec.help} |")
    return "\n".join(lines) + "\n"
