"""A lab origin served inside its delay proxy (no second connection) speaks HTTP/1.1 as the
listening origin does: keep-alive and pipelined requests, HEAD, 400 for a bad request, the app's
processing time, the TLS close after ``connection: close`` and the connection closed after."""

from __future__ import annotations

import ssl

import pytest
from conftest import LabWorld
from lab_client import UNDELAYED, get, tls_connect

from monitor.lab import LabHandle, control_request, parse_scenario

ORIGIN = "global-alb.example.com"
WORLD = """
regions:
  us-east-1: {}
  eu-west-1: {processing_ms: 40}
vantage_points:
  nyc: {latency_ms: {us-east-1: 8, eu-west-1: 70}, location: JFK}
"""


@pytest.fixture(scope="module")
def lab(lab_world: LabWorld) -> LabHandle:
    return lab_world(parse_scenario(WORLD, name="inline-origin"))


def connect(lab: LabHandle, region: str = "us-east-1") -> ssl.SSLSocket:
    tls, _ = tls_connect(lab.regions[region], lab.https_port, UNDELAYED, ORIGIN, lab.ca_path)
    return tls


def read_response(tls: ssl.SSLSocket, data: bytes = b"") -> tuple[int, dict[str, str], bytes,
                                                                   bytes]:
    """One response (status, headers, body) and whatever came after it."""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        assert chunk, "the connection closed before a response head"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += tls.recv(65536)
    return int(lines[0].split()[1]), headers, rest[:length], rest[length:]


def read_to_close(tls: ssl.SSLSocket) -> bytes:
    """Everything until the server's TLS close (close_notify) or the connection's end."""
    data = b""
    for _ in range(100):  # bounded: a close comes after at most a few records
        try:
            chunk = tls.recv(65536)
        except (ssl.SSLZeroReturnError, ConnectionError):
            break
        if not chunk:
            break
        data += chunk
    return data


def test_keep_alive_requests_are_answered_on_one_connection(lab: LabHandle) -> None:
    with connect(lab) as tls:
        for _ in range(3):
            status, headers, body, _ = get(tls, ORIGIN)
            assert status == 200
            assert headers["x-origin-region"] == "us-east-1"
            assert b'"region": "us-east-1"' in body
            assert headers["connection"] == "keep-alive"


def test_pipelined_requests_are_answered_in_order(lab: LabHandle) -> None:
    with connect(lab) as tls:
        tls.sendall(f"GET /health HTTP/1.1\r\nhost: {ORIGIN}\r\n\r\n"
                    f"GET /nothing HTTP/1.1\r\nhost: {ORIGIN}\r\n\r\n".encode())
        first, _, _, rest = read_response(tls)
        second, _, body, _ = read_response(tls, rest)
    assert (first, second, body) == (200, 404, b"not found\n")


def test_head_has_the_headers_and_no_body(lab: LabHandle) -> None:
    with connect(lab) as tls:
        tls.sendall(f"HEAD /health HTTP/1.1\r\nhost: {ORIGIN}\r\n\r\n".encode())
        status, headers, body, _ = read_response(tls)
    assert status == 200
    assert body == b""
    assert headers["content-length"] == "0"


def test_a_bad_request_gets_400_then_the_close(lab: LabHandle) -> None:
    with connect(lab) as tls:
        tls.sendall(b"NONSENSE\r\n\r\n")
        status, headers, body, rest = read_response(tls)
        assert (status, body, headers["connection"]) == (400, b"bad request\n", "close")
        assert rest + read_to_close(tls) == b""  # then nothing but the close


def test_connection_close_is_answered_then_closed(lab: LabHandle) -> None:
    with connect(lab) as tls:
        tls.sendall(f"GET /health HTTP/1.1\r\nhost: {ORIGIN}\r\nconnection: close\r\n\r\n"
                    .encode())
        status, headers, _, rest = read_response(tls)
        assert (status, headers["connection"]) == (200, "close")
        assert rest + read_to_close(tls) == b""


def test_the_apps_processing_time_is_in_the_first_byte(lab: LabHandle) -> None:
    with connect(lab, "eu-west-1") as tls:
        status, headers, _, first_byte_ms = get(tls, ORIGIN)
    assert status == 200
    assert headers["x-origin-region"] == "eu-west-1"
    assert first_byte_ms >= 40.0  # never sooner than the app takes (a lower bound only)


def test_connections_are_released_once_both_sides_closed(lab: LabHandle) -> None:
    for _ in range(5):
        with connect(lab) as tls:
            get(tls, ORIGIN)
    converged = False
    for _ in range(200):  # bounded: the relays go once the closes have passed the delay
        with connect(lab) as tls:
            get(tls, ORIGIN)
        if control_request(lab.control_address, "GET", "/world")["open_connections"] <= 2:
            converged = True
            break
    assert converged

