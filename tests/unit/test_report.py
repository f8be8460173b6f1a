"""The JSON document and the typed results: details round-trip, results are immutable."""

from __future__ import annotations

import json
from typing import Any

from monitor.core.model import (
    CdnDetails,
    DataPath,
    DnsDetails,
    DnsFailureDetails,
    DnsLookup,
    DnsLookups,
    OriginDetails,
    PathResult,
    RoundResult,
    RoutingState,
    RoutingVerdict,
    VantageRound,
)
from monitor.core.model import Path as RoutePath
from monitor.core.report import round_document, round_from_document


def _path(path: RoutePath, details: Any) -> PathResult:
    verdict = RoutingVerdict(RoutingState.OK, "eu-west-1", "eu-west-1", 0.0)
    return PathResult(path, verdict, None, 0.01, {"resolve": 0.001}, "127.0.0.1", 200, (),
                      details)


def test_typed_details_round_trip_through_the_document() -> None:
    lookup = DnsLookup("127.0.0.53:53", None, "NOERROR", ("127.0.0.1",), ("a.example",), 60,
                       24, "udp", 0.002)
    vantage = VantageRound("fra", 1000.0, 0.5, (), (
        _path(RoutePath.DNS, DnsDetails(("127.0.0.1",), 60, ("a.example",), True, "eu-west-1")),
        _path(RoutePath.DNS, DnsDetails(("127.0.0.1",), None)),
        _path(RoutePath.DNS, DnsFailureDetails("SERVFAIL")),
        _path(RoutePath.ORIGIN, OriginDetails(DataPath.observed("us-east-1", "eu-west-1", 0.003))),
        _path(RoutePath.ORIGIN, OriginDetails()),
        _path(RoutePath.CDN, CdnDetails("FRA56-P1", "miss", "hit", {"cdn-upstream-fbl": 0.02},
                                        "127.0.0.2", "abc")),
    ), dns=DnsLookups(lookup, None))
    result = RoundResult((vantage,), 1000.0, 0.5)
    document = json.loads(json.dumps(round_document(result)))
    again = round_from_document(document)
    assert again.vantage_points[0].paths == vantage.paths
    assert again.vantage_points[0].dns == vantage.dns
    assert round_document(again) == document


def test_results_are_immutable_all_the_way_down() -> None:
    details = CdnDetails("FRA56-P1", "miss", None, {"cdn-upstream-fbl": 0.02}, None, None)
    path = _path(RoutePath.CDN, details)
    for mapping in (path.phases, details.server_timing):
        try:
            mapping["x"] = 1.0  # type: ignore[index]
        except TypeError:
            continue
        raise AssertionError(f"{mapping!r} can be changed")
