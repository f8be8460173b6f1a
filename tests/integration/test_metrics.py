"""The metric table and the Prometheus collector, over hand-built rounds (no probing)."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator

import pytest
from e2e.serve_process import get
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rounds import vantage_round

from monitor import __version__
from monitor.config import Config, parse_config
from monitor.core.model import (
    CdnDetails,
    DataPath,
    ErrorRecord,
    OriginDetails,
    RoutingState,
    VantageRound,
)
from monitor.exporters.prometheus import MetricsServer, RoundCollector, health_report
from monitor.metrics import (
    HTTP_PHASES,
    METRICS,
    PREFIX,
    MetricType,
    Snapshot,
    SnapshotStore,
    VantageSnapshot,
    metric,
    snapshot_samples,
    vantage_samples,
)

CONFIG_YAML = """
service: {origin_name: global-alb.example.com, cdn_name: app.example.com}
regions:
  us-east-1: {addresses: [127.0.10.1]}
  eu-west-1: {addresses: [127.0.10.2]}
vantage_points:
  nyc: {resolver: 127.0.0.53}
  dub: {resolver: 127.0.0.53}
serve: {interval_s: 10, jitter_s: 0, hysteresis_rounds: 3}
"""

Labels = tuple[tuple[str, str], ...]


def make_config(text: str = CONFIG_YAML) -> Config:
    return parse_config(text).config


def failed_round(vantage: str = "nyc") -> VantageRound:
    """A round that hit its deadline before anything answered."""
    return vantage_round(vantage, paths=(), regions={"us-east-1": None, "eu-west-1": None},
                         errors=(ErrorRecord("origin", "deadline", "no answer"),), duration=15.0,
                         success=False)


def scrape(store: SnapshotStore) -> dict[str, dict[Labels, float]]:
    """Expose through a fresh registry and parse the text back: name → labels → value."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RoundCollector(store.current))
    text = generate_latest(registry).decode()
    out: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def series(scraped: dict[str, dict[Labels, float]], name: str,
           **labels: str) -> dict[Labels, float]:
    wanted = set(labels.items())
    return {k: v for k, v in scraped.get(PREFIX + name, {}).items() if wanted <= set(k)}


