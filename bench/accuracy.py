"""How exactly, and at what CPU cost, routewatch measures a round trip, beside curl and
blackbox_exporter, against one lab world in the same run.

Accuracy. For every (vantage point, region) cell of a lab scenario (``healthy``: 3 x 3), N
fresh-connection samples per tool, sequential with a short gap, tools interleaved per sample.
Each reading is "request sent -> first response byte" (one round trip plus the app's time,
which the lab sets to zero), compared with the round trip the lab injects for that client:

* routewatch: ``probes.http.probe_http`` from the vantage point's source address,
  ``phases["processing"]`` (the baseline's own probe path);
* curl: ``--interface SRC``, ``time_starttransfer - time_pretransfer`` (the usual recipe), and
  from the same runs ``time_starttransfer - time_appconnect``: curl stamps ``pretransfer`` when
  it enters its PERFORMING state, after the request is already written (``before_perform`` in
  multi.c), so the first span misses the send and can read low; the second includes the send;
* curl through the CONNECT relay below: a control, what the relay itself adds;
* blackbox_exporter: ``probe_http_duration_seconds{phase="processing"}``.

blackbox_exporter's http prober has no ``source_ip_address`` (the key exists for its icmp, tcp
and dns probers only; upstream pull requests #1097 and #1152 are unmerged) and its strict YAML
refuses the key. Without it, its probes leave from 127.0.0.1, a client the lab does not know and
delays by nothing. So each vantage point's module sets ``proxy_url`` to a small CONNECT relay
(threads, blocking sockets, TCP_NODELAY) that dials the region from the vantage point's
address; curl through the same relay measures what the relay adds. The script shows both the
refusal and what a module without a source address reads.

Then routewatch's whole concurrent round (``monitor.round.run.run_round``, every vantage point at
once, DNS, origin and CDN paths included), R times in this process (warm, as ``serve`` runs
them), and C times as ``routewatch check --json`` in a fresh process each (cold, as a
post-deploy check runs): each cell's estimate (the minimum of its samples) against the injected
round trip. That is what users see.

Cost. CPU seconds per probe against one region with no injected delay (source 127.0.0.1):
routewatch in-process (``time.process_time``, one event loop, sequential probes), curl (the
children's rusage, one process per probe), blackbox_exporter (utime+stime of its process from
/proc/PID/stat, including serving our /probe request).

Everything stays on loopback; the lab, the relays and the exporter are stopped on the way out.
Run: ``make bench`` or ``.venv/bin/python bench/accuracy.py [--samples N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.config import load_config
from monitor.lab import LabHandle, load_scenario, start_lab
from monitor.round.run import run_round
from probes.http import HttpTarget, probe_http, ssl_context_for

_IO_TIMEOUT_S = 15.0  # every socket and subprocess here gives up after this
_START_TIMEOUT_S = 15.0
_CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
_CLEAN_ENV["LC_ALL"] = "C"  # curl's -w prints decimals with a point
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

FLOOR = "local"  # the pseudo vantage point 127.0.0.1: no injected delay


@dataclass(frozen=True)
class Cell:
    vantage: str
    region: str
    source: str  # the vantage point's source address
    address: str  # the region's public address (its delay proxy)
    rtt_s: float  # the round trip the lab injects for this pair

    @property
    def label(self) -> str:
        return f"{self.vantage}->{self.region}"


@dataclass
class World:
    """What every sampler needs to know about the lab world."""

    lab: LabHandle
    name: str  # origin name: Host and SNI
    port: int
    path: str
    ca: str

    @property
    def host_header(self) -> str:
        return f"{self.name}:{self.port}"

    def url_for(self, address: str) -> str:
        return f"https://{address}:{self.port}{self.path}"


@dataclass
class Readings:
    """Errors (reading - injected round trip, seconds) per tool and cell; failures counted."""

    errors: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, tool: str, cell: Cell, reading: float | None) -> None:
        if reading is None:
            self.failures[tool] = self.failures.get(tool, 0) + 1
            return
        self.errors.setdefault(tool, {}).setdefault(cell.label, []).append(reading - cell.rtt_s)

    def cell(self, tool: str, cell: Cell) -> list[float]:
        return self.errors.get(tool, {}).get(cell.label, [])


# --- the CONNECT relay (gives blackbox_exporter a vantage point's source address) ---------------


def _pump(source: socket.socket, dest: socket.socket) -> None:
    """Copy one direction until EOF, an error or the idle timeout; then half-close ``dest``."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            dest.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dest.shutdown(socket.SHUT_WR)


