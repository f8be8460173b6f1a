"""A region's origin: a minimal HTTPS app server implementing the app contract of DESIGN.md."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from monitor.lab._http import MAX_HEAD_BYTES, HttpRequest, Response, serve_connection

__all__ = ["OriginBehaviour", "OriginServer"]



@dataclass(frozen=True)
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
            ssl_handshake_timeout=10.0,
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