def value(scraped: dict[str, dict[Labels, float]], name: str, **labels: str) -> float:
    found = series(scraped, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return next(iter(found.values()))


@pytest.fixture
def store() -> SnapshotStore:
    return SnapshotStore(make_config(), clock=lambda: 2000.0)


# --- the table -----------------------------------------------------------------------------------


def test_metric_names_are_prefixed_unique_and_in_base_units() -> None:
    names = [spec.name for spec in METRICS]
    assert len(names) == len(set(names))
    for spec in METRICS:
        assert re.fullmatch(r"routewatch_[a-z_]+", spec.name), spec.name
        assert spec.help.endswith("."), spec.name
        assert not re.search(r"_(ms|milliseconds|minutes)\b", spec.name)
        if spec.unit in ("seconds", "unix seconds"):
            assert spec.name.endswith("_seconds"), spec.name
        assert (spec.type is MetricType.COUNTER) == spec.name.endswith("_total")
        assert all(re.fullmatch(r"[a-z]+", label) for label in spec.labels)


def test_design_core_set_is_defined() -> None:
    core = {
        "round_success": ("probe", "service"),
        "dns_lookup_seconds": ("probe", "service", "resolver"),
        "region_latency_seconds": ("probe", "service", "region"),
        "http_phase_seconds": ("probe", "service", "path", "phase"),
        "served_region": ("probe", "service", "path", "region"),
        "expected_region": ("probe", "service", "path", "region"),
        "routing_state": ("probe", "service", "path", "state"),
        "routing_penalty_seconds": ("probe", "service", "path"),
        "cdn_upstream_seconds": ("probe", "service", "phase"),
        "last_round_timestamp_seconds": ("probe", "service"),
        "probe_errors_total": ("probe", "service", "path", "reason"),
        "routing_state_streak": ("probe", "service", "path"),
        "data_path_local": ("probe", "service", "path"),
    }
    # every per-round series is per vantage point and service (DESIGN.md's set, plus service)
    for name, labels in core.items():
        assert metric(name).labels == labels


def test_registering_runs_nothing() -> None:
    def explode() -> Snapshot:
        raise AssertionError("describe() must not read a snapshot")

    registry = CollectorRegistry(auto_describe=True)
    registry.register(RoundCollector(explode))
    assert "routewatch_routing_state" in registry._names_to_collectors


# --- what a round exports ------------------------------------------------------------------------


def test_ok_round_exports_regions_paths_and_one_hot_states(store: SnapshotStore) -> None:
    store.publish(vantage_round())
    got = scrape(store)
    assert value(got, "round_success", probe="nyc") == 1
    assert value(got, "last_round_timestamp_seconds", probe="nyc") == 2000.0
    assert value(got, "round_interval_seconds", probe="nyc") == 10
    assert value(got, "rounds_total", probe="nyc") == 1
    assert value(got, "region_latency_seconds", probe="nyc", region="us-east-1") == 0.008
    assert value(got, "region_healthy", probe="nyc", region="eu-west-1") == 1
    assert value(got, "dns_lookup_seconds", probe="nyc", resolver="authoritative") == 0.008
    for path in ("dns", "origin", "cdn"):
        states = series(got, "routing_state", probe="nyc", path=path)
        assert {dict(k)["state"]: v for k, v in states.items()} == {
            "ok": 1, "failover": 0, "misrouted": 0, "unknown": 0}
        served = series(got, "served_region", probe="nyc", path=path)
        assert {dict(k)["region"]: v for k, v in served.items()} == {
            "us-east-1": 1, "eu-west-1": 0, "other": 0}
        assert value(got, "routing_penalty_seconds", probe="nyc", path=path) == 0
        assert value(got, "routing_state_streak", probe="nyc", path=path) == 1
    assert len(series(got, "http_phase_seconds", probe="nyc", path="origin")) == len(HTTP_PHASES)
    assert series(got, "http_phase_seconds", path="dns") == {}
    assert value(got, "cdn_cache_hit", probe="nyc", request="first") == 0
    assert value(got, "cdn_cache_hit", probe="nyc", request="repeat") == 1
    assert value(got, "cdn_upstream_seconds", probe="nyc", phase="fbl") == 0.008
    assert value(got, "cdn_upstream_seconds", probe="nyc", phase="connect") == 0
    assert value(got, "cdn_pop", probe="nyc", pop="IAD89-C1") == 1
    assert value(got, "routing_hysteresis_rounds") == 3
    assert value(got, "config_last_reload_successful") == 1
    assert series(got, "round_success", probe="dub") == {}  # dub has not finished a round


def test_failed_round_still_exports_every_phase_and_state(store: SnapshotStore) -> None:
    store.publish(failed_round())
    got = scrape(store)
    assert value(got, "round_success", probe="nyc") == 0
    for path in ("origin", "cdn"):
        phases = series(got, "http_phase_seconds", probe="nyc", path=path)
        assert {dict(k)["phase"] for k in phases} == set(HTTP_PHASES)
        assert set(phases.values()) == {0.0}
    for path in ("dns", "origin", "cdn"):
        states = series(got, "routing_state", probe="nyc", path=path)
        assert {dict(k)["state"]: v for k, v in states.items()} == {
            "ok": 0, "failover": 0, "misrouted": 0, "unknown": 1}
        assert set(series(got, "served_region", probe="nyc", path=path).values()) == {0.0}
    assert series(got, "routing_penalty_seconds") == {}
    assert series(got, "region_latency_seconds") == {}
    assert value(got, "region_healthy", probe="nyc", region="us-east-1") == 0
    assert len(series(got, "cdn_upstream_seconds", probe="nyc")) == 4
    assert series(got, "cdn_pop") == {}


def test_label_values_are_bounded(store: SnapshotStore) -> None:
    store.publish(vantage_round(
        state=RoutingState.UNKNOWN, served="xx-nowhere-9",
        errors=(ErrorRecord("origin", "Weird Reason!", "x"),
                ErrorRecord("baseline:eu-west-1", "timeout", "x"),
                ErrorRecord("somewhere", "timeout", "x")),
        cdn_details=CdnDetails("<script>", "hit", None, {}, None, None),
    ))
    got = scrape(store)
    assert value(got, "served_region", probe="nyc", path="origin", region="other") == 1
    assert value(got, "cdn_pop", probe="nyc", pop="other") == 1
    errors = {(dict(k)["path"], dict(k)["reason"]): v
              for k, v in series(got, "probe_errors_total", probe="nyc").items()}
    assert errors == {("origin", "other"): 1, ("baseline", "timeout"): 1, ("other", "timeout"): 1}
    regions = {dict(k)["region"] for k in series(got, "served_region") | series(
        got, "expected_region") | series(got, "region_healthy")}
    assert regions <= {"us-east-1", "eu-west-1", "other"}


def test_errors_counter_accumulates_across_rounds(store: SnapshotStore) -> None:
    timeout = (ErrorRecord("baseline", "timeout", "eu-west-1: timed out"),)
    for _ in range(3):
        store.publish(vantage_round(errors=timeout))
    store.publish(vantage_round())
    got = scrape(store)
    assert value(got, "probe_errors_total", probe="nyc", path="baseline", reason="timeout") == 3
    assert value(got, "rounds_total", probe="nyc") == 4
    text = generate_latest(_registry(store)).decode()
    assert "# TYPE routewatch_probe_errors_total counter" in text


def _registry(store: SnapshotStore) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(RoundCollector(store.current))
    return registry


def test_stable_state_follows_hysteresis_and_streak_is_exported(store: SnapshotStore) -> None:
    store.publish(vantage_round())
    store.publish(vantage_round(state=RoutingState.MISROUTED, served="eu-west-1", penalty=0.067))
    got = scrape(store)
    assert value(got, "routing_state", probe="nyc", path="origin", state="ok") == 1
    assert value(got, "routing_observed_state", probe="nyc", path="origin",
                 state="misrouted") == 1
    assert value(got, "routing_state_streak", probe="nyc", path="origin") == 1
    assert value(got, "served_region", probe="nyc", path="origin", region="eu-west-1") == 1
    assert value(got, "routing_penalty_seconds", probe="nyc", path="origin") == 0.067
    for _ in range(2):
        store.publish(vantage_round(state=RoutingState.MISROUTED, served="eu-west-1",
                                    penalty=0.067))
    got = scrape(store)
    assert value(got, "routing_state", probe="nyc", path="origin", state="misrouted") == 1
    assert value(got, "routing_state_streak", probe="nyc", path="origin") == 3


def test_data_path_locality_from_the_health_json(store: SnapshotStore) -> None:
    store.publish(vantage_round(origin_details=OriginDetails(
        DataPath.observed("eu-west-1", "us-east-1", 0.0031))))
    store.publish(vantage_round("dub", origin_details=OriginDetails(
        DataPath.observed("us-east-1", "us-east-1"))))
    got = scrape(store)
    assert value(got, "data_path_local", probe="nyc", path="origin") == 0
    assert value(got, "data_path_local", probe="dub", path="origin") == 1
    assert value(got, "data_region", probe="nyc", path="origin", region="eu-west-1") == 1
    assert value(got, "data_read_seconds", probe="nyc", path="origin") == 0.0031
    assert series(got, "data_path_local", path="cdn") == {}


def test_removed_vantage_point_vanishes_and_others_keep_history(store: SnapshotStore) -> None:
    store.publish(vantage_round("nyc"))
    store.publish(vantage_round("dub"))
    store.publish(vantage_round("dub"))
    store.reconfigure(make_config(CONFIG_YAML.replace("  nyc: {resolver: 127.0.0.53}\n", "")))
    got = scrape(store)
    assert series(got, "round_success", probe="nyc") == {}
    assert value(got, "rounds_total", probe="dub") == 2
    assert store.publish(vantage_round("nyc")) is None  # a round in flight when nyc was removed
    assert series(scrape(store), "round_success", probe="nyc") == {}


def test_http_status_of_origin_and_cdn_is_exported_and_absent_without_a_response(
        store: SnapshotStore) -> None:
    store.publish(vantage_round(origin_status=503, cdn_status=200))
    store.publish(vantage_round("dub", origin_status=None))
    got = scrape(store)
    assert value(got, "http_status_code", probe="nyc", path="origin") == 503
    assert value(got, "http_status_code", probe="nyc", path="cdn") == 200
    assert series(got, "http_status_code", probe="nyc", path="dns") == {}
    assert series(got, "http_status_code", probe="dub", path="origin") == {}
    assert value(got, "http_status_code", probe="dub", path="cdn") == 200
    store.publish(failed_round())
    assert series(scrape(store), "http_status_code", probe="nyc") == {}


def test_path_success_is_one_for_a_judged_path_and_zero_for_unknown(store: SnapshotStore) -> None:
    store.publish(vantage_round(state=RoutingState.MISROUTED, served="eu-west-1", penalty=0.05))
    store.publish(vantage_round("dub", state=RoutingState.UNKNOWN))
    got = scrape(store)
    for path in ("dns", "origin", "cdn"):
        assert value(got, "path_success", probe="nyc", path=path) == 1  # misrouted, but judged
        assert value(got, "path_success", probe="dub", path=path) == 0
    store.publish(failed_round())  # a round with no paths: every path 0, the series stay
    assert {v for v in series(scrape(store), "path_success", probe="nyc").values()} == {0.0}


def test_build_info_carries_the_version(store: SnapshotStore) -> None:
    got = scrape(store)  # before any round too
    assert series(got, "build_info") == {(("version", __version__),): 1.0}
    text = generate_latest(_registry(store)).decode()
    assert f'routewatch_build_info{{version="{__version__}"}} 1.0' in text


def test_failed_reload_is_exported(store: SnapshotStore) -> None:
    store.reload_failed()
    assert value(scrape(store), "config_last_reload_successful") == 0


def test_cdn_metrics_absent_without_a_cdn_name() -> None:
    store = SnapshotStore(make_config(CONFIG_YAML.replace(", cdn_name: app.example.com", "")))
    store.publish(vantage_round())
    got = scrape(store)
    assert series(got, "cdn_cache_hit") == {}
    assert series(got, "routing_state", path="cdn") == {}
    assert len(series(got, "routing_state", probe="nyc")) == 2 * 4


def test_single_round_snapshot_for_stateless_exporters() -> None:
    entry = VantageSnapshot.single(vantage_round(state=RoutingState.MISROUTED, served="eu-west-1"))
    space = SnapshotStore(make_config()).current().space
    samples = {(s.spec.name, s.labels): s.value for s in vantage_samples(space, entry)}
    assert samples[("routewatch_routing_state", ("nyc", "default", "origin", "misrouted"))] == 1


def test_samples_follow_the_table_order(store: SnapshotStore) -> None:
    store.publish(vantage_round())
    grouped = snapshot_samples(store.current())
    assert list(grouped) == list(METRICS)
    for spec, samples in grouped.items():
        assert all(len(s.labels) == len(spec.labels) for s in samples)


# --- serving -------------------------------------------------------------------------------------


@pytest.fixture
def server(store: SnapshotStore) -> Iterator[MetricsServer]:
    server = MetricsServer(_registry(store), lambda: health_report(store.current(), 2000.0),
                           "127.0.0.1:0")
    server.start()
    yield server
    server.stop()


def test_server_answers_metrics_healthz_and_404(server: MetricsServer,
                                                store: SnapshotStore) -> None:
    assert server.address[0] == "127.0.0.1"
    assert server.address[1] > 0
    store.publish(vantage_round())
    status, body = get(server.url + "/metrics")
    assert status == 200
    assert 'routewatch_round_success{probe="nyc",service="default"} 1.0' in body
    assert get(server.url + "/healthz")[0] == 200
    assert get(server.url + "/nope")[0] == 404


def test_healthz_turns_unhealthy_after_three_intervals_without_a_round() -> None:
    now = [1000.0]
    store = SnapshotStore(make_config(), clock=lambda: now[0])
    assert health_report(store.current(), 1029.0).healthy  # starting: 3 intervals of grace
    assert not health_report(store.current(), 1031.0).healthy
    store.publish(vantage_round())
    assert health_report(store.current(), 1030.0).healthy
    report = health_report(store.current(), 1031.0)
    assert not report.healthy
    assert report.document["status"] == "stale"
    now[0] = 1030.5
    store.publish(vantage_round("dub"))  # any vantage point finishing keeps the process healthy
    assert health_report(store.current(), 1031.0).healthy


def test_a_scrape_never_mixes_two_rounds_of_one_vantage_point(server: MetricsServer,
                                                              store: SnapshotStore) -> None:
    """Rounds are published while scrapes run; every value of a round carries its number."""
    rounds = 400
    done = threading.Event()

    def publish() -> None:
        for n in range(1, rounds + 1):
            for name in ("nyc", "dub"):
                store.publish(vantage_round(name, latency=n / 1000, penalty=n / 1000,
                                         errors=(ErrorRecord("dns", "dns_timeout", ""),)))
        done.set()

    writer = threading.Thread(target=publish)
    writer.start()
    scrapes = mixed = 0
    while scrapes < 2000 and not (done.is_set() and scrapes > 10):
        body = get(server.url + "/metrics")[1]
        scrapes += 1
        for name in ("nyc", "dub"):
            seen = _round_numbers(body, name)
            if len(seen) > 1:
                mixed += 1
    writer.join()
    assert scrapes > 10
    assert mixed == 0


def _round_numbers(body: str, probe: str) -> set[int]:
    """The round number each round-derived series of one vantage point shows in a scrape."""
    seen: set[int] = set()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.labels.get("probe") != probe:
                continue
            if sample.name in ("routewatch_region_latency_seconds",
                               "routewatch_http_phase_seconds",
                               "routewatch_round_duration_seconds",
                               "routewatch_routing_penalty_seconds",
                               "routewatch_dns_lookup_seconds"):
                seen.add(round(sample.value * 1000) if sample.labels.get("region") != "eu-west-1"
                         else round(sample.value * 500))
            elif sample.name in ("routewatch_rounds_total", "routewatch_probe_errors_total"):
                seen.add(int(sample.value))
    return seen


def test_loop_lag_is_exported_when_the_round_measured_it(store: SnapshotStore) -> None:
    store.publish(dataclasses.replace(vantage_round(), loop_lag_seconds=0.042))
    store.publish(vantage_round("dub"))  # a round without the figure (an old regional probe)
    got = scrape(store)
    assert value(got, "loop_lag_seconds", probe="nyc") == pytest.approx(0.042)
    assert series(got, "loop_lag_seconds", probe="dub") == {}
