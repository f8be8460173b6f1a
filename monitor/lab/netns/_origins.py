"""The regions' HTTPS origins inside the server namespace (``python -m
monitor.lab.netns._origins``): the lab's own origin server (the app contract), one per address.

stdin, one JSON line: ``{"cert": PEM path, "key": PEM path, "health_path": ..., "region_header":
..., "origins": {address: {"region": ..., "processing_ms": ..., "tls": "1.3" | "1.2"}}}``;
stdout: ``{"ports": {address: port}}`` once every origin listens; end of stdin stops them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
from collections.abc import Callable
from typing import Any

from monitor.lab._origin import OriginBehaviour, OriginServer

__all__: list[str] = []


def _context(spec: dict[str, Any], tls: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(spec["cert"], spec["key"])
    if tls == "1.2":  # a server that cannot do TLS 1.3: its handshake is two round trips
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def _fixed(behaviour: OriginBehaviour) -> Callable[[], OriginBehaviour]:
    return lambda: behaviour


async def _serve(spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    servers: list[OriginServer] = []
    ports: dict[str, int] = {}
    for address, origin in spec["origins"].items():
        behaviour = OriginBehaviour(origin["region"], origin["region"], 0.0,
                                    processing_ms=float(origin.get("processing_ms", 0.0)))
        server = OriginServer(origin["region"], health_path=spec["health_path"],
                              region_header=spec["region_header"],
                              ssl_context=_context(spec, origin.get("tls", "1.3")),
                              behaviour=_fixed(behaviour))
        ports[address] = await server.start(address)
        servers.append(server)
    print(json.dumps({"ports": ports}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):  # until the parent closes stdin
        pass
    for server in servers:
        server.close()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    spec = json.loads(sys.stdin.readline())
    asyncio.run(_serve(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
