"""``serve``'s ``/``: the routing page of the current snapshot, rendered once per snapshot.

The page is rendered lazily on the HTTP server's thread, the first time it is asked for after a
snapshot changed, never on the probing loop (rendering beside timed reads moves them). Every
later request for the same snapshot gets the cached bytes; only the server's clock is spliced in
(``data-served-at``), from which the page's script ticks each vantage point's age.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.core.model import RoundResult
from monitor.core.report import round_document
from monitor.exporters.prometheus import STALE_INTERVALS
from monitor.metrics import Snapshot
from monitor.page.render import LiveOptions, render_page

__all__ = ["MAX_REFRESH_S", "MIN_REFRESH_S", "LivePage", "live_options", "snapshot_document"]

MIN_REFRESH_S = 5
MAX_REFRESH_S = 60
"""The page reloads every round interval, within these bounds."""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def snapshot_document(snapshot: Snapshot) -> dict[str, Any]:
    """The round document of every vantage point's latest round (config order), plus what
    serving knows: when each round finished and each path's stable state (hysteresis)."""
    entries = snapshot.entries()
    results = tuple(entry.result for entry in entries)
    started = min((r.started_at for r in results), default=snapshot.started_at)
    finished = max((entry.finished_at for entry in entries), default=started)
    document = round_document(RoundResult(results, started, max(0.0, finished - started)))
    for vantage_doc, entry in zip(document["vantage_points"], entries, strict=True):
        vantage_doc["finished_at"] = _iso(entry.finished_at)
        routing = {path.value: state for path, state in entry.routing.items()}
        for path_doc in vantage_doc["paths"]:
            state = routing.get(path_doc["path"])
            if state is not None:
                path_doc.update(stable_state=state.stable.value, streak=state.streak,
                                rounds_required=state.rounds_required)
    return document


def live_options(snapshot: Snapshot) -> LiveOptions:
    interval = snapshot.space.interval_s
    refresh = min(MAX_REFRESH_S, max(MIN_REFRESH_S, round(interval)))
    return LiveOptions(refresh_seconds=refresh, stale_after_seconds=STALE_INTERVALS * interval)


class LivePage:
    """``body()`` is the page of ``snapshot()`` as it is now; renders only when it changed."""

    def __init__(self, snapshot: Callable[[], Snapshot], *,
                 clock: Callable[[], float] = time.time) -> None:
        self._snapshot = snapshot
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[Snapshot, bytes, bytes] | None = None
        self.renders = 0

    def body(self) -> bytes:
        snapshot = self._snapshot()
        with self._lock:  # concurrent requests for a new snapshot render it once
            cached = self._cached
            if cached is None or cached[0] is not snapshot:
                cached = self._cached = (snapshot, *self._render(snapshot))
        _, head, tail = cached
        return head + f"{self._clock():.3f}".encode() + tail

    def _render(self, snapshot: Snapshot) -> tuple[bytes, bytes]:
        now = self._clock()
        page = render_page(snapshot_document(snapshot), now=now, live=live_options(snapshot))
        self.renders += 1
        head, marker, tail = page.partition(f'data-served-at="{now:.3f}"')
        if not marker:
            raise RuntimeError("the renderer wrote no data-served-at on <html>")
        return (head + 'data-served-at="').encode(), ('"' + tail).encode()
