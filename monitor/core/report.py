"""The round as a JSON document (``check --json``, the Lambda's answer) and the check exit code.

:func:`round_document` and :func:`round_from_document` are inverses, so a regional probe's answer
can be merged with the local round.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from monitor import __version__
from monitor.core.model import (
    Attribution,
    ErrorRecord,
    Path,
    PathResult,
    RegionLatency,
    RoundResult,
    RoutingState,
    RoutingVerdict,
    VantageRound,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_ROUTING_PROBLEM",
    "SCHEMA_VERSION",
    "DocumentError",
    "exit_code",
    "round_document",
    "round_from_document",
    "state_counts",
]

EXIT_OK = 0
EXIT_ROUTING_PROBLEM = 1
EXIT_ERROR = 2

SCHEMA_VERSION = 1
"""The document's shape (monitor/data/report.schema.json); bumped only by a change that breaks a
reader (a key removed, renamed or retyped), not by a key added."""

_CORE_PATH_KEYS = ("path", "state", "served_region", "expected_region", "penalty_seconds",
                   "reason", "detail", "latency_seconds", "phases", "address", "status",
                   "attribution", "notes")


class DocumentError(ValueError):
    """A round document (e.g. a regional probe's answer) that does not have the expected shape."""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def path_document(path: PathResult) -> dict[str, Any]:
    verdict = path.verdict
    attribution = path.attribution
    document: dict[str, Any] = {
        "path": path.path.value,
        "state": verdict.state.value,
        "served_region": verdict.served_region,
        "expected_region": verdict.expected_region,
        "penalty_seconds": verdict.penalty_seconds,
        "reason": verdict.reason,
        "detail": verdict.detail,
        "latency_seconds": path.latency_seconds,
        "phases": dict(path.phases),
        "address": path.address,
        "status": path.status,
        "attribution": None if attribution is None else {
            "region": attribution.region,
            "source": attribution.source,
            "conflicts": list(attribution.conflicts),
            "disputed": attribution.disputed,
        },
        "notes": list(path.notes),
    }
    document.update(path.extra)
    return document


def vantage_document(vantage: VantageRound) -> dict[str, Any]:
    return {
        "name": vantage.vantage,
        "success": vantage.success,
        "started_at": _iso(vantage.started_at),
        "duration_seconds": vantage.duration_seconds,
        "paths": [path_document(p) for p in vantage.paths],
        "regions": [
            {
                "region": r.region,
                "latency_seconds": r.latency_seconds,
                "healthy": r.healthy,
                "samples_seconds": list(r.samples_seconds),
                "reason": r.reason,
                "message": r.message,
            }
            for r in vantage.regions
        ],
        "dns": vantage.dns,
        "errors": [{"path": e.path, "reason": e.reason, "message": e.message}
                   for e in vantage.errors],
    }


def state_counts(result: RoundResult) -> dict[str, int]:
    counts = Counter(p.verdict.state.value for v in result.vantage_points for p in v.paths)
    return {state.value: counts.get(state.value, 0) for state in RoutingState}


def round_document(result: RoundResult, *, strict: bool = False) -> dict[str, Any]:
    """The JSON document of one round (documented in the README)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "routewatch_version": __version__,
        "started_at": _iso(result.started_at),
        "duration_seconds": result.duration_seconds,
        "exit_code": exit_code(result, strict=strict),
        "summary": state_counts(result),
        "vantage_points": [vantage_document(v) for v in result.vantage_points],
    }


def exit_code(result: RoundResult, *, strict: bool = False) -> int:
    """0 when every path is ok (or failover, unless strict); 1 for any routing problem; 2 when
    nothing could be measured from any vantage point (the check itself could not run)."""
    bad = {RoutingState.MISROUTED, RoutingState.UNKNOWN}
    if strict:
        bad.add(RoutingState.FAILOVER)
    if all(not any(r.healthy for r in v.regions) for v in result.vantage_points):
        return EXIT_ERROR
    problems = any(p.verdict.state in bad for v in result.vantage_points for p in v.paths)
    return EXIT_ROUTING_PROBLEM if problems else EXIT_OK


# --- reading a document back ---------------------------------------------------------------------


def _timestamp(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        raise DocumentError(f"bad timestamp {text!r}") from None


def _path_from(document: dict[str, Any], where: str) -> PathResult:
    try:
        attribution_doc = document.get("attribution")
        attribution = None
        if isinstance(attribution_doc, dict):
            attribution = Attribution(attribution_doc.get("region"),
                                      str(attribution_doc.get("source", "none")),
                                      tuple(attribution_doc.get("conflicts", ())),
                                      bool(attribution_doc.get("disputed", False)))
        verdict = RoutingVerdict(
            RoutingState(document["state"]), document.get("served_region"),
            document.get("expected_region"), document.get("penalty_seconds"),
            document.get("reason"), str(document.get("detail", "")))
        extra = {k: v for k, v in document.items() if k not in _CORE_PATH_KEYS}
        return PathResult(Path(document["path"]), verdict, attribution,
                          document.get("latency_seconds"), dict(document.get("phases") or {}),
                          document.get("address"), document.get("status"),
                          tuple(document.get("notes") or ()), extra)
    except (KeyError, ValueError, TypeError) as exc:
        raise DocumentError(f"{where}: bad path entry ({exc})") from None


def round_from_document(document: Any, source: str = "document") -> RoundResult:
    """Rebuild a :class:`RoundResult` from :func:`round_document` output."""
    if not isinstance(document, dict) or not isinstance(document.get("vantage_points"), list):
        raise DocumentError(f"{source}: not a routewatch round document")
    rounds = []
    for index, item in enumerate(document["vantage_points"]):
        where = f"{source}: vantage_points[{index}]"
        if not isinstance(item, dict):
            raise DocumentError(f"{where}: not an object")
        try:
            regions = tuple(
                RegionLatency(r["region"], r.get("latency_seconds"), bool(r["healthy"]),
                              tuple(r.get("samples_seconds") or ()), r.get("reason"),
                              r.get("message"))
                for r in item["regions"])
            errors = tuple(ErrorRecord(e["path"], e["reason"], e["message"])
                           for e in item.get("errors", ()))
            rounds.append(VantageRound(
                str(item["name"]), _timestamp(item["started_at"]),
                float(item["duration_seconds"]), regions,
                tuple(_path_from(p, f"{where}.paths") for p in item["paths"]),
                errors, dict(item.get("dns") or {}), bool(item.get("success", True))))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, DocumentError):
                raise
            raise DocumentError(f"{where}: {exc!r}") from None
    return RoundResult(tuple(rounds), _timestamp(document.get("started_at")),
                       float(document.get("duration_seconds", 0.0)))
