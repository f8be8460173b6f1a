"""The lab's CloudFront-like edges: the CDN name's answers, caching, CloudFront's headers, the
injected edge → region round trip, stale and dead edges."""

from __future__ import annotations

import json
import socket
import ssl
import uuid

import dns.message
import dns.query
import dns.rdatatype
import pytest
from conftest import LabWorld
from lab_client import (
    UNDELAYED,
    Converged,
    accuracy_ms,
    assert_agrees,
    converge,
    first_byte_ms,
    tls_connect,
)

from monitor.lab import LabHandle

CDN = "app.example.com"
ALIAS = "d111111abcdef8.cloudfront.net"


def fetch(lab: LabHandle, vantage: str, path: str, *, edge: str | None = None,
          timeout: float = 5.0) -> tuple[int, list[tuple[str, str]], bytes]:
    """GET through an edge (default: the vantage point's nearest) from the vantage point."""
    source = lab.vantage_points[vantage]
    edge = edge or lab.scenario.nearest_edge(vantage)
    assert edge is not None
    context = ssl.create_default_context(cafile=str(lab.ca_path))
    raw = socket.create_connection((lab.edges[edge], lab.https_port), timeout=timeout,
                                   source_address=(source, 0))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context.wrap_socket(raw, server_hostname=CDN) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nhost: {CDN}\r\nconnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip().lower(), v.strip()) for k, _, v in
               (line.partition(":") for line in lines[1:])]
    return int(lines[0].split()[1]), headers, body


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k == name), None)


def server_timing(headers: list[tuple[str, str]]) -> dict[str, str]:
    """metric → its dur (or desc, or "") across every Server-Timing header."""
    metrics: dict[str, str] = {}
    for value in (v for k, v in headers if k == "server-timing"):
        for entry in value.split(","):
            name, *params = [p.strip() for p in entry.split(";")]
            found = dict(p.split("=", 1) for p in params)
            metrics[name] = found.get("dur", found.get("desc", "")).strip('"')
    return metrics


def busted(path: str = "/health") -> str:
    return f"{path}?routewatch={uuid.uuid4().hex}"


@pytest.fixture
def healthy(lab_world: LabWorld) -> LabHandle:
    return lab_world("healthy")


def test_cdn_name_is_an_alias_answered_with_the_nearest_edge(healthy: LabHandle) -> None:
    for vantage, source in healthy.vantage_points.items():
        query = dns.message.make_query(CDN, "A")
        response = dns.query.udp(query, healthy.dns_host, port=healthy.dns_port, timeout=2,
                                 source=source)
        cname, a = response.answer
        assert cname.rdtype == dns.rdatatype.CNAME
        assert next(iter(cname)).target.to_text() == f"{ALIAS}."
        nearest = healthy.scenario.nearest_edge(vantage)
        assert nearest is not None
        assert [r.to_text() for r in a] == [healthy.edges[nearest]]


def test_miss_then_hit_with_cloudfront_headers(healthy: LabHandle) -> None:
    path = busted()
    status, first, body = fetch(healthy, "fra", path)
    assert status == 200
    assert json.loads(body)["region"] == "eu-west-1"
    assert header(first, "x-origin-region") == "eu-west-1"  # the origin's header passes through
    assert header(first, "x-cache") == "Miss from cloudfront"
    assert header(first, "x-amz-cf-pop") == "FRA56-P1"
    assert len(header(first, "x-amz-cf-id") or "") == 56
    assert (header(first, "via") or "").endswith(".cloudfront.net (CloudFront)")
    timing = server_timing(first)
    assert {"cdn-upstream-dns", "cdn-upstream-connect", "cdn-upstream-fbl", "cdn-cache-miss",
            "cdn-downstream-fbl"} <= set(timing)
    assert timing["cdn-pop"] == "FRA56-P1"
    assert timing["cdn-rid"] == header(first, "x-amz-cf-id")
    status, second, _ = fetch(healthy, "fra", path)
    assert header(second, "x-cache") == "Hit from cloudfront"
    assert "cdn-cache-hit" in server_timing(second)
    assert "cdn-upstream-fbl" not in server_timing(second)
    assert header(second, "age") is not None
    assert header(second, "x-amz-cf-id") != header(first, "x-amz-cf-id")