class _RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, source: str) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.source = source
        self.targets: set[str] = set()  # CONNECT targets seen, to check where traffic went


class _RelayHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _RelayServer)
        client: socket.socket = self.request
        client.settimeout(_IO_TIMEOUT_S)
        head = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
        request_line, _, _ = head.partition(b"\r\n")
        parts = request_line.decode("latin-1").split(" ")
        if len(parts) != 3 or parts[0] != "CONNECT" or ":" not in parts[1]:
            with contextlib.suppress(OSError):
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            return
        host, _, port = parts[1].rpartition(":")
        host = host.strip("[]")
        server.targets.add(host)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=_IO_TIMEOUT_S,
                                                source_address=(server.source, 0))
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            return
        with upstream:
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                early = head.partition(b"\r\n\r\n")[2]
                if early:
                    upstream.sendall(early)
            except OSError:
                return
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join(_IO_TIMEOUT_S)


class Relay:
    """An HTTP CONNECT proxy on 127.0.0.1 whose upstream connections leave from ``source``."""

    def __init__(self, source: str) -> None:
        self.server = _RelayServer(source)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={
            "poll_interval": 0.5}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(_IO_TIMEOUT_S)


# --- blackbox_exporter --------------------------------------------------------------------------


_LISTENING = re.compile(r'msg="Listening on" address=\S*?:(\d+)')
"""The exporter's log line naming the port it really listens on (it is given port 0)."""


def _http_module(world: World, proxy_url: str | None = None,
                 source: str | None = None) -> dict[str, Any]:
    http: dict[str, Any] = {
        "preferred_ip_protocol": "ip4",
        "valid_status_codes": [200],
        "headers": {"Host": world.host_header},
        "tls_config": {"ca_file": world.ca, "server_name": world.name},
    }
    if proxy_url is not None:
        http["proxy_url"] = proxy_url
    if source is not None:
        http["source_ip_address"] = source  # only to show the refusal: no such key for http
    return {"prober": "http", "timeout": "5s", "http": http}


_METRIC = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for the lines of a Prometheus text exposition."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match is None:
            continue
        key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
        with contextlib.suppress(ValueError):
            found[key] = float(match["value"])
    return found


class Blackbox:
    """One prometheus-blackbox-exporter process on 127.0.0.1 with a generated config."""

    def __init__(self, binary: str, workdir: Path, modules: dict[str, Any]) -> None:
        self.binary = binary
        self.config = workdir / "blackbox.yml"
        self.config.write_text(yaml.safe_dump({"modules": modules}, sort_keys=False))
        self.log = workdir / "blackbox.log"
        self.port = 0  # the kernel's choice, read back from the log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.config}",
                 "--web.listen-address=127.0.0.1:0", "--log.level=info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_CLEAN_ENV)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"blackbox_exporter exited: {self.log.read_text()[-500:]}")
            if not self.port:
                listening = _LISTENING.search(self.log.read_text(errors="replace"))
                if listening is None:
                    time.sleep(0.05)
                    continue
                self.port = int(listening.group(1))
            with (contextlib.suppress(OSError, urllib.error.URLError),
                  _NO_PROXY.open(f"http://127.0.0.1:{self.port}/-/healthy", timeout=1)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"blackbox_exporter did not answer within {_START_TIMEOUT_S:g} s")

    def probe(self, module: str, target: str) -> dict[str, float]:
        query = urllib.parse.urlencode({"module": module, "target": target})
        url = f"http://127.0.0.1:{self.port}/probe?{query}"
        with _NO_PROXY.open(url, timeout=_IO_TIMEOUT_S) as response:
            return parse_metrics(response.read().decode())

    def first_byte(self, module: str, target: str) -> float | None:
        try:
            metrics = self.probe(module, target)
        except (OSError, urllib.error.URLError):
            return None
        if metrics.get("probe_success") != 1.0:
            return None
        return metrics.get('probe_http_duration_seconds{phase="processing"}')

    def cpu_seconds(self) -> float:
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rpartition(")")[2].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def blackbox_refuses_source_address(binary: str, world: World, source: str,
                                    workdir: Path) -> str:
    """What ``--config.check`` says about an http module with ``source_ip_address``."""
    config = workdir / "blackbox-source.yml"
    config.write_text(yaml.safe_dump({"modules": {"vp": _http_module(world, source=source)}}))
    result = subprocess.run([binary, f"--config.file={config}", "--config.check"],
                            capture_output=True, text=True, timeout=_IO_TIMEOUT_S,
                            env=_CLEAN_ENV, check=False)
    output = result.stdout + result.stderr
    found = re.search(r'err="([^"]*)"', output)
    message = (found[1] if found else output.strip()[-200:]).replace("\\n", " ")
    return f"exit {result.returncode}: {message}" if result.returncode else "accepted"


