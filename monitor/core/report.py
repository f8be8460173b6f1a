"""The round as a JSON document (``check --json``, the Lambda's answer) and the check exit code.

:func:`round_document` and :func:`round_from_document` are inverses, so a regional probe's answer
can be merged with the local round.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any, get_args

from monitor import __version__
from monitor.config import DEFAULT_SERVICE, Estimator
from monitor.core.model import (
    PROBLEM_STATES,
    Attribution,
    AttributionSource,
    CdnDetails,
    DataPath,
    DnsDetails,
    DnsFailureDetails,
    DnsLookup,
    DnsLookups,
    ErrorRecord,
    EstimatorReason,
    IpFamily,
    OriginDetails,
    Path,
    PathDetails,
    PathResult,
    RegionLatency,
    RoundResult,
    RoutingState,
    RoutingVerdict,
    TlsInfo,
    VantageRound,
)
from monitor.domain.reasons import Reason, reason_of
from probes.cdn import CacheResult
from probes.errors import RoutewatchError

__all__ = [
    "EXIT_ERROR",
    "EXIT_NOTHING_MEASURED",
    "EXIT_OK",
    "EXIT_ROUTING_PROBLEM",
    "SCHEMA_VERSION",
    "DocumentError",
    "exit_code",
    "round_document",
    "round_from_document",
    "service_rounds",
    "services_document",
    "state_counts",
]

EXIT_OK = 0
"""Every path is ok (or failover, unless strict)."""
EXIT_ROUTING_PROBLEM = 1
"""A path is misrouted or unknown (or failover when strict)."""
EXIT_ERROR = 2
"""The check could not run: bad configuration or usage, an unreadable file, an AWS error."""
EXIT_NOTHING_MEASURED = 3
"""The check ran but no region could be measured from any vantage point: an outage, or nothing
reachable from here."""

SCHEMA_VERSION = 2
"""The document's shape (monitor/data/report.schema.json); bumped only by a change that breaks a
reader (a key removed, renamed or retyped), not by a key added. 2: a vantage point appears once
per service (``vantage_points[].service``), with per-service verdicts in ``services``."""


class DocumentError(RoutewatchError, ValueError):
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
        "estimator": verdict.estimator,
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
    document.update(details_document(path.details))
    if path.tls is not None:
        document.update(tls_document(path.tls))
    return document


def tls_document(tls: TlsInfo | None) -> dict[str, Any]:
    """The TLS keys of a region row or an HTTP path: version, the handshake's round trips, and
    the earliest expiry of the certificates presented."""
    return {"tls_version": tls.version if tls else None,
            "handshake_round_trips": tls.handshake_round_trips if tls else None,
            "cert_not_after": (_iso(tls.cert_not_after) if tls and tls.cert_not_after is not None
                               else None)}


def details_document(details: PathDetails | None) -> dict[str, Any]:
    """A path's own keys, after the common ones (documented in the README)."""
    match details:
        case DnsDetails():
            document: dict[str, Any] = {"addresses": list(details.addresses), "ttl": details.ttl,
                                        "cname_chain": list(details.cname_chain)}
            if details.ecs_answered:
                document.update({"ecs_region": details.ecs_region,
                                 "ecs_scope": details.ecs_scope,
                                 "ecs_reason": details.ecs_reason})
            return document
        case DnsFailureDetails():
            return {"rcode": details.rcode}
        case OriginDetails(data_path=DataPath() as data_path):
            document = {"dynamodb_region": data_path.dynamodb_region}
            if data_path.local is not None:  # disputed: nobody can say
                document["data_path_local"] = data_path.local
            document["data_path"] = data_path.state
            if data_path.read_seconds is not None:
                document["dynamodb_read_seconds"] = data_path.read_seconds
            return document
        case CdnDetails():
            return {"pop": details.pop, "cache": details.cache,
                    "cache_repeat": details.cache_repeat,
                    "server_timing": dict(details.server_timing),
                    "edge_address": details.edge_address, "request_id": details.request_id}
    return {}


