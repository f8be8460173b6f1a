"""The lab's control endpoint: a small JSON HTTP API on a loopback address, so faults can be
changed at run time, also from another shell (``routewatch lab fault ...``).

    GET    /faults   → {"faults": [...]}        the active faults
    PUT    /faults   ← [fault, ...]             replace them
    POST   /faults   ← fault or [fault, ...]    add
    DELETE /faults                              clear
    GET    /world    → addresses, ports, scenario name

Errors answer 400 with {"errors": ["faults[0].region: ...", ...]}, indexed into the list the
world validated: for POST that is the active faults followed by the new ones, so a client adding
one fault drops the index (:func:`one_fault_errors`) rather than show the user a number they never
wrote.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from monitor.lab._http import MAX_HEAD_BYTES, BadRequest, read_request, render_response
from probes.errors import RoutewatchError

__all__ = ["ControlServer", "LabControlError", "control_request", "one_fault_errors"]

_FAULT_INDEX = re.compile(r"^faults\[\d+\](\.|: )?")

_IDLE_TIMEOUT_S = 10.0

# (method, target (path and query), parsed JSON body) → (status, JSON document)
Handler = Callable[[str, str, Any], Awaitable[tuple[int, Any]]]


class LabControlError(RoutewatchError):
    """The control endpoint refused a request or could not be reached; ``errors`` lists why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def one_fault_errors(errors: list[str]) -> list[str]:
    """Errors about the one fault a request added, without the ``faults[N]`` of the world's list:
    ``faults[1].region: ...`` → ``region: ...``."""
    return [_FAULT_INDEX.sub("", error) or error for error in errors]


class ControlServer:
    def __init__(self, address: str, handler: Handler) -> None:
        self.address = address
        self._handler = handler
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> int:
        try:
            self._server = await asyncio.start_server(self._serve, self.address, port,
                                                      limit=MAX_HEAD_BYTES)
        except OSError:
            if port == 0:
                raise
            self._server = await asyncio.start_server(self._serve, self.address, 0,
                                                      limit=MAX_HEAD_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await read_request(reader, _IDLE_TIMEOUT_S)
            except (BadRequest, TimeoutError) as exc:
                status, document = 400, {"errors": [f"bad request: {exc}"]}
            else:
                if request is None:
                    return
                try:
                    body = json.loads(request.body) if request.body else None
                except ValueError as exc:
                    status, document = 400, {"errors": [f"body is not JSON: {exc}"]}
                else:
                    status, document = await self._handler(request.method, request.target,
                                                          body)
            payload = json.dumps(document).encode()
            writer.write(render_response(status, [("content-type", "application/json")],
                                         payload, keep_alive=False))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


def control_request(address: str, method: str, path: str, body: Any = None,
                    *, timeout_s: float = 10.0) -> Any:
    """One request to a lab's control endpoint (``host:port``); the JSON answer or an error."""
    host, _, port_text = address.rpartition(":")
    if not host or not port_text.isdigit():
        raise LabControlError([f"control address {address!r} is not host:port"])
    # http.client directly: urllib would honour HTTP(S)_PROXY, and this is loopback
    connection = http.client.HTTPConnection(host, int(port_text), timeout=timeout_s)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if payload is not None else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read(1 << 20)
    except OSError as exc:
        raise LabControlError([f"cannot reach the lab control endpoint {address}: "
                               f"{exc.strerror or exc}"]) from None
    finally:
        connection.close()
    try:
        document = json.loads(raw)
    except ValueError:
        raise LabControlError([f"{address} did not answer JSON (is it a lab?)"]) from None
    if response.status != 200:
        errors = document.get("errors") if isinstance(document, dict) else None
        raise LabControlError([str(e) for e in errors] if isinstance(errors, list)
                              else [f"HTTP {response.status}"])
    return document