# --- samplers: one first-byte reading (seconds) or None -----------------------------------------


def curl_command(curl: str, world: World, cell: Cell, relay: Relay | None) -> list[str]:
    command = [curl, "-s", "-o", "/dev/null", "--max-time", "10", "--cacert", world.ca,
               "-w", "%{http_code} %{time_appconnect} %{time_pretransfer} %{time_starttransfer}"]
    if relay is None:
        command += ["--noproxy", "*", "--resolve", f"{world.name}:{world.port}:{cell.address}",
                    "--interface", cell.source]
    else:
        # the relay resolves nothing: tell curl to CONNECT to the address, keep name for SNI
        command += ["--proxy", relay.url,
                    "--connect-to", f"{world.name}:{world.port}:{cell.address}:{world.port}"]
    return [*command, f"https://{world.name}:{world.port}{world.path}"]


def run_curl(command: Sequence[str]) -> tuple[float, float] | None:
    """(starttransfer - pretransfer, starttransfer - appconnect) of one curl run."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_IO_TIMEOUT_S,
                                env=_CLEAN_ENV, check=False)
    except subprocess.TimeoutExpired:
        return None
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 4 or parts[0] != "200":
        return None
    appconnect, pretransfer, starttransfer = (float(p) for p in parts[1:])
    return starttransfer - pretransfer, starttransfer - appconnect


def routewatch_target(world: World, address: str, source: str | None) -> HttpTarget:
    return HttpTarget(host=world.name, address=address, port=world.port, path=world.path,
                      local_address=source)


async def routewatch_first_byte(target: HttpTarget, ca: str) -> float | None:
    # ssl_context_for caches one SSLContext per CA bundle, as the round does
    evidence = await probe_http(target, ssl_context=ssl_context_for(ca))
    if evidence.error is not None or evidence.status != 200:
        return None
    return evidence.phases.get("processing")


# --- statistics and printing ------------------------------------------------------------------


def ms(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:+.2f}" if signed else f"{value * 1000:.2f}"


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w)
                        for i, (v, w) in enumerate(zip(row, widths, strict=True))))


# --- the benchmark ----------------------------------------------------------------------------


def cells_of(lab: LabHandle) -> list[Cell]:
    cells = []
    for vantage, spec in lab.scenario.vantage_points.items():
        for region in lab.scenario.regions:
            cells.append(Cell(vantage, region, lab.vantage_points[vantage], lab.regions[region],
                              spec.latency_ms[region] / 1000.0))
    return cells


Sampler = Callable[[Cell], dict[str, float | None]]  # one run -> reading per reported tool


def measure_accuracy(cells: Sequence[Cell], samplers: Sequence[Sampler], samples: int,
                     gap_s: float) -> Readings:
    readings = Readings()
    for cell in cells:
        for index in range(samples):
            shift = index % len(samplers)
            for sampler in [*samplers[shift:], *samplers[:shift]]:  # rotate the order
                for tool, reading in sampler(cell).items():
                    readings.add(tool, cell, reading)
                time.sleep(gap_s)
    return readings


def _med_min(errors: Sequence[float]) -> str:
    return f"{ms(median(errors))} / {ms(min(errors) if errors else None)}"


def _med_max(errors: Sequence[float]) -> str:
    return f"{ms(median(errors))} / {ms(max(errors) if errors else None)}"


def report_accuracy(floor: Cell, cells: Sequence[Cell], readings: Readings, tools: Sequence[str],
                    rounds: dict[str, dict[str, list[float]]], samples: int,
                    gap_s: float) -> None:
    print(f"\n== Accuracy: first-byte reading minus injected round trip, ms "
          f"({samples} samples per tool and cell, sequential, {gap_s * 1000:.0f} ms apart; "
          f"med / min) ==")
    header = ["cell", "RTT", *tools, *[f"{kind} (med / max)" for kind in rounds]]
    rows = []
    for cell in [floor, *cells]:
        row = [cell.label, ms(cell.rtt_s, signed=False)]
        row += [_med_min(readings.cell(tool, cell)) for tool in tools]
        row += [_med_max(errors.get(cell.label, [])) for errors in rounds.values()]
        rows.append(row)
    print_table(header, rows)

    print(f"\n{floor.label} is 127.0.0.1, a client the lab does not delay: the floor. Rounds: "
          f"each cell's estimate (min of its samples), med / max over rounds.")
    print(f"per tool, over the {len(cells)} vantage-point cells, ms: median |error| of all "
          f"samples; median over cells of |min error| (min: the estimator routewatch uses); "
          f"floor; median over cells of (cell median - floor median)")
    summary: dict[str, float | None] = {}
    rows = []
    for tool in tools:
        every = [e for c in cells for e in readings.cell(tool, c)]
        summary[tool] = median(abs(e) for e in every)
        mins = [min(readings.cell(tool, c)) for c in cells if readings.cell(tool, c)]
        base = median(readings.cell(tool, floor))
        above = [(median(readings.cell(tool, c)) or 0.0) - base
                 for c in cells if readings.cell(tool, c)] if base is not None else []
        rows.append([tool, ms(summary[tool], signed=False),
                     ms(median(abs(m) for m in mins), signed=False), ms(base),
                     ms(median(above)), str(readings.failures.get(tool, 0)), str(len(every))])
    for kind, errors in rounds.items():
        estimates = [e for per_cell in errors.values() for e in per_cell]
        rows.append([kind, ms(median(abs(e) for e in estimates), signed=False),
                     "(estimates)", "-", "-", "-", str(len(estimates))])
    print_table(["tool", "median |err|", "median |min err|", "floor", "above floor",
                 "failed (incl. floor)", "n"], rows)
    rw = summary.get("routewatch")
    for other in ("curl", "curl app->start", "blackbox+relay"):
        if other in summary:
            print(f"ratio routewatch/{other} (median |error|): {ratio(rw, summary[other])}")
    pairs = [(median(readings.cell("curl+relay", c)), median(readings.cell("curl", c)))
             for c in cells]
    added = median(a - b for a, b in pairs if a is not None and b is not None)
    bb = summary.get("blackbox+relay")
    if added is not None:
        print(f"relay overhead (curl+relay minus curl, median over cells): {ms(added)} ms")
        if bb is not None:
            print(f"blackbox median |error| less the relay overhead: ~{ms(bb - added, False)} ms;"
                  f" ratio routewatch/that: {ratio(rw, bb - added)}")


def accuracy_bound_s(rtt_s: float) -> float:
    """The accuracy routewatch holds on an idle machine: 3 ms + 10 % of the round trip (the
    tests hold it against a control read in the same moment; here it is absolute)."""
    return 0.003 + 0.1 * rtt_s


def bound_violations(cells: Sequence[Cell], readings: Readings,
                     rounds: dict[str, dict[str, list[float]]]) -> list[str]:
    """Every cell whose best reading (routewatch's probe, or a round's estimate) misses the
    injected round trip by more than :func:`accuracy_bound_s`."""
    found = []
    estimates = {"routewatch probe": {c.label: readings.cell("routewatch", c) for c in cells},
                 **rounds}
    for kind, errors in estimates.items():
        for cell in cells:
            cell_errors = errors.get(cell.label, [])
            if not cell_errors:
                continue
            best = min(cell_errors, key=abs)
            if abs(best) > accuracy_bound_s(cell.rtt_s):
                found.append(f"{kind} {cell.label}: best reading {ms(best)} ms off the injected "
                             f"{ms(cell.rtt_s, False)} ms (bound "
                             f"{ms(accuracy_bound_s(cell.rtt_s), False)} ms)")
    return found


def _round_errors(errors: dict[str, list[float]], cells: Sequence[Cell],
                  regions: Iterable[tuple[str, str, float | None]]) -> None:
    by_label = {c.label: c for c in cells}
    for vantage, region, latency in regions:
        cell = by_label.get(f"{vantage}->{region}")
        if cell is not None and latency is not None:
            errors.setdefault(cell.label, []).append(latency - cell.rtt_s)


def measure_warm_rounds(world: World, runner: asyncio.Runner, cells: Sequence[Cell],
                        count: int) -> tuple[dict[str, list[float]], list[float]]:
    """``run_round`` in this process, ``count`` times: per cell, estimate - injected."""
    config = load_config(world.lab.config_path).config
    errors: dict[str, list[float]] = {}
    durations = []
    for _ in range(count):
        result = runner.run(run_round(config))
        durations.append(result.duration_seconds)
        _round_errors(errors, cells, ((v.vantage, r.region, r.latency_seconds)
                                      for v in result.vantage_points for r in v.regions))
        time.sleep(0.2)
    return errors, durations


def measure_cold_checks(world: World, cells: Sequence[Cell],
                        count: int) -> tuple[dict[str, list[float]], list[str]]:
    """``routewatch check --json`` in a fresh process, ``count`` times."""
    command = [sys.executable, "-m", "monitor.cli", "check", "--config",
               str(world.lab.config_path), "--json"]
    errors: dict[str, list[float]] = {}
    problems = []
    for _ in range(count):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                    env=_CLEAN_ENV, check=False)
            document = json.loads(result.stdout)
        except (subprocess.TimeoutExpired, ValueError) as exc:
            problems.append(f"check failed: {exc}")
            continue
        if result.returncode != 0:
            problems.append(f"check exited {result.returncode} (summary {document.get('summary')})")
        _round_errors(errors, cells, ((v["name"], r["region"], r.get("latency_seconds"))
                                      for v in document.get("vantage_points", [])
                                      for r in v.get("regions", [])))
        time.sleep(0.2)
    return errors, problems


@dataclass
class CostRun:
    """One batch of sequential probes: how many, how many failed, CPU and wall seconds."""

    probes: int
    failed: int
    cpu_s: float
    wall_s: float


def measure_cost(world: World, runner: asyncio.Runner, curl: str | None,
                 blackbox: Blackbox | None, address: str, probes: int, curl_runs: int,
                 repeats: int) -> None:
    """Each tool's batch ``repeats`` times, interleaved, so a busy moment of the shared VM
    does not land on one tool only; prints the median batch and the range."""
    print(f"\n== Cost: CPU per probe, one region at {address}, no injected delay "
          f"(source 127.0.0.1), sequential; {repeats} interleaved batches per tool ==")
    url = world.url_for(address)

    async def sequential(count: int, target: HttpTarget) -> int:
        failed = 0
        for _ in range(count):
            failed += await routewatch_first_byte(target, world.ca) is None
        return failed

    def routewatch_batch(source: str | None) -> CostRun:
        target = routewatch_target(world, address, source)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        failed = runner.run(sequential(probes, target))
        return CostRun(probes, failed, time.process_time() - cpu0, time.perf_counter() - wall0)

    def curl_batch(command: list[str]) -> CostRun:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall0 = time.perf_counter()
        failed = sum(run_curl(command) is None for _ in range(curl_runs))
        wall = time.perf_counter() - wall0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return CostRun(curl_runs, failed, cpu, wall)

    def blackbox_batch(exporter: Blackbox) -> CostRun:
        cpu0, wall0 = exporter.cpu_seconds(), time.perf_counter()
        failed = sum(exporter.first_byte("direct", url) is None for _ in range(probes))
        return CostRun(probes, failed, exporter.cpu_seconds() - cpu0,
                       time.perf_counter() - wall0)

    batches: dict[str, Callable[[], CostRun]] = {
        "routewatch (probe_http, in-process)": lambda: routewatch_batch(None),
        # as a round probes: bound to the vantage point's source address
        "routewatch-bound (the same, bound to 127.0.0.1)": lambda: routewatch_batch(
            "127.0.0.1")}
    if curl is not None:
        command = curl_command(curl, world, Cell("-", "-", "127.0.0.1", address, 0.0), None)
        command = [c for c in command if c not in ("--interface", "127.0.0.1")]
        batches["curl (a process per probe)"] = lambda: curl_batch(command)
    if blackbox is not None:
        exporter = blackbox
        batches["blackbox_exporter (its process)"] = lambda: blackbox_batch(exporter)

    runner.run(sequential(10, routewatch_target(world, address, None)))  # warm-up
    if blackbox is not None:
        for _ in range(10):
            blackbox.first_byte("direct", url)
    runs: dict[str, list[CostRun]] = {name: [] for name in batches}
    for _ in range(repeats):
        for name, batch in batches.items():
            runs[name].append(batch())

    rows = []
    per_second: dict[str, float] = {}
    for name, results in runs.items():
        per_probe = sorted(r.cpu_s / r.probes for r in results)
        typical = statistics.median(per_probe)
        if typical > 0:
            per_second[name.split(" ")[0]] = 1 / typical
        rows.append([name, f"{results[0].probes} x {len(results)}",
                     str(sum(r.failed for r in results)),
                     f"{typical * 1000:.2f} ({per_probe[0] * 1000:.2f}-{per_probe[-1] * 1000:.2f})",
                     f"{1 / typical:.0f}" if typical > 0 else "-",
                     f"{statistics.median(r.wall_s / r.probes for r in results) * 1000:.2f}"])
    print_table(["tool", "probes", "failed", "CPU ms/probe, median (range)", "probes/CPU-s",
                 "wall ms/probe"], rows)
    for ours in ("routewatch", "routewatch-bound"):
        for other in ("curl", "blackbox_exporter"):
            if ours in per_second and other in per_second:
                print(f"ratio {ours}/{other} (probes per CPU-second): "
                      f"{per_second[ours] / per_second[other]:.2f}")


def _machine_busy_s() -> float:
    """CPU seconds every CPU of the machine has been busy (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """This process and its reaped children (curl, checks, and at the end the lab and the
    exporter)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _pytest_running() -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if b"pytest" in (entry / "cmdline").read_bytes():
                    count += 1
    return count


def _version(command: Sequence[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (result.stdout or result.stderr).splitlines()[0] if result.stdout or result.stderr \
        else "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", default="healthy")
    parser.add_argument("--samples", type=int, default=10, help="per tool and cell")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="between samples")
    parser.add_argument("--rounds", type=int, default=5, help="warm rounds, in-process")
    parser.add_argument("--checks", type=int, default=3, help="cold `routewatch check` runs")
    parser.add_argument("--cost-probes", type=int, default=200)
    parser.add_argument("--curl-cost-runs", type=int, default=100)
    parser.add_argument("--cost-repeats", type=int, default=3, help="interleaved batches")
    args = parser.parse_args(argv)
    samples = max(1, min(args.samples, 100))
    gap_s = max(0.0, min(args.gap_ms, 1000.0)) / 1000.0

    curl = shutil.which("curl")
    blackbox_binary = shutil.which("prometheus-blackbox-exporter") or shutil.which(
        "blackbox_exporter")
    started = time.perf_counter()
    busy0, own0 = _machine_busy_s(), _own_cpu_s()
    print(f"routewatch accuracy and cost benchmark, "
          f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}")
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}, "
          f"other pytest processes: {_pytest_running()}")
    print(f"curl: {_version([curl, '--version']) if curl else 'not installed, skipped'}")
    print(f"blackbox_exporter: "
          f"{_version([blackbox_binary, '--version']) if blackbox_binary else 'not installed'}")

    workdir = Path(tempfile.mkdtemp(prefix="routewatch-bench-"))
    lab: LabHandle | None = None
    blackbox: Blackbox | None = None
    relays: dict[str, Relay] = {}
    violations: list[str] = []
    try:
        lab = start_lab(load_scenario(args.scenario))
        service = lab.config_dict["service"]
        world = World(lab, service["origin_name"], lab.https_port, service["health_path"],
                      str(lab.ca_path))
        cells = cells_of(lab)
        # the floor: a client the lab does not know gets no injected delay, so what a tool reads
        # from 127.0.0.1 is the lab's own time (two relay hops, the origin's TLS and answer)
        # plus the tool's
        floor = Cell(FLOOR, cells[0].region, "127.0.0.1", cells[0].address, 0.0)
        print(f"lab: scenario {args.scenario}, {len(lab.vantage_points)} vantage points x "
              f"{len(lab.regions)} regions, port {world.port}, origin name {world.name}")
        relays = {name: Relay(source)
                  for name, source in [*lab.vantage_points.items(), (FLOOR, floor.source)]}

        if blackbox_binary is not None:
            verdict = blackbox_refuses_source_address(blackbox_binary, world, cells[0].source,
                                                      workdir)
            print(f"blackbox_exporter with source_ip_address in an http module: {verdict}")
            modules = {f"vp-{name}": _http_module(world, proxy_url=relay.url)
                       for name, relay in relays.items()}
            modules["direct"] = _http_module(world)
            blackbox = Blackbox(blackbox_binary, workdir, modules)
            blackbox.start()

        with asyncio.Runner() as runner:
            def routewatch(cell: Cell) -> dict[str, float | None]:
                target = routewatch_target(world, cell.address, cell.source)
                return {"routewatch": runner.run(routewatch_first_byte(target, world.ca))}

            samplers: list[Sampler] = [routewatch]
            if curl is not None:
                curl_binary = curl

                def curl_direct(cell: Cell) -> dict[str, float | None]:
                    spans = run_curl(curl_command(curl_binary, world, cell, None))
                    return {"curl": spans[0] if spans else None,
                            "curl app->start": spans[1] if spans else None}

                def curl_relayed(cell: Cell) -> dict[str, float | None]:
                    spans = run_curl(curl_command(curl_binary, world, cell,
                                                  relays[cell.vantage]))
                    return {"curl+relay": spans[0] if spans else None}

                samplers += [curl_direct, curl_relayed]
            if blackbox is not None:
                exporter = blackbox

                def blackbox_relayed(cell: Cell) -> dict[str, float | None]:
                    return {"blackbox+relay": exporter.first_byte(
                        f"vp-{cell.vantage}", world.url_for(cell.address))}

                samplers.append(blackbox_relayed)
            warm_up: dict[str, float | None] = {}
            for sampler in samplers:  # one run each, not recorded: first imports, handshakes
                warm_up.update(sampler(floor))
            tools = [t for t in ("routewatch", "curl", "curl app->start", "curl+relay",
                                 "blackbox+relay") if t in warm_up]
            readings = measure_accuracy([floor, *cells], samplers, samples, gap_s)

            warm, durations = measure_warm_rounds(world, runner, cells,
                                                  max(1, min(args.rounds, 50)))
            cold, problems = measure_cold_checks(world, cells, max(0, min(args.checks, 20)))
            rounds = {f"round warm x{len(durations)}": warm}
            if cold:
                rounds[f"check cold x{max((len(v) for v in cold.values()), default=0)}"] = cold
            report_accuracy(floor, cells, readings, tools, rounds, samples, gap_s)
            violations = bound_violations(cells, readings, rounds)
            print(f"\naccuracy bound (3 ms + 10 % of the round trip, best reading per cell): "
                  f"{'held' if not violations else 'MISSED'}")
            for violation in violations:
                print(f"  {violation}")
            print(f"warm rounds took {median(durations) or 0:.2f} s (median): every vantage "
                  f"point at once, {len(lab.regions)} regions x "
                  f"{load_config(lab.config_path).config.probe.samples} samples each, paced, "
                  f"plus DNS, origin and CDN paths; cold: `routewatch check --json`, a fresh "
                  f"process each")
            for problem in problems:
                print(f"warning: {problem}")
            for name, relay in relays.items():
                unexpected = relay.server.targets - set(lab.regions.values())
                if unexpected:
                    print(f"warning: relay {name} was asked for {sorted(unexpected)}")

            if blackbox is not None:
                vantage = cells[0].vantage
                print(f"\nblackbox_exporter without a source address (module 'direct'), "
                      f"the regions as {vantage} sees them:")
                for cell in [c for c in cells if c.vantage == vantage]:
                    direct = [blackbox.first_byte("direct", world.url_for(cell.address))
                              for _ in range(3)]
                    good = [r for r in direct if r is not None]
                    print(f"  {cell.region}: injected for {vantage} {ms(cell.rtt_s, False)} ms, "
                          f"read {ms(median(good), False)} ms (median of {len(good)}): "
                          f"it leaves from 127.0.0.1, which the lab delays by nothing")

            measure_cost(world, runner, curl, blackbox, lab.regions[cells[0].region],
                         max(10, min(args.cost_probes, 2000)),
                         max(10, min(args.curl_cost_runs, 1000)),
                         max(1, min(args.cost_repeats, 10)))
    finally:
        if blackbox is not None:
            blackbox.stop()
        for relay in relays.values():
            relay.stop()
        if lab is not None:
            lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    busy, own = _machine_busy_s() - busy0, _own_cpu_s() - own0
    print(f"\ntotal {time.perf_counter() - started:.0f} s; the machine was busy {busy:.1f} "
          f"CPU-s, this benchmark used {own:.1f} (itself, the lab, curl, checks, the exporter): "
          f"~{max(0.0, busy - own):.1f} CPU-s came from elsewhere; load average at the end "
          f"{os.getloadavg()[0]:.2f}, other pytest processes: {_pytest_running()}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