def dns_document(lookups: DnsLookups) -> dict[str, Any]:
    return {
        role: {
            "server": lookup.server,
            "client_subnet": lookup.client_subnet,
            "rcode": lookup.rcode,
            "addresses": list(lookup.addresses),
            "cname_chain": list(lookup.cname_chain),
            "ttl": lookup.ttl,
            "ecs_scope": lookup.ecs_scope,
            "transport": lookup.transport,
            "duration_seconds": lookup.duration_seconds,
            "error": lookup.error,
        }
        for role, lookup in lookups.by_role()
    }


def _family(family: IpFamily, dual_stack: bool) -> dict[str, Any]:
    """The ``family`` key, only in a vantage point that has results beyond IPv4 (an IPv4-only
    document keeps the keys it always had)."""
    return {"family": family.value} if dual_stack else {}


def vantage_document(vantage: VantageRound) -> dict[str, Any]:
    dual = vantage.dual_stack
    return {
        "name": vantage.vantage,
        "service": vantage.service,
        "success": vantage.success,
        "started_at": _iso(vantage.started_at),
        "duration_seconds": vantage.duration_seconds,
        "paths": [{**path_document(p), **_family(p.family, dual)} for p in vantage.paths],
        "regions": [
            {
                "region": r.region,
                "latency_seconds": r.latency_seconds,
                "healthy": r.healthy,
                "samples_seconds": list(r.samples_seconds),
                "reason": r.reason,
                "message": r.message,
                "estimator": r.estimator,
                "handshake_seconds": r.handshake_seconds,
                "first_byte_seconds": r.first_byte_seconds,
                "app_seconds": r.app_seconds,
                **tls_document(r.tls),
                "disturbed_samples": r.disturbed_samples,
                "connect_seconds": r.connect_seconds,
                "estimator_reason": r.estimator_reason,
                **_family(r.family, dual),
            }
            for r in vantage.regions
        ],
        "loop_lag_seconds": vantage.loop_lag_seconds,
        "dns": dns_document(vantage.dns),
        "errors": [{"path": e.path, "reason": e.reason, "message": e.message}
                   for e in vantage.errors],
    }


def service_rounds(result: RoundResult) -> dict[str, RoundResult]:
    """The round of each service on its own (its vantage points only), in order of appearance."""
    grouped: dict[str, list[VantageRound]] = {}
    for vantage in result.vantage_points:
        grouped.setdefault(vantage.service, []).append(vantage)
    return {service: RoundResult(tuple(rounds), result.started_at, result.duration_seconds,
                                 result.plan) for service, rounds in grouped.items()}


def services_document(result: RoundResult, *, strict: bool = False) -> list[dict[str, Any]]:
    """Each service's verdict: its exit code and state counts over its vantage points."""
    return [{"name": service, "exit_code": exit_code(own, strict=strict),
             "summary": state_counts(own)}
            for service, own in service_rounds(result).items()]


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
        "services": services_document(result, strict=strict),
        "vantage_points": [vantage_document(v) for v in result.vantage_points],
        "plan": None if result.plan is None else {
            "checks": result.plan.checks,
            "gap_seconds": result.plan.gap_seconds,
            "planned_seconds": result.plan.planned_seconds,
            "deadline_seconds": result.plan.deadline_seconds,
            "fits": result.plan.fits,
        },
    }


def exit_code(result: RoundResult, *, strict: bool = False) -> int:
    """0 when every path is ok (or failover, unless strict); 1 for any routing problem; 3 when
    no region could be measured from any vantage point (for any service: the worst over them)."""
    bad = set(PROBLEM_STATES)
    if strict:
        bad.add(RoutingState.FAILOVER)
    if all(not any(r.healthy for r in v.regions) for v in result.vantage_points):
        return EXIT_NOTHING_MEASURED
    problems = any(p.verdict.state in bad for v in result.vantage_points for p in v.paths)
    return EXIT_ROUTING_PROBLEM if problems else EXIT_OK


