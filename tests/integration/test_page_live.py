"""``serve``'s ``/``: the live routing page of the snapshot, rendered once per snapshot."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest
from page_dom import cells, misrouted_paths, parse_html
from prometheus_client import CollectorRegistry
from rounds import vantage_round
from test_metrics import make_config

from monitor.core.model import RoutingState
from monitor.exporters.prometheus import MetricsServer, RoundCollector, health_report
from monitor.metrics import SnapshotStore
from monitor.page import page_view
from monitor.page.live import LivePage, live_options, snapshot_document


class Clock:
    def __init__(self, now: float = 2000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> SnapshotStore:
    return SnapshotStore(make_config(), clock=clock)


def test_renders_once_per_snapshot_and_only_when_asked(store: SnapshotStore,
                                                       clock: Clock) -> None:
    page = LivePage(store.current, clock=clock)
    store.publish(vantage_round("nyc"))
    assert page.renders == 0  # publishing (the probing loop) never renders
    first = page.body()
    clock.now += 7
    second = page.body()
    assert page.renders == 1
    assert b'data-served-at="2000.000"' in first
    assert b'data-served-at="2007.000"' in second
    assert first.replace(b'served-at="2000.000"', b"") == \
        second.replace(b'served-at="2007.000"', b"")
    store.publish(vantage_round("dub", state=RoutingState.MISROUTED, served="eu-west-1",
                             penalty=0.05))
    root = parse_html(page.body().decode())
    assert page.renders == 2
    assert len(cells(root)) == 2 * 2
    assert misrouted_paths(root) == {("dub", "dns"), ("dub", "origin"), ("dub", "cdn")}


def test_snapshot_document_adds_finish_time_and_stable_state(store: SnapshotStore,
                                                             clock: Clock) -> None:
    store.publish(vantage_round("nyc"))
    clock.now += 10
    store.publish(vantage_round("nyc", state=RoutingState.MISROUTED, served="eu-west-1",
                             penalty=0.05))
    document = snapshot_document(store.current())
    [nyc] = document["vantage_points"]
    assert nyc["finished_at"] == "1970-01-01T00:33:30.000+00:00"
    dns = nyc["paths"][0]
    assert (dns["state"], dns["stable_state"], dns["streak"], dns["rounds_required"]) == \
        ("misrouted", "ok", 1, 3)
    view = page_view(document)
    assert view.vantage_points[0].finished_at == 2010.0
    page = LivePage(store.current, clock=clock).body().decode()
    assert "stable: ok, 1/3 rounds" in page


def test_refresh_follows_the_interval_within_bounds(store: SnapshotStore) -> None:
    options = live_options(store.current())
    assert (options.refresh_seconds, options.stale_after_seconds) == (10, 30.0)
    fast = SnapshotStore(replace(make_config(), serve=replace(make_config().serve,
                                                              interval_s=1.0)))
    assert live_options(fast.current()).refresh_seconds == 5


def test_before_the_first_round(store: SnapshotStore, clock: Clock) -> None:
    page = LivePage(store.current, clock=clock).body().decode()
    assert "no round yet" in page
    assert cells(parse_html(page)) == []


@pytest.fixture
def server(store: SnapshotStore, clock: Clock) -> Iterator[tuple[MetricsServer, LivePage]]:
    registry = CollectorRegistry()
    registry.register(RoundCollector(store.current))
    page = LivePage(store.current, clock=clock)
    server = MetricsServer(registry, lambda: health_report(store.current(), clock()),
                           "127.0.0.1:0", page=page.body)
    server.start()
    yield server, page
    server.stop()


def _get(url: str) -> tuple[str, str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return (response.headers["Content-Type"], response.headers["Cache-Control"],
                response.read().decode())


def test_served_at_root_while_rounds_are_published(
        server: tuple[MetricsServer, LivePage], store: SnapshotStore) -> None:
    metrics_server, page = server
    store.publish(vantage_round("nyc"))
    content_type, cache, body = _get(metrics_server.url + "/")
    assert content_type == "text/html; charset=utf-8"
    assert cache == "no-store"
    assert len(cells(parse_html(body))) == 2
    assert 'href="/metrics"' in body
    assert 'href="/healthz"' in body

    publishes = 50
    done = threading.Event()

    def publish() -> None:
        for n in range(publishes):
            store.publish(vantage_round("dub", latency=(n + 1) / 1000))
        done.set()

    writer = threading.Thread(target=publish)
    writer.start()
    requests = 0
    while requests < 500 and not (done.is_set() and requests > 5):
        body = _get(metrics_server.url + "/")[2]
        requests += 1
        assert body.endswith("</html>\n")
    writer.join()
    assert page.renders <= publishes + 1  # never more than once per snapshot
    assert page.renders <= requests + 1


def test_without_a_page_the_index_links_metrics(store: SnapshotStore) -> None:
    server = MetricsServer(CollectorRegistry(), lambda: health_report(store.current(), 0.0),
                           "127.0.0.1:0")
    server.start()
    try:
        body = _get(server.url + "/")[2]
    finally:
        server.stop()
    assert '<a href="/metrics">' in body