def upstream_first_byte(lab: LabHandle, edge: str, region: str, rtt: float) -> Converged:
    """The edge's own reading (Server-Timing ``cdn-upstream-fbl``) against a raw client from
    the edge's address to the region, in the same moments: the same injected round trip."""
    origin = lab.config_dict["service"]["origin_name"]
    return converge(
        lambda: float(server_timing(fetch(lab, "fra", busted(), edge=edge)[1])[
            "cdn-upstream-fbl"]),
        lambda: first_byte_ms(lab.regions[region], lab.https_port, lab.edges[edge], origin,
                              lab.ca_path),
        expected_excess_ms=0.0, tolerance_ms=accuracy_ms(rtt) + 1)


def test_upstream_first_byte_latency_is_the_edge_to_region_trip(healthy: LabHandle) -> None:
    rtt = healthy.scenario.edges["fra56"].latency_ms["eu-west-1"]
    # Server-Timing durations are whole ms
    pairs = upstream_first_byte(healthy, "fra56", "eu-west-1", rtt)
    assert_agrees(pairs, expected_excess_ms=0, tolerance_ms=accuracy_ms(rtt) + 1)
    assert min(pairs.readings) >= rtt - 1, pairs
    healthy.set_faults([{"kind": "slow", "region": "eu-west-1", "extra_ms": 40,
                         "vantage": "fra56"}])
    slower = upstream_first_byte(healthy, "fra56", "eu-west-1", rtt + 40)
    assert_agrees(slower, expected_excess_ms=0, tolerance_ms=accuracy_ms(rtt + 40) + 1)
    assert min(slower.readings) >= rtt + 40 - 1, slower


def test_viewer_to_edge_round_trip_is_injected(healthy: LabHandle) -> None:
    rtt = healthy.scenario.edges["dub56"].vantage_latency_ms["dub"]

    def handshake(source: str) -> float:
        tls, took = tls_connect(healthy.edges["dub56"], healthy.https_port, source, CDN,
                                healthy.ca_path)
        tls.close()
        return took

    pairs = converge(lambda: handshake(healthy.vantage_points["dub"]),
                     lambda: handshake(UNDELAYED),
                     expected_excess_ms=rtt, tolerance_ms=accuracy_ms(rtt))
    assert_agrees(pairs, expected_excess_ms=rtt, tolerance_ms=accuracy_ms(rtt))
    assert min(pairs.readings) >= rtt, pairs


def test_stale_edge_keeps_its_old_region(healthy: LabHandle) -> None:
    healthy.set_faults([{"kind": "edge_stale_origin", "edge": "fra56", "answer": "us-east-1"}])
    _, headers, _ = fetch(healthy, "fra", busted())
    assert header(headers, "x-origin-region") == "us-east-1"
    assert "cdn-upstream-dns" not in server_timing(headers)  # it no longer resolves
    # without an answer it keeps what it resolved last, whatever the DNS says later
    healthy.set_faults([{"kind": "edge_stale_origin", "edge": "fra56"}])
    healthy.add_fault({"kind": "misroute", "vantage": "fra56", "answer": "ap-southeast-1"})
    assert header(fetch(healthy, "fra", busted())[1], "x-origin-region") == "eu-west-1"
    healthy.set_faults([{"kind": "misroute", "vantage": "fra56", "answer": "ap-southeast-1"}])
    assert header(fetch(healthy, "fra", busted())[1], "x-origin-region") == "ap-southeast-1"


def test_edge_down_refuses(healthy: LabHandle) -> None:
    healthy.set_faults([{"kind": "edge_down", "edge": "jfk50"}])
    with pytest.raises(ConnectionRefusedError):
        fetch(healthy, "nyc", busted())
    assert fetch(healthy, "dub", busted())[0] == 200


def test_unreachable_origin_is_an_edge_error(healthy: LabHandle) -> None:
    healthy.set_faults([{"kind": "region_down", "region": "us-east-1", "dns_healthy": True}])
    status, headers, _ = fetch(healthy, "nyc", busted())
    assert status == 502
    assert header(headers, "x-cache") == "Error from cloudfront"
    assert header(headers, "x-amz-cf-pop") == "JFK50-C1"
    assert header(headers, "x-origin-region") is None


def test_cdn_stale_edge_scenario(lab_world: LabWorld) -> None:
    lab = lab_world("cdn-stale-edge")
    assert header(fetch(lab, "fra", busted())[1], "x-origin-region") == "us-east-1"
    assert header(fetch(lab, "nyc", busted())[1], "x-origin-region") == "us-east-1"
