"""Which latency estimator reads distance best: ``auto`` (the default), ``connect``,
``handshake`` or ``first_byte``, side by side, on the packet-level lab (every packet delayed)
and on the loopback lab (a TCP proxy that delays relayed bytes), with curl as the control in
the same run.

World: the ``healthy`` scenario's 3 vantage points x 3 regions and their round trips, the
vantage points in one network namespace (198.18.1.x), the regions in another (198.18.2.x),
joined by :mod:`monitor.lab.netns`'s delay router (SYN included). Two more origins sit at
us-east-1's distance to show what each estimator mixes in: a slow app (``--app-ms`` of
processing before it answers) and a TLS 1.2-only server (two handshake round trips).

For every cell, N fresh-connection samples from routewatch's probe (``probes.http.probe_http``
from the vantage point's address: ``phases`` connect, tls, processing) and from curl
(``--interface``: ``time_connect``, ``time_appconnect - time_connect``, ``time_starttransfer -
time_pretransfer``), interleaved. Each reading minus the injected round trip is its error; the
handshake is divided by its round trips (1 for TLS 1.3, 2 for TLS 1.2) only in the row that
says so. ``auto`` is what the default makes of each vantage point's row of samples
(:func:`monitor.round.baseline.auto_estimators`: connect, or first byte for the row when a
connect is answered locally); the estimator it chose per row is printed. Then the same
estimators against the loopback lab, where connect completes in the kernel and reads ~0
whatever the distance.

    .venv/bin/python bench/estimators.py [--samples 10] [--app-ms 15]

Needs root, /dev/net/tun and ``ip`` (else it says why and measures the loopback lab only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.config import Estimator
from monitor.lab import load_scenario, start_lab
from monitor.lab.netns import PacketLab, unavailable_reason, write_tls_files
from monitor.round.baseline import auto_estimators
from probes.http import HttpEvidence, HttpTarget, TlsSession, probe_http, ssl_context_for

NAME = "global-alb.example.com"
ESTIMATORS = ("auto", "connect", "handshake", "first_byte")
_TOOL_ESTIMATORS = {"routewatch": ESTIMATORS, "curl": ESTIMATORS[1:]}
_CLIENT_NET, _SERVER_NET = "198.18.1.", "198.18.2."
_CURL_FORMAT = "%{http_code} %{time_connect} %{time_appconnect} %{time_pretransfer} " \
               "%{time_starttransfer}"


def _curl(curl: str, ca: str, source: str, address: str, port: int) -> dict[str, float] | None:
    result = subprocess.run(
        [curl, "-s", "-o", "/dev/null", "--max-time", "10", "--cacert", ca, "--noproxy", "*",
         "--interface", source, "--resolve", f"{NAME}:{port}:{address}", "-w", _CURL_FORMAT,
         f"https://{NAME}:{port}/health"],
        capture_output=True, text=True, timeout=20, check=False, env={**os.environ,
                                                                      "LC_ALL": "C"})
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 5 or parts[0] != "200":
        return None
    connect, appconnect, pretransfer, starttransfer = (float(p) for p in parts[1:])
    return {"connect": connect, "handshake": appconnect - connect,
            "first_byte": starttransfer - pretransfer}


async def _routewatch(ca: str, source: str, address: str, port: int) -> dict[str, Any] | None:
    evidence = await probe_http(HttpTarget(NAME, address, port, "/health", source),
                                ssl_context=ssl_context_for(ca))
    if evidence.error is not None or evidence.status != 200:
        return None
    return {"connect": evidence.phases["connect"], "handshake": evidence.phases["tls"],
            "first_byte": evidence.phases["processing"], "tls": evidence.tls_version or "?"}


def sample(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the client namespace: every cell, both tools, interleaved."""
    curl = shutil.which("curl")
    readings: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with asyncio.Runner() as runner:
        for cell in spec["cells"]:  # warm-up: imports, first handshakes
            runner.run(_routewatch(spec["ca"], cell["source"], cell["address"], cell["port"]))
        for index in range(spec["samples"]):
            for cell in spec["cells"]:
                tools = ["routewatch", "curl"] if curl else ["routewatch"]
                for tool in tools if index % 2 == 0 else reversed(tools):
                    if tool == "curl":
                        assert curl is not None
                        reading = _curl(curl, spec["ca"], cell["source"], cell["address"],
                                        cell["port"])
                    else:
                        reading = runner.run(_routewatch(spec["ca"], cell["source"],
                                                         cell["address"], cell["port"]))
                    readings.setdefault(cell["label"], {}).setdefault(tool, []).append(
                        reading or {})
                    time.sleep(spec["gap_s"])
    return readings


