"""Prometheus exposition: a custom collector over the latest snapshot, and the HTTP endpoint.

:class:`RoundCollector` reads one immutable :class:`~monitor.metrics.Snapshot` per scrape and
builds fresh metric families from it, so a scrape never mixes two rounds of one vantage point and a
removed vantage point simply vanishes. ``describe()`` returns the families without reading any
snapshot, so registering the collector runs nothing.

:class:`MetricsServer` serves ``/metrics`` and ``/healthz`` from its own thread: a scrape is
answered even while the event loop is busy with rounds (or stuck on a blackholed region).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.config import split_listen
from monitor.metrics import METRICS, MetricSpec, MetricType, Snapshot, snapshot_samples

__all__ = [
    "STALE_INTERVALS",
    "HealthReport",
    "MetricsServer",
    "RoundCollector",
    "health_report",
]

STALE_INTERVALS = 3
"""``/healthz`` turns unhealthy when no round finished for this many intervals."""


def _family(spec: MetricSpec) -> GaugeMetricFamily | CounterMetricFamily:
    if spec.type is MetricType.COUNTER:
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


class RoundCollector(Collector):
    """Exports the snapshot that ``snapshot()`` returns at the moment of the scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return [_family(spec) for spec in METRICS]

    def collect(self) -> Iterable[Metric]:
        grouped = snapshot_samples(self._snapshot())
        for spec in METRICS:
            family = _family(spec)
            for sample in grouped[spec]:
                family.add_metric(list(sample.labels), sample.value)
            yield family


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    document: dict[str, Any]


def health_report(snapshot: Snapshot, now: float) -> HealthReport:
    """Healthy while some round finished within :data:`STALE_INTERVALS` intervals.

    Before the first round the start time stands in, so a fresh process is healthy for as long as
    its first rounds may take.
    """
    limit = STALE_INTERVALS * snapshot.space.interval_s
    last = snapshot.last_round_finished_at
    since = now - (last if last is not None else snapshot.started_at)
    healthy = since <= limit
    return HealthReport(healthy, {
        "status": "ok" if healthy else "stale",
        "last_round_finished_at": last,
        "seconds_since_last_round": round(since, 3),
        "stale_after_seconds": limit,
        "vantage_points": {
            name: {"finished_at": entry.finished_at, "success": entry.result.success,
                   "rounds": entry.rounds_total}
            for name, entry in sorted(snapshot.vantage.items())
        },
        "config_last_reload_successful": snapshot.reload_successful,
    })


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


_INDEX = (b"<html><head><title>routewatch</title></head><body><h1>routewatch</h1>"
          b'<p><a href="/metrics">metrics</a> &middot; <a href="/healthz">healthz</a></p>'
          b"</body></html>")

_StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class MetricsServer:
    """``/metrics`` (the registry), ``/healthz`` (200 or 503 + JSON) and ``/``: ``page()`` (the
    routing page's HTML, :class:`monitor.page.live.LivePage`) or else a page of links."""

    def __init__(self, registry: CollectorRegistry, health: Callable[[], HealthReport],
                 listen: str = "127.0.0.1:9465", *,
                 page: Callable[[], bytes] | None = None) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._health = health
        self._page = page
        self._host, self._port = split_listen(listen)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (the real port when listening on port 0)."""
        if self._server is None:
            return self._host, self._port
        return self._host, int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        server_class = _ThreadingServer6 if ":" in self._host else _ThreadingServer
        self._server = make_server(self._host, self._port, self._app, server_class,
                                   handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="routewatch-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def _app(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterator[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            yield from self._metrics_app(environ, start_response)
        elif path == "/healthz":
            report = self._health()
            body = json.dumps(report.document, sort_keys=True).encode() + b"\n"
            status = "200 OK" if report.healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))])
            yield body
        elif path == "/":
            page = _INDEX if self._page is None else self._page()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(page))),
                                      ("Cache-Control", "no-store")])
            yield page
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            yield b"not found: try /metrics or /healthz\n"

