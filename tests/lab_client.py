"""A raw TLS client through the lab, and the control every timing test compares against.

A timing test never races the machine: what it reads is compared with a *control* read in the same
moment through the same lab path (samples interleaved one for one), never with an absolute bound
alone. On a busy machine both read high; noise only adds time, so the minimum of each converges
on its floor, and the two floors differ by what the instrument itself adds. When they do not
agree and the control could not even repeat itself (its median far above its floor), the machine
was too busy to resolve the tolerance at all: the test says so (a skip naming the figures)
instead of failing; on a quiet machine the control repeats and a disagreement fails. The
absolute bounds (an idle machine's) are `make bench`'s.
"""

from __future__ import annotations

import json
import math
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from monitor.core.model import RoundResult
from monitor.domain.reasons import Reason
from monitor.lab import Scenario

__all__ = [
    "CALM_SLACK_MS", "DISTURBED", "UNDELAYED", "Converged", "Rows", "accuracy_ms",
    "assert_agrees", "calm", "calm_check", "converge", "disturbed_cells", "document_rows",
    "first_byte_ms", "get", "injected_rows", "round_rows", "tls_connect",
]

T = TypeVar("T")
DISTURBED_REASON = Reason.MEASUREMENT_DISTURBED.value
ROOT = Path(__file__).parents[1]

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
             most: int = 24) -> Converged:
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


def assert_agrees(pairs: Converged, *, expected_excess_ms: float, tolerance_ms: float) -> None:
    """The reading's floor is the control's plus ``expected_excess_ms``, within
    ``tolerance_ms``; when it is not and the control's median is more than ``tolerance_ms``
    above its floor (the machine disturbed even the control), the test skips, saying so."""
    if abs(pairs.excess_ms - expected_excess_ms) <= tolerance_ms:
        return
    spread = statistics.median(pairs.controls) - min(pairs.controls)
    if spread > tolerance_ms:
        pytest.skip(f"the machine was too busy to resolve {tolerance_ms:g} ms: the control's "
                    f"median read {spread:.1f} ms above its floor ({pairs})")
    raise AssertionError(f"the reading's floor is {pairs.excess_ms:.1f} ms above the control's, "
                         f"expected {expected_excess_ms:g} ± {tolerance_ms:g} ms ({pairs})")


Rows = Mapping[str, Mapping[str, float]]
"""A round's latency matrix in ms: vantage point → region → reading (healthy cells only;
``DISTURBED`` for a cell the round itself says it could not time)."""

DISTURBED = math.inf
"""A cell the round left without a latency because its samples overlapped a stall (reason
``measurement_disturbed``): disturbed by the round's own account."""

CALM_SLACK_MS = 10.0
"""What a verdict in the built-in worlds cannot feel: their regions are 60 ms and more apart and
the default tolerance is 10 ms."""


def disturbed_cells(rows: Rows, injected: Rows, slack_ms: float = CALM_SLACK_MS) -> list[str]:
    """The cells that read more than the accuracy bound plus ``slack_ms`` off their injected
    round trip (or less than it, which no disturbance explains)."""
    return [f"{vantage}->{region} "
            f"{'disturbed' if ms == DISTURBED else f'{ms:.1f} ms'} "
            f"(injected {injected[vantage][region]:g})"
            for vantage, row in rows.items() for region, ms in row.items()
            if not 0 <= ms - injected[vantage][region]
            <= accuracy_ms(injected[vantage][region]) + slack_ms]


def calm(run: Callable[[], T], rows_of: Callable[[T], Rows], injected: Rows, *,
         attempts: int = 3, slack_ms: float = CALM_SLACK_MS) -> T:
    """The first of up to ``attempts`` runs (a round, a ``check``) whose readings the machine did
    not disturb beyond ``slack_ms``. A busy machine moves a concurrent round's readings by tens
    of ms (DESIGN.md) and a verdict judged on them says nothing about the code: when it
    disturbed every run, the test skips, naming the cells."""
    seen = []
    for _ in range(attempts):
        result = run()
        cells = disturbed_cells(rows_of(result), injected, slack_ms)
        if not cells:
            return result
        seen.append(cells)
    pytest.skip(f"the machine disturbed all {attempts} runs: {seen}")


def document_rows(document: Mapping[str, Any]) -> Rows:
    """The latency matrix of a ``check --json`` document."""
    return {v["name"]: {r["region"]: DISTURBED if r.get("reason") == DISTURBED_REASON
                        else r["latency_seconds"] * 1000 for r in v["regions"]
                        if r.get("healthy") and (r.get("latency_seconds") is not None
                                                 or r.get("reason") == DISTURBED_REASON)}
            for v in document["vantage_points"]}


def injected_rows(scenario: Scenario) -> Rows:
    """The round trips a scenario injects: vantage point → region → ms."""
    return {name: spec.latency_ms for name, spec in scenario.vantage_points.items()}


def round_rows(result: RoundResult) -> Rows:
    """The latency matrix a round measured."""
    return {v.vantage: {r.region: DISTURBED if r.reason is Reason.MEASUREMENT_DISTURBED
                        else r.latency_seconds * 1000 for r in v.regions
                        if r.healthy and (r.latency_seconds is not None
                                          or r.reason is Reason.MEASUREMENT_DISTURBED)}
            for v in result.vantage_points}


def calm_check(args: Sequence[str], injected: Rows, output: Path, *,
               attempts: int = 3) -> subprocess.CompletedProcess[str]:
    """``routewatch check ARGS --output OUTPUT`` in a fresh process, up to ``attempts`` times
    until a run the machine did not disturb (see :func:`calm`)."""
    def run() -> subprocess.CompletedProcess[str]:
        output.unlink(missing_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "monitor.cli", "check", *args, "--output", str(output)],
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)

    def rows(_: subprocess.CompletedProcess[str]) -> Rows:
        return document_rows(json.loads(output.read_text())) if output.exists() else {}

    return calm(run, rows, injected, attempts=attempts)
