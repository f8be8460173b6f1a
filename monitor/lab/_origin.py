"""A region's origin: a minimal HTTPS app server implementing the app contract of DESIGN.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from typing import Literal

from monitor.lab._http import (
    IDLE_TIMEOUT_S,
    MAX_HEAD_BYTES,
    MAX_REQUESTS_PER_CONNECTION,
    BadRequest,
    HttpRequest,
    Response,
    parse_request,
    render_response,
    serve_connection,
)
from probes.records import record

__all__ = ["InlineOrigin", "OriginBehaviour", "OriginServer"]



@record
class OriginBehaviour:
    """How the origin answers right now (faults included)."""

    claimed_region: str
    dynamodb_region: str
    dynamodb_read_ms: float
    processing_ms: float = 0.0
    error_status: int | None = None


class OriginServer:
    """HTTPS on a private loopback address; the region's public address is its delay proxy."""

    def __init__(self, region: str, *, health_path: str, region_header: str,
                 ssl_context: ssl.SSLContext, behaviour: Callable[[], OriginBehaviour]) -> None:
        self.region = region
        self._health_path = health_path
        self._region_header = region_header
        self._ssl = ssl_context
        self._behaviour = behaviour
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, address: str) -> int:
        self._server = await asyncio.start_server(
            self._serve, address, 0, ssl=self._ssl, limit=MAX_HEAD_BYTES, backlog=256,
            ssl_handshake_timeout=_HANDSHAKE_TIMEOUT_S,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await serve_connection(reader, writer, self._respond)
        finally:
            self._writers.discard(writer)

    async def _respond(self, request: HttpRequest) -> Response:
        behaviour = self._behaviour()
        if behaviour.processing_ms > 0:
            await asyncio.sleep(behaviour.processing_ms / 1000)
        return self._answer(request.path, request.method, behaviour)

    def _answer(self, path: str, method: str,
                behaviour: OriginBehaviour) -> tuple[int, list[tuple[str, str]], bytes]:
        if behaviour.error_status is not None:
            # what an ALB says with no healthy target: no app header, a plain body
            return (behaviour.error_status, [("server", "awselb/2.0"),
                                             ("content-type", "text/plain")],
                    f"{behaviour.error_status} error from the load balancer\n".encode())
        headers = [("server", "routewatch-lab"), (self._region_header, behaviour.claimed_region)]
        if path != self._health_path:
            return 404, [*headers, ("content-type", "text/plain")], b"not found\n"
        body = json.dumps({
            "region": behaviour.claimed_region,
            "dynamodb_region": behaviour.dynamodb_region,
            "dynamodb_read_ms": behaviour.dynamodb_read_ms,
        }).encode()
        headers += [("cache-control", "max-age=30"), ("content-type", "application/json")]
        return 200, headers, b"" if method == "HEAD" else body

    def inline(self, deliver: Callable[[bytes | Literal["eof", "close"]], None],
               lost: Callable[[], None]) -> InlineOrigin:
        """This origin for one connection, run inside the region's delay proxy (see
        :class:`InlineOrigin`)."""
        return InlineOrigin(self._ssl, self._behaviour, self._answer, deliver, lost)


_HANDSHAKE_TIMEOUT_S = 10.0  # the listening server's ssl_handshake_timeout, the inline one's too
_SHUTDOWN_TIMEOUT_S = 30.0  # as asyncio's ssl_shutdown_timeout: waiting for the client to close
_READ_BYTES = 65536


class InlineOrigin:
    """One connection to a region's origin, served inside the delay proxy's process on the bytes
    the proxy has held for the delay: TLS on memory buffers, the same answers, limits and
    timeouts as the listening :class:`OriginServer` (see :func:`serve_connection`), but no second
    TCP connection, accept, socket copies or stream task per sample. What the client sees on the
    wire is the same: the handshake, the response, the TLS close after a ``connection: close``
    answer, then the connection closed once the client has closed its side."""

    def __init__(self, ssl_context: ssl.SSLContext, behaviour: Callable[[], OriginBehaviour],
                 answer: Callable[[str, str, OriginBehaviour], Response],
                 deliver: Callable[[bytes | Literal["eof", "close"]], None],
                 lost: Callable[[], None]) -> None:
        self._behaviour = behaviour
        self._respond = answer
        self._deliver = deliver
        self._lost = lost
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = ssl_context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._handshaken = False
        self._busy = False  # an answer is being prepared (the app's processing time)
        self._served = 0
        self._shutting_down = False
        self._client_done = False  # the client closed its side (EOF or its TLS close)
        self._closed = False
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            _HANDSHAKE_TIMEOUT_S, self.abort)

    # --- the sink the proxy delivers the client's bytes to -------------------------------------

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        self._incoming.write(data)
        self._pump()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """The client closed its sending side."""
        self._client_closed()

    def close(self) -> None:
        """The client's connection is gone."""
        self._finish()

    def abort(self) -> None:
        self._finish()

    def is_closing(self) -> bool:
        return self._closed

    # --- TLS and HTTP --------------------------------------------------------------------------

    def _pump(self) -> None:
        if not self._handshaken:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._send()
                return
            except (ssl.SSLError, OSError):
                self._finish()  # as asyncio: the connection dropped, no alert sent
                return
            self._handshaken = True
            self._send()
            self._wait_for_request()
        while not self._shutting_down:
            try:
                chunk = self._tls.read(_READ_BYTES)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the client's TLS close
                self._client_closed()
                return
            except (ssl.SSLError, OSError):
                self._finish()
                return
            if not chunk:
                break
            self._buffer += chunk
        self._next_request()

    def _client_closed(self) -> None:
        """No more requests will come: a request cut short is answered 400, one being answered
        still is, then the TLS close and the connection closed (as :func:`serve_connection`)."""
        if self._closed or self._client_done:
            return
        self._client_done = True
        if not self._handshaken or self._shutting_down:
            self._finish()
        elif self._busy:
            return  # _answer closes once the answer is out
        elif self._buffer:
            self._answer_bad("connection closed inside the request head")
        else:
            self._shut_down()

    def _send(self) -> None:
        data = self._outgoing.read()
        if data and not self._closed:
            self._deliver(data)

    def _wait_for_request(self) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(
            IDLE_TIMEOUT_S, self._answer_bad, "timed out waiting for a request")

    def _next_request(self) -> None:
        if self._busy or self._shutting_down or self._closed:
            return
        try:
            parsed = parse_request(self._buffer)
        except BadRequest as exc:
            self._answer_bad(str(exc))
            return
        if parsed is None:
            return
        request, used = parsed
        del self._buffer[:used]
        self._busy = True
        self._cancel_timer()
        behaviour = self._behaviour()
        if behaviour.processing_ms > 0:
            self._timer = self._loop.call_later(behaviour.processing_ms / 1000, self._answer,
                                                request, behaviour)
        else:
            self._answer(request, behaviour)

    def _answer(self, request: HttpRequest, behaviour: OriginBehaviour) -> None:
        self._timer = None
        if self._closed:
            return
        status, headers, body = self._respond(request.path, request.method, behaviour)
        self._tls.write(render_response(status, headers, body, keep_alive=request.keep_alive))
        self._send()
        self._busy = False
        self._served += 1
        if (not request.keep_alive or self._served >= MAX_REQUESTS_PER_CONNECTION
                or self._client_done):
            self._shut_down()
            return
        self._wait_for_request()
        self._next_request()  # a request sent right behind this one

    def _answer_bad(self, _why: str) -> None:
        self._timer = None
        if self._closed:
            return
        self._tls.write(render_response(400, [], b"bad request\n", keep_alive=False))
        self._send()
        self._shut_down()

    def _shut_down(self) -> None:
        """The TLS close (close_notify), then wait for the client to close, as a listening
        server's graceful close does."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self._cancel_timer()
        with contextlib.suppress(ssl.SSLError, OSError):  # SSLWantReadError: not awaited
            self._tls.unwrap()
        self._send()
        if self._client_done:
            self._finish()
        else:
            self._timer = self._loop.call_later(_SHUTDOWN_TIMEOUT_S, self.abort)

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        self._deliver("close")
        self._lost()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
