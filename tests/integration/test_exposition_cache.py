"""``/metrics`` is rendered once per snapshot: any number of scrapes of the same snapshot are
served the same bytes without rendering again (counted, not timed); a new snapshot renders once
more. The bytes are what the collector exports, in the format the scraper accepts."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from unit.test_serve_scheduler import loaded, ok_round

import monitor.exporters.prometheus as prometheus
from monitor.exporters.prometheus import (
    Exposition,
    MetricsServer,
    RoundCollector,
    health_report,
)
from monitor.metrics import SnapshotStore

SCRAPERS = 20


@pytest.fixture
def store() -> SnapshotStore:
    config = loaded().config
    store = SnapshotStore(config)
    store.publish(ok_round(config, "nyc"))
    return store


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every call of the renderer (the collector's sample builder), whatever calls it."""
    calls: list[object] = []
    real = prometheus.snapshot_samples

    def counted(snapshot: object) -> object:
        calls.append(snapshot)
        return real(snapshot)  # type: ignore[arg-type]

    monkeypatch.setattr(prometheus, "snapshot_samples", counted)
    return calls


@pytest.fixture
def served(store: SnapshotStore) -> Iterator[tuple[MetricsServer, Exposition]]:
    process = CollectorRegistry()
    ProcessCollector(registry=process)
    exposition = Exposition(store.current, process=process)
    server = MetricsServer(CollectorRegistry(), lambda: health_report(store.current(), 0.0),
                           "127.0.0.1:0", exposition=exposition)
    server.start()
    try:
        yield server, exposition
    finally:
        server.stop()


def scrape(server: MetricsServer, accept: str | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(server.url + "/metrics",
                                     headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["Content-Type"], response.read()


def without_process(body: bytes) -> str:
    return "".join(line + "\n" for line in body.decode().splitlines()
                   if "process_" not in line and line != "# EOF")


def test_scrapes_of_one_snapshot_render_it_once(
        store: SnapshotStore, served: tuple[MetricsServer, Exposition],
        renders: list[object]) -> None:
    server, exposition = served
    with ThreadPoolExecutor(SCRAPERS) as pool:
        bodies = list(pool.map(lambda _: scrape(server)[1], range(SCRAPERS)))
    assert len(renders) == 1  # by the first scrape; the others wait for it, never render
    assert exposition.renders == 1
    renders.clear()
    expected = CollectorRegistry()
    expected.register(RoundCollector(store.current))
    assert {without_process(body) for body in bodies} == {generate_latest(expected).decode()}
    assert all(b"process_cpu_seconds_total" in body for body in bodies)  # read per scrape

    renders.clear()
    store.publish(ok_round(loaded().config, "dub"))
    assert renders == []  # nothing renders until someone scrapes
    for _ in range(5):
        assert b'probe="dub"' in scrape(server)[1]
    assert len(renders) == 1
    assert exposition.renders == 2


def test_prometheus_gets_openmetrics_with_one_eof(
        served: tuple[MetricsServer, Exposition], renders: list[object]) -> None:
    server, _ = served
    content_type, body = scrape(server, "application/openmetrics-text;version=1.0.0;q=0.5,"
                                        "text/plain;version=0.0.4;q=0.3,*/*;q=0.1")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert body.count(b"# EOF") == 1
    assert b"process_" in body
    text_type, text = scrape(server, "text/plain;version=0.0.4")
    assert text_type.startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(text.decode())}
    assert "routewatch_round_success" in names
    assert len(renders) == 1  # both formats come from the one render of the snapshot


def test_a_hostile_accept_header_renders_nothing_new(
        served: tuple[MetricsServer, Exposition], renders: list[object]) -> None:
    server, _ = served
    for version in range(10):
        content_type, _ = scrape(server, f"text/plain;version=1.0.{version};escaping=dots")
        assert content_type.startswith("text/plain; version=0.0.4")
    assert len(renders) == 1