def _cells(scenario_latency: dict[str, dict[str, float]], app_ms: float) -> tuple[
        dict[tuple[str, str], float], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Addresses, round trips, the cells to sample and the origins to start."""
    vantage_names = list(scenario_latency)
    regions = list(next(iter(scenario_latency.values())))
    clients = {name: f"{_CLIENT_NET}{i + 1}" for i, name in enumerate(vantage_names)}
    servers = {region: f"{_SERVER_NET}{i + 1}" for i, region in enumerate(regions)}
    origins: dict[str, dict[str, Any]] = {servers[r]: {"region": r} for r in regions}
    near = regions[0]
    variants: dict[str, tuple[str, dict[str, Any]]] = {
        f"{near} (app +{app_ms:g} ms)": ("11", {"region": near, "processing_ms": app_ms}),
        f"{near} (TLS 1.2 only)": ("12", {"region": near, "tls": "1.2"})}
    rtt: dict[tuple[str, str], float] = {}
    cells = []
    for name in vantage_names:
        for region in regions:
            rtt[(clients[name], servers[region])] = scenario_latency[name][region] / 1000
            cells.append({"label": f"{name}->{region}", "source": clients[name],
                          "address": servers[region], "rtt_s": scenario_latency[name][region]
                          / 1000, "handshake_trips": 1})
    first = vantage_names[0]
    for label, (suffix, origin) in variants.items():
        address = f"{_SERVER_NET}{suffix}"
        origins[address] = origin
        rtt[(clients[first], address)] = scenario_latency[first][near] / 1000
        cells.append({"label": f"{first}->{label}", "source": clients[first],
                      "address": address, "rtt_s": scenario_latency[first][near] / 1000,
                      "handshake_trips": 2 if "tls" in origin else 1})
    return rtt, cells, origins


def add_auto(cells: Sequence[dict[str, Any]], readings: dict[str, Any]) -> list[str]:
    """Each routewatch reading gets ``auto``: what the default makes of its vantage point's row
    (every cell from the same source, all samples), decided as a round decides it. Returns one
    line per row saying what was chosen."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        rows.setdefault(cell["source"], []).append(cell)
    chosen = []
    for source, row in rows.items():
        evidence = {cell["label"]: [HttpEvidence(
            HttpTarget(NAME, cell["address"]), 200,
            {"connect": s["connect"], "tls": s["handshake"], "processing": s["first_byte"]},
            0.0, tls=TlsSession(s["tls"], False, None))
            for s in readings.get(cell["label"], {}).get("routewatch", []) if s]
            for cell in row}
        decided = auto_estimators(evidence)
        for cell in row:
            estimator, _ = decided[cell["label"]]
            key = "connect" if estimator is Estimator.CONNECT else "first_byte"
            for s in readings.get(cell["label"], {}).get("routewatch", []):
                if s:
                    s["auto"] = s[key]
        reasons = sorted({f"{e.value} ({why})" for e, why in decided.values()})
        chosen.append(f"{source}: auto chose {', '.join(reasons)}")
    return chosen


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1000:+.2f} / {min(values) * 1000:+.2f}"


def report(title: str, cells: Sequence[dict[str, Any]], readings: dict[str, Any],
           tools: Sequence[str], honest: int) -> dict[tuple[str, str], float | None]:
    """Print one table (error = reading - injected round trip, ms, median / min) and return
    the median |error| per (tool, estimator) over the first ``honest`` cells."""
    print(f"\n== {title} ==")
    header = ["cell", "RTT"] + [f"{tool} {e}" for tool in tools for e in _TOOL_ESTIMATORS[tool]]
    rows = []
    errors: dict[tuple[str, str], list[float]] = {}
    for position, cell in enumerate(cells):
        row = [cell["label"], f"{cell['rtt_s'] * 1000:.0f}"]
        for tool in tools:
            samples = [s for s in readings.get(cell["label"], {}).get(tool, []) if s]
            for estimator in _TOOL_ESTIMATORS[tool]:
                trips = cell["handshake_trips"] if estimator == "handshake" else 1
                values = [s[estimator] / trips - cell["rtt_s"] for s in samples]
                row.append(_ms(values))
                if position < honest:
                    errors.setdefault((tool, estimator), []).extend(abs(v) for v in values)
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths, strict=True))))
    return {key: statistics.median(values) if values else None
            for key, values in errors.items()}


