"""Samples: every value one snapshot exports, in :data:`~monitor.metrics.catalogue.METRICS`
order; the Prometheus collector and the CloudWatch exporter build on them."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from monitor import __version__
from monitor.core.model import (
    CdnDetails,
    DataPath,
    OriginDetails,
    Path,
    PathResult,
    RoutingState,
    VantageRound,
)
from monitor.metrics.catalogue import (
    BASELINE,
    CDN_UPSTREAM_PHASES,
    DNS_RESOLVERS,
    HTTP_PATHS,
    HTTP_PHASES,
    METRICS,
    OTHER,
    MetricSpec,
    bounded_pop,
    bounded_region,
    bounded_tls_version,
    metric,
)
from monitor.metrics.snapshot import LabelSpace, Snapshot, VantageSnapshot, path_verdict
from probes.records import record

__all__ = ["CDN_REQUESTS", "Sample", "snapshot_samples", "vantage_samples"]


@record
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
    labels = (result.vantage, result.service)  # probe, service: every round's series
    regions = (*space.regions, OTHER)
    states = tuple(state.value for state in RoutingState)
    yield Sample(metric("round_success"), (*labels,), _flag(result.success))
    yield Sample(metric("round_duration_seconds"), (*labels,), result.duration_seconds)
    yield Sample(metric("last_round_timestamp_seconds"), (*labels,), entry.finished_at)
    yield Sample(metric("round_interval_seconds"), (*labels,), space.interval_s)
    if result.loop_lag_seconds is not None:
        yield Sample(metric("loop_lag_seconds"), (*labels,), result.loop_lag_seconds)
    yield Sample(metric("rounds_total"), (*labels,), float(entry.rounds_total))
    for resolver, seconds in _dns_lookups(result).items():
        yield Sample(metric("dns_lookup_seconds"), (*labels, resolver), seconds)

    primary = result.primary_regions
    rows = {row.region: row for row in primary}
    for region in space.regions:
        row = rows.get(region)
        latency = _seconds(row.latency_seconds) if row and row.healthy else None
        if latency is not None:
            yield Sample(metric("region_latency_seconds"), (*labels, region), latency)
    for region in space.regions:
        row = rows.get(region)
        yield Sample(metric("region_healthy"), (*labels, region), _flag(bool(row and row.healthy)))

    results: dict[Path, PathResult | None] = {path: result.path(path) for path in space.paths}
    verdicts = {path: path_verdict(result, path) for path in space.paths}
    http_paths = [path for path in space.paths if path in HTTP_PATHS]
    for path in http_paths:
        found = results[path]
        latency = _seconds(found.latency_seconds) if found else None
        if latency is not None:
            yield Sample(metric("path_latency_seconds"), (*labels, path.value), latency)
    for path in http_paths:
        found = results[path]
        phases: Mapping[str, float] = found.phases if found else {}
        for phase in HTTP_PHASES:
            yield Sample(metric("http_phase_seconds"), (*labels, path.value, phase),
                         _seconds(phases.get(phase)) or 0.0)
    for path in http_paths:
        status = _status_code(results[path])
        if status is not None:
            yield Sample(metric("http_status_code"), (*labels, path.value), float(status))
    for path in space.paths:
        judged = verdicts[path].state is not RoutingState.UNKNOWN
        yield Sample(metric("path_success"), (*labels, path.value), _flag(judged))
    for path in space.paths:
        served = bounded_region(verdicts[path].served_region, space.regions)
        yield from _one_hot(metric("served_region"), (*labels, path.value), served, regions)
    for path in space.paths:
        expected = bounded_region(verdicts[path].expected_region, space.regions)
        yield from _one_hot(metric("expected_region"), (*labels, path.value), expected, regions)
    for path in space.paths:
        stable = entry.routing[path].stable.value if path in entry.routing else None
        yield from _one_hot(metric("routing_state"), (*labels, path.value), stable, states)
    for path in space.paths:
        yield from _one_hot(metric("routing_observed_state"), (*labels, path.value),
                            verdicts[path].state.value, states)
    for path in space.paths:
        if path in entry.routing:
            yield Sample(metric("routing_state_streak"), (*labels, path.value),
                         float(entry.routing[path].streak))
    for path in space.paths:
        penalty = verdicts[path].penalty_seconds
        if penalty is not None and math.isfinite(penalty):
            yield Sample(metric("routing_penalty_seconds"), (*labels, path.value), penalty)

    if result.dual_stack:
        yield from _family_samples(space, result)

    if Path.CDN in space.paths:
        cdn = results[Path.CDN]
        details = cdn.details if cdn is not None and isinstance(cdn.details, CdnDetails) else None
        for request, cache in _cache_results(details).items():
            yield Sample(metric("cdn_cache_hit"), (*labels, request), _flag(cache in _CACHE_HITS))
        timing = _server_timing(details)
        for phase in CDN_UPSTREAM_PHASES:
            yield Sample(metric("cdn_upstream_seconds"), (*labels, phase),
                         timing.get(phase, 0.0))
        if cdn is not None:
            pop = bounded_pop(details.pop if details else None)
            yield Sample(metric("cdn_pop"), (*labels, pop), 1.0)

    data = [(path, data_path) for path in http_paths
            if (data_path := _data_path(results[path])) is not None]
    for path, data_path in data:
        if data_path.local is not None:  # disputed: absent, like an app that does not report
            yield Sample(metric("data_path_local"), (*labels, path.value), _flag(data_path.local))
    for path, data_path in data:
        yield from _one_hot(metric("data_region"), (*labels, path.value),
                            bounded_region(data_path.dynamodb_region, space.regions), regions)
    for path, data_path in data:
        read = _seconds(data_path.read_seconds)
        if read is not None:
            yield Sample(metric("data_read_seconds"), (*labels, path.value), read)

    tls = [(BASELINE, row.region, row.tls) for row in primary
           if row.region in space.regions and row.tls is not None]
    tls.extend((path.value, bounded_region(verdicts[path].served_region, space.regions) or OTHER,
                found.tls) for path in http_paths
               if (found := results[path]) is not None and found.tls is not None)
    for path_label, region, info in tls:
        expiry = _seconds(info.cert_not_after)
        if expiry is not None:
            yield Sample(metric("tls_cert_expiry_timestamp_seconds"),
                         (*labels, path_label, region), expiry)
    for path_label, region, info in tls:
        yield Sample(metric("tls_version_info"),
                     (*labels, path_label, region, bounded_tls_version(info.version)), 1.0)

    for (path_label, reason), count in sorted(entry.errors_total.items()):
        yield Sample(metric("probe_errors_total"), (*labels, path_label, reason), float(count))


def _family_samples(space: LabelSpace, result: VantageRound) -> Iterator[Sample]:
    """The per-family series of a vantage point with IPv6 results, in :data:`METRICS` order."""
    labels = (result.vantage, result.service)  # probe, service
    states = tuple(state.value for state in RoutingState)
    for row in result.regions:
        latency = _seconds(row.latency_seconds) if row.healthy else None
        if latency is not None and row.region in space.regions:
            yield Sample(metric("family_region_latency_seconds"),
                         (*labels, row.family.value, row.region), latency)
    paths = [p for p in result.paths if p.path in space.paths]
    for found in paths:
        yield Sample(metric("family_path_success"),
                     (*labels, found.path.value, found.family.value),
                     _flag(found.verdict.state is not RoutingState.UNKNOWN))
    for found in paths:
        yield from _one_hot(metric("family_routing_observed_state"),
                            (*labels, found.path.value, found.family.value),
                            found.verdict.state.value, states)
    for found in paths:
        penalty = found.verdict.penalty_seconds
        if penalty is not None and math.isfinite(penalty):
            yield Sample(metric("family_routing_penalty_seconds"),
                         (*labels, found.path.value, found.family.value), penalty)


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
    for entry in snapshot.entries():
        for sample in vantage_samples(space, entry):
            grouped[sample.spec].append(sample)
    return grouped
