"""Do scrapes disturb measurements? ``routewatch serve`` on a lab world, measured with and without
a flood of concurrent ``/metrics`` scrapers.

One ``routewatch serve --lab SCENARIO`` process (the lab world runs in its child process, as
always) probes every vantage point every ``--interval`` seconds and logs each round as a JSON
line. The run alternates phases of ``--phase`` seconds: *quiet* (nobody scrapes) and *flood*
(``--scrapers`` concurrent clients, in a separate process, each requesting ``/metrics`` again as
soon as the last answer is read; bounded by the phase's duration and ``--max-requests``). For each
(vantage point, region) cell of the latency matrix, every round's estimate minus the round trip
the lab injects is an error; the script prints, per cell and phase, the median and the 95th
percentile of those errors, then all cells together, then ``/metrics`` response times under the
flood (p50, p99, max; whole-response, from request sent to the last byte). The machine's load
average before and after is printed too: a shared machine shows up there.

Then, in this process, the mechanism: an asyncio loop timing 2 ms sleeps (how late it wakes up
is what a timed read suffers) beside a ``MetricsServer`` holding the last round's snapshot,
with nobody scraping, with the flood served from the cached exposition, and with the flood
served by rendering on every request (how ``/metrics`` worked before), ``--lag`` seconds each.

Everything listens on loopback (127.0.0.1 and the lab's 127.x addresses). ``--pythonpath DIR``
runs ``serve`` from another checkout (e.g. the code before a change) for a before/after.

Run: ``make bench`` (with accuracy.py) or ``.venv/bin/python bench/scrape_flood.py [--help]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.lab import load_scenario

_START_LINES = 2000  # serve's log lines read while waiting for it to listen
_IO_TIMEOUT_S = 30.0


# --- the scrapers (a child process: their CPU is not serve's) -----------------------------------


async def _scrape(host: str, port: int, until: float, max_requests: int,
                  latencies: list[float], failures: list[str]) -> None:
    """One client: GET /metrics on a fresh connection, again and again, until the deadline."""
    request = (f"GET /metrics HTTP/1.0\r\nHost: {host}:{port}\r\n"
               f"Accept: application/openmetrics-text;version=1.0.0;q=0.5,"
               f"text/plain;version=0.0.4;q=0.3\r\n\r\n").encode()
    for _ in range(max_requests):
        if time.monotonic() >= until:
            return
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    _IO_TIMEOUT_S)
            writer.write(request)
            body = await asyncio.wait_for(reader.read(), _IO_TIMEOUT_S)
            writer.close()
            if body[9:12] != b"200":  # "HTTP/1.x 200 …"
                failures.append(body[:40].decode("latin-1"))
                continue
        except (OSError, TimeoutError) as exc:
            failures.append(type(exc).__name__)
            continue
        latencies.append(time.perf_counter() - started)


async def _flood(url: str, scrapers: int, seconds: float, max_requests: int) -> dict[str, Any]:
    match = re.fullmatch(r"http://([0-9.]+):(\d+)", url)
    if match is None:
        raise SystemExit(f"--scrape wants http://ADDRESS:PORT, not {url!r}")
    host, port = match.group(1), int(match.group(2))
    latencies: list[float] = []
    failures: list[str] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(_scrape(host, port, until, max_requests, latencies, failures)
                           for _ in range(scrapers)))
    return {"latencies": latencies, "failures": failures}


def scrape_main(url: str, scrapers: int, seconds: float, max_requests: int) -> None:
    print(json.dumps(asyncio.run(_flood(url, scrapers, seconds, max_requests))))


def curl_flood(url: str, scrapers: int, seconds: float, max_requests: int) -> dict[str, Any]:
    """The flood from one curl process (``--parallel``: C, so the scrapers' own CPU stays small
    beside serve's): ``scrapers`` transfers at a time, stopped after ``seconds``."""
    command = ["curl", "--silent", "--no-progress-meter", "--parallel", "--parallel-immediate",
               "--parallel-max", str(scrapers), "--max-time", str(_IO_TIMEOUT_S),
               "--output", "/dev/null",
               "--write-out", "%{http_code} %{time_total}\\n",
               f"{url}/metrics?[1-{max_requests * scrapers}]"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as process:
        timer = threading.Timer(seconds, process.terminate)
        timer.start()
        output, _ = process.communicate(timeout=seconds + _IO_TIMEOUT_S + 10)
        timer.cancel()
    latencies, failures = [], []
    for line in output.splitlines():
        code, _, total = line.partition(" ")
        if code == "200" and re.fullmatch(r"\d+(\.\d+)?", total):
            latencies.append(float(total))
        elif code not in ("000", "200"):  # 000: cut off when the phase ended (or a cut line)
            failures.append(code)
    return {"latencies": latencies, "failures": failures}


# --- serve, its rounds, the phases ----------------------------------------------------------------


@dataclass
class Serve:
    """``routewatch serve`` as a child process; its JSON log lines are read on a thread."""

    process: subprocess.Popen[str]
    url: str = ""
    rounds: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, scenario: str, interval: float, pythonpath: str | None) -> Serve:
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "serve", "--lab", scenario, "--interval",
             str(interval), "--jitter", "0", "--listen", "127.0.0.1:0", "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            cwd=pythonpath)  # python -m puts the working directory first on sys.path
        serve = cls(process)
        assert process.stderr is not None
        for _ in range(_START_LINES):
            line = process.stderr.readline()
            if not line:
                break
            record = _record(line)
            if record.get("event") == "listening":
                serve.url = str(record["url"])
                break
        if not serve.url:
            serve.stop()
            raise SystemExit("serve did not start listening")
        threading.Thread(target=serve._read, daemon=True).start()
        return serve

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            record = _record(line)
            if record.get("event") == "round":
                record["_seen"] = time.time()
                self.rounds.append(record)
            elif record.get("level") in ("error", "warning"):
                self.lines.append(line.strip())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _record(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


@dataclass
class Phase:
    name: str
    started: float
    ended: float
    scrape: dict[str, Any] | None = None


def flood(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Scrape ``url`` from ``args.scrapers`` concurrent clients for ``args.phase`` seconds: curl
    when it is installed (lighter), else this script's own asyncio clients in a child process."""
    if shutil.which("curl"):
        return curl_flood(url, args.scrapers, args.phase, args.max_requests)
    child = subprocess.run(
        [sys.executable, __file__, "--scrape", url, "--scrapers", str(args.scrapers), "--phase",
         str(args.phase), "--max-requests", str(args.max_requests)],
        capture_output=True, text=True, timeout=args.phase + 120, check=True)
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def run_phases(serve: Serve, args: argparse.Namespace) -> list[Phase]:
    phases = []
    for index in range(args.pairs * 2):
        flooding = index % 2 == 1
        started = time.time()
        scrape = None
        if flooding:
            scrape = flood(serve.url, args)
        else:
            time.sleep(args.phase)  # nobody scrapes: the rounds of this phase are the reference
        phases.append(Phase("flood" if flooding else "quiet", started, time.time(), scrape))
        print(f"  phase {index + 1}/{args.pairs * 2}: {phases[-1].name}, "
              f"{len(serve.rounds)} rounds so far", flush=True)
    return phases


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cell_errors(rounds: Sequence[dict[str, Any]], phases: Sequence[Phase], injected:
                dict[str, dict[str, float]]) -> dict[str, dict[tuple[str, str], list[float]]]:
    """Per phase kind, per (vantage point, region): every round's estimate − injected RTT, ms.
    A round belongs to the phase in which it started and ended."""
    errors: dict[str, dict[tuple[str, str], list[float]]] = {"quiet": {}, "flood": {}}
    for record in rounds:
        started = datetime.fromisoformat(record["started_at"]).timestamp()
        ended = started + float(record["duration_seconds"])
        phase = next((p for p in phases if p.started <= started and ended <= p.ended), None)
        if phase is None:
            continue
        for region, latency in record["regions"].items():
            if latency is None:
                continue
            rtt = injected[record["vantage"]][region]
            errors[phase.name].setdefault((record["vantage"], region), []).append(
                latency * 1000 - rtt)
    return errors


def report(errors: dict[str, dict[tuple[str, str], list[float]]], phases: Sequence[Phase],
           injected: dict[str, dict[str, float]], scrapers: int) -> None:
    print("\nmeasured minus injected round trip, ms: median / p95 over rounds (n rounds)")
    print(f"| cell | RTT | quiet | flood ({scrapers} scrapers) |")
    print("| --- | ---: | ---: | ---: |")
    for vantage, row in injected.items():
        for region, rtt in row.items():
            cells = []
            for kind in ("quiet", "flood"):
                found = errors[kind].get((vantage, region), [])
                cells.append(f"{statistics.median(found):+.2f} / {percentile(found, 0.95):+.2f}"
                             f" ({len(found)})" if found else "–")
            print(f"| {vantage}→{region} | {rtt:g} | {cells[0]} | {cells[1]} |")
    for kind in ("quiet", "flood"):
        every = [e for values in errors[kind].values() for e in values]
        if every:
            print(f"all cells, {kind}: median {statistics.median(every):+.2f} ms, p95 "
                  f"{percentile(every, 0.95):+.2f} ms, max {max(every):+.2f} ms, "
                  f"{len(every)} estimates")
    latencies = [s for p in phases if p.scrape for s in p.scrape["latencies"]]
    failures = [f for p in phases if p.scrape for f in p.scrape["failures"]]
    seconds = sum(p.ended - p.started for p in phases if p.scrape)
    if latencies:
        print(f"/metrics under the flood: {len(latencies)} scrapes in {seconds:.0f} s "
              f"({len(latencies) / seconds:.0f}/s), p50 {percentile(latencies, 0.5) * 1000:.1f} "
              f"ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max "
              f"{max(latencies) * 1000:.1f} ms, {len(failures)} failed")


# --- the mechanism: loop lag beside the HTTP server, in this process ---------------------------


def _flood_into(into: list[dict[str, Any]], url: str, args: argparse.Namespace) -> None:
    into.append(flood(url, args))


async def _loop_lag(seconds: float) -> list[float]:
    """How late (ms) a 2 ms sleep wakes up, again and again for ``seconds``."""
    lags: list[float] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.perf_counter()
        await asyncio.sleep(0.002)
        lags.append((time.perf_counter() - started - 0.002) * 1000)
    return lags


def loop_lag(args: argparse.Namespace) -> None:
    from prometheus_client import CollectorRegistry

    from monitor.config import load_config
    from monitor.exporters.prometheus import (
        Exposition,
        MetricsServer,
        RoundCollector,
        health_report,
    )
    from monitor.lab import start_lab
    from monitor.metrics import SnapshotStore
    from monitor.round.run import run_round

    print(f"\nloop lag beside /metrics, in-process, {args.lag:g} s each: how late a 2 ms sleep "
          f"wakes, ms (median / p95 / p99 / max), and /metrics under {args.scrapers} scrapers")
    print("| /metrics | loop lag | scrapes |\n| --- | ---: | ---: |")
    with start_lab(load_scenario(args.scenario)) as world:  # one real round for the snapshot
        config = load_config(world.config_path).config
        result = asyncio.run(run_round(config))
    store = SnapshotStore(config)
    for vantage in result.vantage_points:
        store.publish(vantage)
    per_request = CollectorRegistry()
    per_request.register(RoundCollector(store.current))
    modes = {"nobody scrapes": None,
             "cached exposition": MetricsServer(CollectorRegistry(), lambda: health_report(
                 store.current(), time.time()), "127.0.0.1:0", exposition=Exposition(
                 store.current)),
             "rendered per request": MetricsServer(per_request, lambda: health_report(
                 store.current(), time.time()), "127.0.0.1:0")}
    for name, server in modes.items():
        scraped: list[dict[str, Any]] = []
        scraper = None
        if server is not None:
            server.start()
            lag_args = argparse.Namespace(**{**vars(args), "phase": args.lag + 1})
            scraper = threading.Thread(target=_flood_into, args=(scraped, server.url, lag_args))
            scraper.start()
        lags = sorted(asyncio.run(_loop_lag(args.lag)))
        line = (f"| {name} | {statistics.median(lags):.2f} / {percentile(lags, 0.95):.2f} / "
                f"{percentile(lags, 0.99):.2f} / {lags[-1]:.1f} |")
        if scraper is not None and server is not None:
            scraper.join(args.lag + 120)
            server.stop()
            scrapes = scraped[0]["latencies"] if scraped else []
            if scrapes:
                line += (f" {len(scrapes) / (args.lag + 1):.0f}/s, p50 "
                         f"{percentile(scrapes, 0.5) * 1000:.1f} ms, p99 "
                         f"{percentile(scrapes, 0.99) * 1000:.1f} ms |")
        else:
            line += " – |"
        print(line, flush=True)


@contextlib.contextmanager
def serving(args: argparse.Namespace) -> Iterator[Serve]:
    serve = Serve.start(args.scenario, args.interval, args.pythonpath)
    try:
        yield serve
    finally:
        serve.stop()


def main(args: argparse.Namespace) -> None:
    scenario = load_scenario(args.scenario)
    injected = {name: dict(v.latency_ms) for name, v in scenario.vantage_points.items()}
    load_before = os.getloadavg()
    print(f"scrape flood: scenario {args.scenario}, rounds every {args.interval:g} s, "
          f"{args.pairs} × (quiet {args.phase:g} s, {args.scrapers} scrapers {args.phase:g} s)"
          + (f", serve from {args.pythonpath}" if args.pythonpath else ""), flush=True)
    with serving(args) as serve:
        time.sleep(args.interval * 2)  # the first rounds warm up (imports, TLS contexts)
        phases = run_phases(serve, args)
        rounds = list(serve.rounds)
        problems = list(serve.lines)
    report(cell_errors(rounds, phases, injected), phases, injected, args.scrapers)
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
          f"{load_after[2]:.2f} on {os.cpu_count()} CPUs")
    if problems:
        print(f"serve logged {len(problems)} warnings/errors, e.g. {problems[0][:200]}")
    if args.lag > 0:
        loop_lag(args)


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", default="healthy", help="lab scenario (default healthy)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--phase", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--pairs", type=int, default=3, help="quiet+flood phase pairs")
    parser.add_argument("--scrapers", type=int, default=50, help="concurrent scrapers")
    parser.add_argument("--max-requests", type=int, default=20_000,
                        help="most requests per scraper per phase")
    parser.add_argument("--lag", type=float, default=10.0,
                        help="seconds per mode of the in-process loop-lag part (0: skip it)")
    parser.add_argument("--pythonpath", help="run serve from this checkout instead")
    parser.add_argument("--scrape", help=argparse.SUPPRESS)  # the child: flood this URL
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = arguments()
    if options.scrape:
        scrape_main(options.scrape, options.scrapers, options.phase, options.max_requests)
    else:
        main(options)
