"""The round document (``check --json``) read into the frozen, typed view the page draws.

The page is built from the document, not from the result model, so it draws whatever produced a
document: a local round, a regional probe's answer, the live snapshot. Every string here came from
the network or a file and is escaped when drawn (:mod:`monitor.page.render`), never here.
Optional keys the live page adds: a vantage point's ``finished_at`` and a path's
``stable_state``, ``streak`` and ``rounds_required`` (hysteresis).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.config import DEFAULT_SERVICE
from probes.errors import RoutewatchError
from probes.records import record

__all__ = [
    "PageDocumentError",
    "PageView",
    "PathView",
    "RegionCell",
    "RemoteFailure",
    "ServiceView",
    "VantageView",
    "page_view",
    "worst_counted",
]


class PageDocumentError(RoutewatchError, ValueError):
    """The document is not a routewatch round document (its ``where`` says which part)."""


@record
class RegionCell:
    """One cell of the latency matrix as the document gives it."""

    region: str
    latency_seconds: float | None
    healthy: bool
    reason: str | None = None
    message: str | None = None
    tls_version: str | None = None
    cert_not_after: float | None = None  # Unix seconds: the earliest expiry presented
    family: str | None = None  # ipv4 / ipv6 in a round with IPv6 results


@record
class PathView:
    """One path's verdict and the evidence the page shows beside it."""

    path: str
    state: str
    served_region: str | None
    expected_region: str | None
    penalty_seconds: float | None
    reason: str | None
    detail: str
    latency_seconds: float | None
    status: int | None
    conflicts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    pop: str | None = None
    cache: str | None = None
    cache_repeat: str | None = None
    upstream_first_byte_seconds: float | None = None
    data_region: str | None = None
    data_path_local: bool | None = None
    stable_state: str | None = None
    streak: int | None = None
    rounds_required: int | None = None
    family: str | None = None  # ipv4 / ipv6, in a round with IPv6 results

    @property
    def label(self) -> str:
        """The path's name as shown: with its address family when the round has one."""
        return f"{self.path} {self.family}" if self.family else self.path


@record
class VantageView:
    """One vantage point's latest round."""

    name: str
    success: bool
    started_at: float
    duration_seconds: float
    finished_at: float
    regions: tuple[RegionCell, ...]
    paths: tuple[PathView, ...]
    errors: tuple[tuple[str, str, str], ...] = ()  # (where, reason, message)
    service: str | None = None  # one of several services (None: the configuration's one)
    family: str | None = None  # ipv4 / ipv6 in a round with IPv6 results (a row per family)

    @property
    def label(self) -> str:
        """``fra``, ``fra · api`` for one of several services, ``fra · ipv6`` for one address
        family of a dual-stack round."""
        return " · ".join(part for part in (self.name, self.service, self.family) if part)

    @property
    def has_problem(self) -> bool:
        """The round failed or a path is not ``ok``."""
        return not self.success or any(p.state != "ok" for p in self.paths)

    def cell(self, region: str) -> RegionCell | None:
        return next((c for c in self.regions if c.region == region), None)

    @property
    def closest_region(self) -> str | None:
        """The healthy region with the lowest measured round trip (the matrix's ★)."""
        measured = [(c.latency_seconds, c.region) for c in self.regions
                    if c.healthy and c.latency_seconds is not None]
        return min(measured)[1] if measured else None


@record
class RemoteFailure:
    """A regional probe that did not answer (``check --remote``)."""

    region: str
    reason: str
    message: str


@record
class ServiceView:
    """One of several services: how many of its paths ended in each state."""

    name: str
    summary: tuple[tuple[str, int], ...]

    @property
    def worst(self) -> str:
        return worst_counted(dict(self.summary), "ok")


_WORST_FIRST = ("misrouted", "unknown", "failover")  # the states that are not ok, worst first


def worst_counted(counts: Mapping[str, int], default: str) -> str:
    """The worst state that is not ok and has a count, else ``default``."""
    return next((state for state in _WORST_FIRST if counts.get(state)), default)


@record
class PageView:
    """The whole round: what the page draws."""

    version: str | None
    started_at: float | None
    duration_seconds: float | None
    summary: tuple[tuple[str, int], ...]
    vantage_points: tuple[VantageView, ...]
    remote_failures: tuple[RemoteFailure, ...] = ()
    services: tuple[ServiceView, ...] = ()  # several services only

    @property
    def regions(self) -> tuple[str, ...]:
        """The matrix's columns: every region a vantage point measured, in first-seen order."""
        seen: dict[str, None] = {}
        for vantage in self.vantage_points:
            seen.update((cell.region, None) for cell in vantage.regions)
        return tuple(seen)


# --- reading -------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return ()
    return tuple(str(item) for item in value)


def _timestamp(value: Any, where: str) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise PageDocumentError(f"{where}: bad timestamp {value!r}") from None


