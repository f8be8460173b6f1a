"""A raw TLS client through the lab, and the control every timing test compares against.

A timing test never races the machine: what it reads is compared with a *control* read in the same
moment through the same lab path (samples interleaved one for one), never with an absolute bound
alone. On a busy machine both read high; noise only adds time, so the minimum of each converges
on its floor, and the two floors differ by what the instrument itself adds. The absolute bounds
(an idle machine's) are `make bench`'s.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "UNDELAYED", "Converged", "accuracy_ms", "converge", "first_byte_ms", "get", "tls_connect",
]

UNDELAYED = "127.0.0.1"
"""A client address the lab knows nothing about: it delays it by nothing (the lab's floor)."""


def accuracy_ms(rtt_ms: float) -> float:
    """How closely a reading must match its control: 3 ms + 10 % of the round trip."""
    return 3.0 + 0.1 * rtt_ms


def tls_connect(address: str, port: int, source: str, server_name: str, ca_path: Path, *,
                timeout: float = 5.0) -> tuple[ssl.SSLSocket, float]:
    """A verified TLS connection from ``source``; the handshake's duration (ms)."""
    context = ssl.create_default_context(cafile=str(ca_path))
    raw = socket.create_connection((address, port), timeout=timeout, source_address=(source, 0))
    # like curl and asyncio: without it Nagle holds the request behind the unacked Finished
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    try:
        tls = context.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise
    return tls, (time.perf_counter() - started) * 1000


def get(tls: ssl.SSLSocket, host: str,
        path: str = "/health") -> tuple[int, dict[str, str], bytes, float]:
    """One request on an open connection: status, headers, body, time to first byte (ms)."""
    started = time.perf_counter()
    tls.sendall(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
    data = tls.recv(65536)
    first_byte = (time.perf_counter() - started) * 1000
    while b"\r\n\r\n" not in data:
        data += tls.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        body += tls.recv(65536)
    return int(lines[0].split()[1]), headers, body, first_byte


def first_byte_ms(address: str, port: int, source: str, server_name: str,
                  ca_path: Path) -> float:
    """Request sent → first response byte on a fresh connection from ``source`` (ms)."""
    tls, _ = tls_connect(address, port, source, server_name, ca_path)
    with tls:
        return get(tls, server_name)[3]


@dataclass
class Converged:
    """Readings and controls taken one for one; what a test asserts on is their floors."""

    readings: list[float] = field(default_factory=list)
    controls: list[float] = field(default_factory=list)

    @property
    def excess_ms(self) -> float:
        """How much more the instrument's floor reads than the control's floor."""
        return min(self.readings) - min(self.controls)

    def __str__(self) -> str:
        return (f"readings {[round(r, 1) for r in self.readings]}, controls "
                f"{[round(c, 1) for c in self.controls]}")


def converge(reading: Callable[[], float], control: Callable[[], float], *,
             expected_excess_ms: float, tolerance_ms: float, least: int = 3,
             most: int = 16) -> Converged:
    """Interleave ``reading()`` and ``control()`` until the reading's floor is within
    ``tolerance_ms`` of the control's floor plus ``expected_excess_ms`` (at least ``least``
    pairs, at most ``most``): a busy machine takes more pairs, never a wider bound."""
    pairs = Converged()
    for _ in range(most):
        pairs.controls.append(control())
        pairs.readings.append(reading())
        if len(pairs.readings) >= least and \
                abs(pairs.excess_ms - expected_excess_ms) <= tolerance_ms:
            break
    return pairs
