"""CloudFront header parsing: robust, case-insensitive, typed problems instead of exceptions."""

from __future__ import annotations

import pytest

from monitor.core.paths.cdn import pop_region_ranking
from probes.cdn import parse_cdn_headers, parse_server_timing, pop_code

REAL = [  # as CloudFront sends them (two Server-Timing headers are merged)
    ("X-Cache", "Miss from cloudfront"),
    ("Via", "1.1 0f0e.cloudfront.net (CloudFront)"),
    ("X-Amz-Cf-Pop", "FRA56-P1"),
    ("X-Amz-Cf-Id", "abcDEF123=="),
    ("Server-Timing", 'cdn-upstream-layer;desc="EDGE",cdn-upstream-dns;dur=0,'
                      "cdn-upstream-connect;dur=69,cdn-upstream-fbl;dur=106.5,cdn-cache-miss"),
    ("server-timing", 'cdn-pop;desc="FRA56-P1",cdn-rid;desc="abcDEF123==",'
                      "cdn-downstream-fbl;dur=110"),
    ("x-origin-region", "eu-central-1"),
]


def test_real_cloudfront_headers() -> None:
    parsed = parse_cdn_headers(REAL, "X-Origin-Region")
    assert parsed.pop == "FRA56-P1"
    assert parsed.cache == "miss"
    assert parsed.request_id == "abcDEF123=="
    assert parsed.origin_region == "eu-central-1"
    assert parsed.server_timing == pytest.approx({
        "cdn-upstream-dns": 0.0, "cdn-upstream-connect": 0.069,
        "cdn-upstream-fbl": 0.1065, "cdn-downstream-fbl": 0.110})
    assert parsed.server_timing_desc["cdn-upstream-layer"] == "EDGE"
    assert parsed.problems == ()


@pytest.mark.parametrize(("value", "code"), [
    ("FRA56-P1", "FRA56-P1"), ("iad89-c1", "IAD89-C1"), ("SEA19", "SEA19"),
    ("FRANKFURT", "other"), ("FR56-P1", "other"), ("FRA56-P1X2", "other"), ("", "other"),
    (None, None),
])
def test_pop_codes_are_validated(value: str | None, code: str | None) -> None:
    assert pop_code(value) == code


@pytest.mark.parametrize("bad", [
    "cdn-upstream-fbl;dur=abc",
    "cdn upstream;dur=1",
    "cdn-upstream-fbl;dur=-5",
    "cdn-x;;dur=1",
])
def test_malformed_server_timing_is_a_typed_problem(bad: str) -> None:
    entries, problems = parse_server_timing([bad + ",cdn-downstream-fbl;dur=12"])
    assert problems
    assert {p.reason for p in problems} == {"server_timing_malformed"}
    assert any(e.name == "cdn-downstream-fbl" and e.duration_seconds == 0.012 for e in entries)


def test_quoted_commas_and_unknown_metrics() -> None:
    entries, problems = parse_server_timing(['cdn-rid;desc="a,b;c",my-own;dur=3;desc=x'])
    assert problems == []
    assert [(e.name, e.description) for e in entries] == [("cdn-rid", "a,b;c"), ("my-own", "x")]


def test_flood_of_entries_is_bounded() -> None:
    entries, problems = parse_server_timing([",".join(f"m{i};dur=1" for i in range(1000))])
    assert len(entries) == 64
    assert problems[0].reason == "server_timing_malformed"


def test_missing_pop_and_unknown_x_cache() -> None:
    parsed = parse_cdn_headers([("x-cache", "Weird from cloudfront")], "x-origin-region")
    assert parsed.pop is None
    assert {p.reason for p in parsed.problems} == {"pop_missing", "x_cache_unknown"}
    assert parsed.cache == "other"


@pytest.mark.parametrize(("value", "cache"), [
    ("Hit from cloudfront", "hit"), ("RefreshHit from cloudfront", "refresh_hit"),
    ("Error from cloudfront", "error")])
def test_x_cache_values(value: str, cache: str) -> None:
    assert parse_cdn_headers([("X-Cache", value), ("x-amz-cf-pop", "IAD89-C1")],
                             "x-origin-region").cache == cache


def test_pop_ranking_by_distance_and_pins() -> None:
    regions = ["us-east-1", "eu-west-1", "eu-central-1"]
    assert pop_region_ranking("FRA56-P1", regions, {}) == (
        "eu-central-1", "eu-west-1", "us-east-1")
    assert pop_region_ranking("IAD89-C1", regions, {})[0] == "us-east-1"  # type: ignore[index]
    assert pop_region_ranking("FRA56-P1", regions, {"FRA": "eu-west-1"})[0] == (  # type: ignore[index]
        "eu-west-1")
    assert pop_region_ranking("QQQ1-P1", regions, {}) is None
    assert pop_region_ranking("QQQ1-P1", regions, {"QQQ1-P1": "us-east-1"}) == ("us-east-1",)


def test_an_ipv6_edge_is_not_requested_from_an_ipv4_source() -> None:
    """A vantage point with only an IPv4 source_address: its IPv6 requests leave from an address
    the system chooses, not from the IPv4 one (which an IPv6 socket cannot bind)."""
    from probes.cdn import CdnTarget, request_source

    ipv4_only = CdnTarget(cdn_name="app.example.com", resolver="127.0.0.53",
                          local_address="127.30.1.1", rdtype="AAAA")
    assert request_source(ipv4_only, "::1") is None
    assert request_source(ipv4_only, "127.0.0.1") == "127.30.1.1"
    own_v6 = CdnTarget(cdn_name="app.example.com", resolver="127.0.0.53",
                       local_address="127.30.1.1", rdtype="AAAA", request_local_address="::1")
    assert request_source(own_v6, "::1") == "::1"
    assert request_source(CdnTarget(cdn_name="app.example.com", resolver="127.0.0.53"),
                          "127.0.0.1") is None
