"""Just enough HTTP/1.1 for the lab's servers: bounded request reading and plain responses."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import field
from http import HTTPStatus

from probes.records import record

__all__ = ["BadRequest", "HttpRequest", "Response", "parse_request", "read_request",
           "render_response", "serve_connection"]

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 256 * 1024


@record
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; repeats joined
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


class BadRequest(Exception):
    """The request could not be parsed within the bounds."""


async def read_request(reader: asyncio.StreamReader, timeout_s: float) -> HttpRequest | None:
    """One request, or None when the client closed the connection between requests."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise BadRequest("connection closed inside the request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    method, target, version, headers, length = _parse_head(head)
    body = await asyncio.wait_for(reader.readexactly(length), timeout_s)
    return HttpRequest(method, target, version, headers, body)


def parse_request(buffer: bytes | bytearray) -> tuple[HttpRequest, int] | None:
    """The first request in ``buffer`` and how many bytes it took, or None while it is not all
    there (sans I/O, the same bounds as :func:`read_request`)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES:
            raise BadRequest("request head too large")
        return None
    if end + 4 > MAX_HEAD_BYTES:
        raise BadRequest("request head too large")
    method, target, version, headers, length = _parse_head(bytes(buffer[:end + 4]))
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4:end + 4 + length])
    return HttpRequest(method, target, version, headers, body), end + 4 + length


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str], int]:
    """Request line, headers (lower-case names, repeats joined) and body length of a head."""
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"bad header line {line[:80]!r}")
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadRequest("chunked request bodies are not supported")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
        raise BadRequest(f"bad content-length {length_text[:20]!r}")
    return parts[0], parts[1], parts[2], headers, int(length_text)


def render_response(status: int, headers: list[tuple[str, str]], body: bytes,
                    *, keep_alive: bool) -> bytes:
    """Status line, headers (plus content-length and connection) and body, ready to write."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"content-length: {len(body)}")
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


Response = tuple[int, list[tuple[str, str]], bytes]
IDLE_TIMEOUT_S = 15.0
MAX_REQUESTS_PER_CONNECTION = 1000


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           answer: Callable[[HttpRequest], Awaitable[Response]]) -> None:
    """One client connection of a lab server: read requests (bounded in size, count and idle
    time), answer each with ``answer``, honour keep-alive; a broken peer just ends it."""
    try:
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            try:
                request = await read_request(reader, IDLE_TIMEOUT_S)
            except (BadRequest, TimeoutError):
                writer.write(render_response(400, [], b"bad request\n", keep_alive=False))
                break
            if request is None:
                break
            status, headers, body = await answer(request)
            writer.write(render_response(status, headers, body, keep_alive=request.keep_alive))
            await writer.drain()
            if not request.keep_alive:
                break
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