# --- reading a document back ---------------------------------------------------------------------


def _timestamp(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        raise DocumentError(f"bad timestamp {text!r}") from None


def _optional(value: Any, kind: type[Any] | tuple[type[Any], ...], what: str) -> Any:
    """``value`` when it is None or of ``kind`` (a bool is never a number), else an error."""
    if value is None or (isinstance(value, kind) and not (isinstance(value, bool)
                                                          and kind is not bool)):
        return value
    raise TypeError(f"{what}: unexpected {type(value).__name__}")


def _number(value: Any, what: str) -> float | None:
    found = _optional(value, (int, float), what)
    return None if found is None else float(found)


def _texts(value: Any, what: str) -> tuple[str, ...]:
    items = _optional(value, list, what) or []
    return tuple(_optional(item, str, what) or "" for item in items)


def _seconds_by_name(value: Any, what: str) -> dict[str, float]:
    items = _optional(value, dict, what) or {}
    return {str(name): float(_number(seconds, what) or 0.0) for name, seconds in items.items()}


def _details_from(path: Path, document: dict[str, Any]) -> PathDetails | None:
    """The typed details of a path entry, from the keys :func:`details_document` writes."""
    def text(key: str) -> str | None:
        return _optional(document.get(key), str, key)  # type: ignore[no-any-return]

    if path is Path.DNS and "addresses" in document:
        return DnsDetails(_texts(document["addresses"], "addresses"),
                          _optional(document.get("ttl"), int, "ttl"),
                          _texts(document.get("cname_chain"), "cname_chain"),
                          "ecs_region" in document, text("ecs_region"),
                          _optional(document.get("ecs_scope"), int, "ecs_scope"),
                          _reason(document.get("ecs_reason")))
    if path is Path.DNS and "rcode" in document:
        return DnsFailureDetails(text("rcode"))
    if path is Path.ORIGIN:
        region = text("dynamodb_region")
        if region is None:
            return OriginDetails()
        local = _optional(document.get("data_path_local"), bool, "data_path_local")
        return OriginDetails(DataPath(region, local,
                                      _number(document.get("dynamodb_read_seconds"),
                                              "dynamodb_read_seconds")))
    if path is Path.CDN and "pop" in document:
        return CdnDetails(text("pop"), _cache(document.get("cache"), "cache"),
                          _cache(document.get("cache_repeat"), "cache_repeat"),
                          _seconds_by_name(document.get("server_timing"), "server_timing"),
                          text("edge_address"), text("request_id"))
    return None


def _reason(value: Any) -> Reason | None:
    return None if value is None else reason_of(str(value))


def _estimator_reason(value: Any) -> EstimatorReason | None:
    """Why a region used its estimator; a reason this version does not know reads as None."""
    return value if value in get_args(EstimatorReason) else None


def _estimator(value: Any) -> Estimator | None:
    """An estimator named in a document; one this version does not know reads as None."""
    try:
        return None if value is None else Estimator(str(value))
    except ValueError:
        return None


def _tls_from(document: dict[str, Any]) -> TlsInfo | None:
    """The TLS keys :func:`tls_document` writes (None when the entry has none)."""
    version = _optional(document.get("tls_version"), str, "tls_version")
    not_after = _optional(document.get("cert_not_after"), str, "cert_not_after")
    if version is None and not_after is None:
        return None
    return TlsInfo(version, _optional(document.get("handshake_round_trips"), int,
                                      "handshake_round_trips"),
                   None if not_after is None else _timestamp(not_after))


def _cache(value: Any, what: str) -> CacheResult | None:
    found = _optional(value, str, what)
    if found is None:
        return None
    return next((c for c in get_args(CacheResult) if c == found), "other")


def _source(value: Any) -> AttributionSource:
    for source in get_args(AttributionSource):
        if value == source:
            return source  # type: ignore[no-any-return]
    raise ValueError(f"unknown attribution source {value!r}")


def _family_from(document: dict[str, Any]) -> IpFamily:
    return IpFamily(document.get("family", IpFamily.IPV4.value))


def _path_from(document: dict[str, Any], where: str) -> PathResult:
    try:
        attribution_doc = document.get("attribution")
        attribution = None
        if isinstance(attribution_doc, dict):
            attribution = Attribution(attribution_doc.get("region"),
                                      _source(attribution_doc.get("source", "none")),
                                      tuple(attribution_doc.get("conflicts", ())),
                                      bool(attribution_doc.get("disputed", False)))
        verdict = RoutingVerdict(
            RoutingState(document["state"]), document.get("served_region"),
            document.get("expected_region"), document.get("penalty_seconds"),
            _reason(document.get("reason")), str(document.get("detail", "")),
            _estimator(document.get("estimator")))
        path = Path(document["path"])
        return PathResult(path, verdict, attribution,
                          document.get("latency_seconds"),
                          _seconds_by_name(document.get("phases"), "phases"),
                          document.get("address"), document.get("status"),
                          tuple(document.get("notes") or ()), _details_from(path, document),
                          _tls_from(document), _family_from(document))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise DocumentError(f"{where}: bad path entry ({exc})") from None


def _dns_from(document: Any) -> DnsLookups:
    found = _optional(document, dict, "dns") or {}

    def lookup(role: str) -> DnsLookup | None:
        item = _optional(found.get(role), dict, f"dns.{role}")
        if item is None:
            return None
        return DnsLookup(
            server=str(item.get("server", "")),
            client_subnet=_optional(item.get("client_subnet"), str, "client_subnet"),
            rcode=_optional(item.get("rcode"), str, "rcode"),
            addresses=_texts(item.get("addresses"), "addresses"),
            cname_chain=_texts(item.get("cname_chain"), "cname_chain"),
            ttl=_optional(item.get("ttl"), int, "ttl"),
            ecs_scope=_optional(item.get("ecs_scope"), int, "ecs_scope"),
            transport=str(item.get("transport", "")),
            duration_seconds=_number(item.get("duration_seconds"), "duration_seconds") or 0.0,
            error=_optional(item.get("error"), str, "error"),
        )

    return DnsLookups(lookup("recursive"), lookup("authoritative"))


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
                              tuple(r.get("samples_seconds") or ()), _reason(r.get("reason")),
                              r.get("message"), _estimator(r.get("estimator")),
                              _number(r.get("handshake_seconds"), "handshake_seconds"),
                              _number(r.get("first_byte_seconds"), "first_byte_seconds"),
                              _number(r.get("app_seconds"), "app_seconds"), _tls_from(r),
                              int(r.get("disturbed_samples") or 0),
                              connect_seconds=_number(r.get("connect_seconds"),
                                                      "connect_seconds"),
                              estimator_reason=_estimator_reason(r.get("estimator_reason")),
                              family=_family_from(r))
                for r in item["regions"])
            errors = tuple(ErrorRecord(e["path"], reason_of(e["reason"]), e["message"])
                           for e in item.get("errors", ()))
            rounds.append(VantageRound(
                str(item["name"]), _timestamp(item["started_at"]),
                float(item["duration_seconds"]), regions,
                tuple(_path_from(p, f"{where}.paths") for p in item["paths"]),
                errors, _dns_from(item.get("dns")), bool(item.get("success", True)),
                _number(item.get("loop_lag_seconds"), f"{where}.loop_lag_seconds"),
                service=str(item.get("service") or DEFAULT_SERVICE)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, DocumentError):
                raise
            raise DocumentError(f"{where}: {exc!r}") from None
    return RoundResult(tuple(rounds), _timestamp(document.get("started_at")),
                       float(document.get("duration_seconds", 0.0)))
