"""Prometheus exposition: a custom collector over the latest snapshot, and the HTTP endpoint.

:class:`RoundCollector` reads one immutable :class:`~monitor.metrics.Snapshot` per scrape and
builds fresh metric families from it, so a scrape never mixes two rounds of one vantage point and a
removed vantage point simply vanishes. ``describe()`` returns the families without reading any
snapshot, so registering the collector runs nothing.

:class:`Exposition` renders a snapshot's exposition once, on the HTTP server's thread, for the
first scrape that asks after the snapshot changed; every other scrape of that snapshot is served
those bytes. Rendering never runs on the probing loop, nothing renders while nobody scrapes, and
a flood of scrapers costs the HTTP threads a copy, not a render each (rendering on every request
moved serve's measured latencies by tens of ms under 50 concurrent scrapers).

:class:`MetricsServer` serves ``/metrics`` and ``/healthz`` from its own thread: a scrape is
answered even while the event loop is busy with rounds (or stuck on a blackholed region).
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from monitor.config import DEFAULT_SERVICE, split_listen
from monitor.metrics import METRICS, MetricSpec, MetricType, Snapshot, snapshot_samples
from probes.records import record

__all__ = [
    "STALE_INTERVALS",
    "Exposition",
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


_Encoder = Callable[[Collector], bytes]
_FORMATS: dict[str, tuple[_Encoder, str]] = {
    "text": (generate_latest, CONTENT_TYPE_PLAIN_0_0_4),
    "openmetrics": (openmetrics.generate_latest, openmetrics.CONTENT_TYPE_LATEST),
}
"""The two formats served: OpenMetrics to whoever accepts it (Prometheus), else text 0.0.4 —
a fixed set, so no Accept header can make a scrape render a variant of its own."""
_EOF = b"# EOF\n"


def exposition_format(accept: str | None) -> str:
    """``openmetrics`` when the Accept header names it, else ``text``."""
    wanted = (part.split(";")[0].strip() for part in (accept or "").split(","))
    return "openmetrics" if "application/openmetrics-text" in wanted else "text"


class _Families(Collector):
    """Metric families built once, encoded in every format."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class Exposition:
    """``/metrics`` of the current snapshot: every format rendered once per snapshot, by the
    first scrape that asks for it (under a lock the others wait on, without the GIL), served as
    bytes; the process collector's few lines (CPU, memory, file descriptors) are read per scrape.

    Lazily rather than when a round is published: a render holds the GIL for milliseconds, which
    would land beside other vantage points' timed reads after every round even when nobody
    scrapes; lazily there is at most one render per snapshot that is scraped.
    """

    def __init__(self, snapshot: Callable[[], Snapshot], *,
                 process: CollectorRegistry | None = None) -> None:
        self._snapshot = snapshot
        self._process = process
        self._lock = threading.Lock()
        self._cached: tuple[Snapshot, dict[str, bytes]] | None = None
        self.renders = 0

    def body(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition for a request with this Accept header, and its content type."""
        kind = exposition_format(accept)
        encoder, content_type = _FORMATS[kind]
        rendered = self._rendered(self._snapshot())[kind]
        if self._process is not None:
            extra = encoder(self._process)
            rendered = (rendered.removesuffix(_EOF) + extra) if kind == "openmetrics" \
                else rendered + extra
        return rendered, content_type

    def _rendered(self, snapshot: Snapshot) -> dict[str, bytes]:
        cached = self._cached
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        with self._lock:
            cached = self._cached
            if cached is None or cached[0] is not snapshot:
                registry = CollectorRegistry(auto_describe=False)
                registry.register(_Families(list(RoundCollector(lambda: snapshot).collect())))
                cached = self._cached = (snapshot, {kind: encoder(registry) for kind, (encoder, _)
                                                    in _FORMATS.items()})
                self.renders += 1
            return cached[1]


@record
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
    rounds: dict[str, dict[str, Any]] = {}  # service → vantage point → its latest round
    for (service, name), entry in sorted(snapshot.vantage.items()):
        rounds.setdefault(service, {})[name] = {
            "finished_at": entry.finished_at, "success": entry.result.success,
            "rounds": entry.rounds_total}
    single = rounds.pop(DEFAULT_SERVICE, None)
    document: dict[str, Any] = {
        "status": "ok" if healthy else "stale",
        "last_round_finished_at": last,
        "seconds_since_last_round": round(since, 3),
        "stale_after_seconds": limit,
        "vantage_points": single if single is not None else _over_services(rounds),
    }
    if rounds:  # several services: each one's vantage points
        document["services"] = rounds
    document["config_last_reload_successful"] = snapshot.reload_successful
    return HealthReport(healthy, document)


def _over_services(rounds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each vantage point over every service: its latest round, successful only if every
    service's was (the same keys as a single service's entry)."""
    merged: dict[str, dict[str, Any]] = {}
    for entries in rounds.values():
        for name, entry in entries.items():
            seen = merged.setdefault(name, dict(entry))
            seen["finished_at"] = max(seen["finished_at"], entry["finished_at"])
            seen["success"] = seen["success"] and entry["success"]
            seen["rounds"] = max(seen["rounds"], entry["rounds"])
    return dict(sorted(merged.items()))


_INDEX = (b"<html><head><title>routewatch</title></head><body><h1>routewatch</h1>"
          b'<p><a href="/metrics">metrics</a> &middot; <a href="/healthz">healthz</a></p>'
          b"</body></html>")

WORKERS = 4
"""Threads answering requests. Few on purpose: every thread running Python competes with the
probing loop for the GIL, and a handful serves thousands of scrapes a second (pre-rendered
bytes); more scrapers wait in the queue, not on the loop."""
MAX_RESPONSES_PER_S = 200
"""The most requests answered per second, all workers together: a flood of scrapers can take a
bounded share of the CPU (Prometheus needs a few a minute); the rest wait in the queue."""
MAX_QUEUED = 256  # connections accepted but not yet answered; beyond, a new one is closed
MAX_REQUEST_HEAD = 8192  # bytes of request line and headers read, at most
CLIENT_TIMEOUT_S = 5.0  # a client that sends or reads nothing for this long is dropped

_Response = tuple[str, list[tuple[str, str]], bytes]
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class MetricsServer:
    """``/metrics`` (``exposition``'s cached bytes, else the registry rendered per request),
    ``/healthz`` (200 or 503 + JSON) and ``/``: ``page()`` (the routing page's HTML,
    :class:`monitor.page.live.LivePage`) or else a page of links.

    A small HTTP/1.1 server (``Connection: close``) of its own threads: one accepts, a fixed pool
    of :data:`WORKERS` answers, each request read within :data:`MAX_REQUEST_HEAD` bytes and
    :data:`CLIENT_TIMEOUT_S`, at most :data:`MAX_RESPONSES_PER_S` a second. Answering costs a few
    socket calls (which release the GIL) and little Python, so a flood of scrapers barely takes
    the GIL or the CPU from the probing loop (a thread-per-request WSGI server rendering every
    scrape did, and moved measured latencies).
    """

    def __init__(self, registry: CollectorRegistry, health: Callable[[], HealthReport],
                 listen: str = "127.0.0.1:9465", *,
                 page: Callable[[], bytes] | None = None,
                 exposition: Exposition | None = None) -> None:
        self._registry = registry
        self._exposition = exposition
        self._health = health
        self._page = page
        self._host, self._port = split_listen(listen)
        self._socket: socket.socket | None = None
        self._queue: queue.Queue[socket.socket | None] = queue.Queue(MAX_QUEUED)
        self._threads: list[threading.Thread] = []
        self._pace_lock = threading.Lock()
        self._next_slot = 0.0

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (the real port when listening on port 0)."""
        if self._socket is None:
            return self._host, self._port
        return self._host, int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._host, self._port))
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        self._socket = listener
        self._threads = [threading.Thread(target=self._accept, name="routewatch-http-accept",
                                          daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"routewatch-http-{n}",
                                           daemon=True) for n in range(WORKERS)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._socket.close()
        for _ in range(WORKERS):
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._socket, self._threads = None, []

    def _accept(self) -> None:
        listener = self._socket
        while listener is not None:  # until stop() shuts the socket
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            try:
                self._queue.put_nowait(connection)
            except queue.Full:  # a flood beyond the queue: shed it here, cheaply
                connection.close()

    def _work(self) -> None:
        while (connection := self._queue.get()) is not None:
            self._pace()
            # a client that went away or stalled gets nothing more
            with connection, contextlib.suppress(OSError):
                self._serve(connection)

    def _pace(self) -> None:
        """Wait for this request's slot: at most :data:`MAX_RESPONSES_PER_S` a second."""
        with self._pace_lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / MAX_RESPONSES_PER_S
        if slot > now:
            time.sleep(slot - now)  # releases the GIL and the CPU

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(CLIENT_TIMEOUT_S)
        head = b""
        while b"\r\n\r\n" not in head:
            if len(head) > MAX_REQUEST_HEAD:
                return self._send(connection, False, _plain(431, "request head too large"))
            chunk = connection.recv(4096)
            if not chunk:
                return None
            head += chunk
        lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        request = lines[0].split(b" ")
        if len(request) != 3 or not request[2].startswith(b"HTTP/"):
            return self._send(connection, False, _plain(400, "not an HTTP request"))
        method = request[0]
        if method not in (b"GET", b"HEAD"):
            return self._send(connection, False, _plain(405, "GET or HEAD only"))
        accept = next((line.split(b":", 1)[1].strip().decode("latin-1") for line in lines[1:]
                       if line.lower().startswith(b"accept:")), None)
        path = request[1].split(b"?", 1)[0].decode("latin-1")
        return self._send(connection, method == b"HEAD", self._respond(path, accept))

    def _respond(self, path: str, accept: str | None) -> _Response:
        if path == "/metrics":
            if self._exposition is not None:
                body, content_type = self._exposition.body(accept)
            else:
                encoder, content_type = _FORMATS[exposition_format(accept)]
                body = encoder(self._registry)
            return "200", [("Content-Type", content_type)], body
        if path == "/healthz":
            report = self._health()
            body = json.dumps(report.document, sort_keys=True).encode() + b"\n"
            return ("200" if report.healthy else "503"), [("Content-Type", "application/json")], \
                body
        if path == "/":
            page = _INDEX if self._page is None else self._page()
            return "200", [("Content-Type", "text/html; charset=utf-8"),
                           ("Cache-Control", "no-store")], page
        return _plain(404, "not found: try /metrics or /healthz")

    @staticmethod
    def _send(connection: socket.socket, head_only: bool, response: _Response) -> None:
        status, headers, body = response
        lines = [f"HTTP/1.1 {status} {_REASONS[int(status)]}", *(f"{k}: {v}" for k, v in headers),
                 f"Content-Length: {len(body)}", "Connection: close", "", ""]
        connection.sendall("\r\n".join(lines).encode("latin-1") + (b"" if head_only else body))
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_WR)


def _plain(status: int, text: str) -> _Response:
    return str(status), [("Content-Type", "text/plain")], (text + "\n").encode()