def _loopback_readings(samples: int, gap_s: float) -> tuple[list[dict[str, Any]],
                                                            dict[str, Any]]:
    """The same estimators from routewatch's probe against the loopback lab."""
    with start_lab(load_scenario("healthy")) as lab:
        cells: list[dict[str, Any]] = [{"label": f"{v}->{r}", "source": lab.vantage_points[v],
                  "address": lab.regions[r], "port": lab.https_port,
                  "rtt_s": spec.latency_ms[r] / 1000, "handshake_trips": 1}
                 for v, spec in lab.scenario.vantage_points.items() for r in lab.regions]
        readings: dict[str, Any] = {}
        with asyncio.Runner() as runner:
            for index in range(samples + 1):
                for cell in cells:
                    reading = runner.run(_routewatch(str(lab.ca_path), cell["source"],
                                                     cell["address"], cell["port"]))
                    if index:  # the first pass warms up
                        readings.setdefault(cell["label"], {}).setdefault(
                            "routewatch", []).append(reading or {})
                    time.sleep(gap_s)
    return cells, readings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10, help="per tool and cell")
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--app-ms", type=float, default=15.0, help="the slow app's own time")
    parser.add_argument("--sample", help=argparse.SUPPRESS)  # inside the client namespace
    args = parser.parse_args(argv)
    if args.sample:
        print(json.dumps(sample(json.loads(args.sample))))
        return 0
    samples = max(1, min(args.samples, 200))
    gap_s = max(0.0, min(args.gap_ms, 1000.0)) / 1000
    print(f"estimators benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}; machine: "
          f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f} (shared with other work)")
    scenario = load_scenario("healthy")
    latency = {name: dict(spec.latency_ms) for name, spec in scenario.vantage_points.items()}
    tools = ["routewatch", "curl"] if shutil.which("curl") else ["routewatch"]
    honest = len(latency) * len(next(iter(latency.values())))
    summary: dict[str, dict[tuple[str, str], float | None]] = {}
    reason = unavailable_reason()
    if reason is not None:
        print(f"packet-level lab skipped: {reason}")
    else:
        rtt, cells, origins = _cells(latency, args.app_ms)
        with tempfile.TemporaryDirectory(prefix="routewatch-estimators-") as tmp, \
                PacketLab(rtt) as lab:
            cert, key, ca_file = write_tls_files(Path(tmp), NAME)
            ports = lab.start_origins(cert, key, origins)
            for cell in cells:
                cell["port"] = ports[cell["address"]]
            spec = {"cells": cells, "samples": samples, "gap_s": gap_s, "ca": str(ca_file)}
            run = subprocess.run(
                lab.in_clients([sys.executable, str(Path(__file__).resolve()), "--sample",
                                json.dumps(spec)]),
                capture_output=True, text=True, timeout=600, check=False)
            if run.returncode != 0:
                print(run.stderr[-3000:])
                return 1
            readings = json.loads(run.stdout)
            stats = lab.router_stats()
        for line in add_auto(cells, readings):
            print(line)
        summary["packet-level lab"] = report(
            f"packet-level lab: error = reading - injected round trip, ms, median / min of "
            f"{samples} (handshake / 2 for TLS 1.2)", cells, readings, tools, honest)
        print(f"router: {stats.forwarded} packets forwarded, {stats.dropped} dropped (IPv6 "
              f"and such), lateness p50 {stats.lateness_p50_s * 1e6:.0f} us, p99 "
              f"{stats.lateness_p99_s * 1e6:.0f} us, max {stats.lateness_max_s * 1e6:.0f} us "
              f"({stats.scheduling})")
    loop_cells, loop_readings = _loopback_readings(samples, gap_s)
    for line in add_auto(loop_cells, loop_readings):
        print(f"loopback lab {line}")
    summary["loopback lab"] = report(
        f"loopback lab (TCP delay proxy), routewatch only, same estimators, median / min of "
        f"{samples}", loop_cells, loop_readings, ["routewatch"], len(loop_cells))
    print(f"\nmedian |error| over the {honest} vantage point x region cells, ms")
    for world, medians in summary.items():
        for (tool, estimator), value in sorted(medians.items()):
            shown = f"{value * 1000:.2f}" if value is not None else "-"
            print(f"  {world:17} {tool:10} {estimator:10} {shown}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