def _optional_timestamp(value: Any, where: str) -> float | None:
    return None if value is None else _timestamp(value, where)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PageDocumentError(f"{where}: not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PageDocumentError(f"{where}: not a list")
    return value


def _path(item: Any, where: str) -> PathView:
    document = _mapping(item, where)
    if "path" not in document or "state" not in document:
        raise PageDocumentError(f"{where}: needs 'path' and 'state'")
    attribution = document.get("attribution")
    conflicts = _texts(attribution.get("conflicts")) if isinstance(attribution, Mapping) else ()
    timing = document.get("server_timing")
    upstream = _seconds(timing.get("cdn-upstream-fbl")) if isinstance(timing, Mapping) else None
    local = document.get("data_path_local")
    return PathView(
        path=str(document["path"]),
        state=str(document["state"]),
        served_region=_text(document.get("served_region")),
        expected_region=_text(document.get("expected_region")),
        penalty_seconds=_seconds(document.get("penalty_seconds")),
        reason=_text(document.get("reason")),
        detail=str(document.get("detail") or ""),
        latency_seconds=_seconds(document.get("latency_seconds")),
        status=_count(document.get("status")),
        conflicts=conflicts,
        notes=_texts(document.get("notes")),
        pop=_text(document.get("pop")),
        cache=_text(document.get("cache")),
        cache_repeat=_text(document.get("cache_repeat")),
        upstream_first_byte_seconds=upstream,
        data_region=_text(document.get("dynamodb_region")),
        data_path_local=local if isinstance(local, bool) else None,
        stable_state=_text(document.get("stable_state")),
        streak=_count(document.get("streak")),
        rounds_required=_count(document.get("rounds_required")),
        family=_text(document.get("family")),  # only in a round with IPv6 results
    )


def _region(item: Any, where: str) -> RegionCell:
    document = _mapping(item, where)
    if "region" not in document:
        raise PageDocumentError(f"{where}: needs 'region'")
    return RegionCell(str(document["region"]), _seconds(document.get("latency_seconds")),
                      document.get("healthy") is True, _text(document.get("reason")),
                      _text(document.get("message")), _text(document.get("tls_version")),
                      _optional_timestamp(document.get("cert_not_after"),
                                          f"{where}.cert_not_after"),
                      _text(document.get("family")))


def _vantages(item: Any, where: str) -> list[VantageView]:
    """A vantage point's round as the page draws it: one view, or one per address family when
    the round has IPv6 results (each family's latency row and paths side by side; the round's
    errors on the first)."""
    whole = _vantage(item, where)
    families = list(dict.fromkeys(cell.family for cell in whole.regions))
    if len(families) < 2:
        return [whole]
    return [dataclasses.replace(
        whole, family=family,
        regions=tuple(cell for cell in whole.regions if cell.family == family),
        paths=tuple(p for p in whole.paths if (p.family or families[0]) == family),
        errors=whole.errors if index == 0 else ())
        for index, family in enumerate(families)]


def _vantage(item: Any, where: str) -> VantageView:
    document = _mapping(item, where)
    if "name" not in document:
        raise PageDocumentError(f"{where}: needs 'name'")
    started_at = _timestamp(document.get("started_at"), f"{where}.started_at")
    duration = _seconds(document.get("duration_seconds")) or 0.0
    finished = document.get("finished_at")
    finished_at = (started_at + duration if finished is None
                   else _timestamp(finished, f"{where}.finished_at"))
    regions = _list(document.get("regions", []), f"{where}.regions")
    paths = _list(document.get("paths", []), f"{where}.paths")
    errors = [e for e in _list(document.get("errors", []), f"{where}.errors")
              if isinstance(e, Mapping)]
    return VantageView(
        name=str(document["name"]),
        success=document.get("success", True) is True,
        started_at=started_at,
        duration_seconds=duration,
        finished_at=finished_at,
        regions=tuple(_region(r, f"{where}.regions[{i}]") for i, r in enumerate(regions)),
        paths=tuple(_path(p, f"{where}.paths[{i}]") for i, p in enumerate(paths)),
        errors=tuple((str(e.get("path", "")), str(e.get("reason", "")), str(e.get("message", "")))
                     for e in errors),
        service=_service(document.get("service")),
    )


def _service(value: Any) -> str | None:
    """A service's name as the page shows it; the singular ``service:`` (``default``) and an
    older document without one are not named."""
    return None if value in (None, DEFAULT_SERVICE) else str(value)


def _counts(summary: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(summary, Mapping):
        return ()
    return tuple((str(state), number) for state, value in summary.items()
                 if (number := _count(value)) is not None)


def page_view(document: Any) -> PageView:
    """Read a round document; :class:`PageDocumentError` says what is missing or malformed."""
    top = _mapping(document, "document")
    vantage_points = _list(top.get("vantage_points"), "document.vantage_points")
    services = [s for s in top.get("services") or () if isinstance(s, Mapping)
                and _service(s.get("name")) is not None]
    failures = [f for f in top.get("remote_failures") or () if isinstance(f, Mapping)]
    started = top.get("started_at")
    return PageView(
        version=_text(top.get("routewatch_version")),
        started_at=None if started is None else _timestamp(started, "document.started_at"),
        duration_seconds=_seconds(top.get("duration_seconds")),
        summary=_counts(top.get("summary")),
        vantage_points=tuple(view for i, v in enumerate(vantage_points)
                             for view in _vantages(v, f"vantage_points[{i}]")),
        remote_failures=tuple(RemoteFailure(str(f.get("region", "")), str(f.get("reason", "")),
                                            str(f.get("message", ""))) for f in failures),
        services=tuple(ServiceView(str(s["name"]), _counts(s.get("summary"))) for s in services),
    )
