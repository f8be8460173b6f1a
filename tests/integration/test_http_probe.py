"""probes/http.py against a real TLS server on loopback (its own thread and event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from probes.errors import ConnectError, ProbeTimeout, ResponseError, TlsError
from probes.http import HttpTarget, probe_http, ssl_context_for

NAME = "global-alb.example.com"
SERVER = "127.0.7.1"


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ")[1]
        if path == b"/slow":
            await asyncio.sleep(5)
        if path == b"/garbage":
            writer.write(b"this is not HTTP\r\n\r\n")
        else:
            body = b"x" * 100_000 if path == b"/big" else b'{"region": "eu-west-1"}'
            writer.write(b"HTTP/1.1 200 OK\r\nX-Origin-Region: eu-west-1\r\n"
                         b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                         + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    finally:  # also when the fixture cancels the /slow handler: nothing left to a finalizer
        writer.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    ca = trustme.CA()
    ca_path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(context)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(_handle, SERVER, 0, ssl=context))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server.sockets[0].getsockname()[1], ca_path
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    # close what is left (the /slow handler, the listener, the loop) now, not in a finalizer
    # that may run inside a later compile (CPython 3.11's AST recursion check then fails)
    server.close()
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


def _target(port: int, path: str = "/health", host: str = NAME,
            address: str = SERVER) -> HttpTarget:
    return HttpTarget(host=host, address=address, port=port, path=path,
                      local_address="127.30.7.1")


async def test_measures_phases_headers_and_peer(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    evidence = await probe_http(_target(port), ssl_context=ssl_context_for(str(ca)))
    assert evidence.error is None
    assert evidence.status == 200
    assert evidence.header("x-origin-region") == "eu-west-1"  # case-insensitive
    assert evidence.peer_address == SERVER
    assert evidence.tls_version == "TLSv1.3"
    assert set(evidence.phases) == {"resolve", "connect", "tls", "processing", "transfer"}
    assert evidence.body == b'{"region": "eu-west-1"}'


async def test_certificate_is_verified_against_the_service_name(
        tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    evidence = await probe_http(_target(port, host="other.example.com"),
                                ssl_context=ssl_context_for(str(ca)))
    assert isinstance(evidence.error, TlsError)
    assert evidence.error.reason == "tls_error"
    assert "other.example.com" in str(evidence.error)
    assert "connect" in evidence.phases  # what was measured before the failure is kept


async def test_refused_connection_is_a_connect_error(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    evidence = await probe_http(_target(port, address="127.0.7.2"),
                                ssl_context=ssl_context_for(str(ca)))
    assert isinstance(evidence.error, ConnectError)
    assert "refused" in str(evidence.error)


async def test_body_is_read_up_to_the_limit(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    evidence = await probe_http(_target(port, "/big"), ssl_context=ssl_context_for(str(ca)),
                                body_limit_bytes=1000)
    assert evidence.error is None
    assert len(evidence.body) == 1000
    assert evidence.body_truncated


async def test_slow_answer_times_out(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    evidence = await probe_http(_target(port, "/slow"), ssl_context=ssl_context_for(str(ca)),
                                request_timeout_s=0.3)
    assert isinstance(evidence.error, ProbeTimeout)
    assert evidence.error.reason == "timeout"


async def test_garbage_response_is_a_response_error(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    evidence = await probe_http(_target(port, "/garbage"), ssl_context=ssl_context_for(str(ca)))
    assert isinstance(evidence.error, ResponseError)
    assert evidence.error.reason == "bad_response"


def test_target_must_be_an_address() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        asyncio.run(probe_http(HttpTarget(NAME, "example.com"),
                               ssl_context=ssl_context_for(None)))


async def test_a_blackholed_tls_handshake_is_a_connect_timeout() -> None:
    """TCP connects, then nothing answers the ClientHello: a timeout, not a TLS error."""
    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: accepted.append(w), SERVER, 0)  # mute
    async with silent:
        port = silent.sockets[0].getsockname()[1]
        evidence = await probe_http(_target(port), ssl_context=ssl_context_for(None),
                                    connect_timeout_s=0.3)
        for writer in accepted:
            writer.close()
    assert isinstance(evidence.error, ProbeTimeout)
    assert evidence.error.reason == "timeout"
    assert "connect" in evidence.phases  # TCP was measured
    assert "tls" not in evidence.phases
