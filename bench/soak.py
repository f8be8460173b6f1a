"""Does ``serve`` hold its memory? 10,000 rounds in one process, RSS sampled, slope reported.

The rounds run as ``routewatch serve`` runs them, minus the clock: one long-lived event loop, one
:class:`~monitor.serve.scheduler.RoundScheduler`, ``run_vantage`` back to back (``run_round``
for the vantage point, the snapshot store, hysteresis, the round log line and the evidence lines
through serve's JSON log formatter, to /dev/null), and a Prometheus exposition of the store
every ``--scrape-every`` rounds (a scrape). The world is as small as a round gets, so the count
is high and the run bounded: one vantage point, one region, one sample, a 1 ms round trip, a 2 s
deadline (written to a temporary file).

Every ``--sample-every`` rounds: this process's RSS (``/proc/self/status`` VmRSS), the number of
objects the garbage collector tracks, the lab's RSS; and, as a peer measured in the same run, the
RSS of a blackbox_exporter that probes the same region once per round (skipped when it is not
installed). The slope of RSS over rounds is a least-squares fit over the second half of the run
(the first half includes warm-up: caches, the airport table, arenas); a flat process has a
slope near 0 KiB per 1,000 rounds.

    .venv/bin/python bench/soak.py [--rounds 10000] [--sample-every 100]

Everything stays on loopback; the lab and the exporter are stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from accuracy import Blackbox, World, _http_module  # bench/ is this script's folder
from prometheus_client import CollectorRegistry, generate_latest

from monitor.cli.serve import configure_logging
from monitor.config import load_config
from monitor.exporters.prometheus import RoundCollector
from monitor.lab import LabHandle, load_scenario, start_lab
from monitor.metrics import SnapshotStore
from monitor.serve.scheduler import RoundScheduler

WORLD = {
    "description": "The smallest world a round has: bench/soak.py runs it 10,000 times.",
    "regions": {"us-east-1": {}},
    "vantage_points": {"nyc": {"latency_ms": {"us-east-1": 1}, "location": "JFK"}},
    "probe": {"samples": 1, "round_deadline_s": 2.0, "request_timeout_s": 1.0,
              "connect_timeout_s": 1.0, "dns_timeout_s": 0.5, "pace_ms": 0.0},
}


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process, KiB (0 when it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slope_per_1000(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of ``(round, value)`` points, per 1,000 rounds."""
    if len(points) < 2:
        return 0.0
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return 1000 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


@dataclass(frozen=True)
class Sample:
    round: int
    rss_kib: int
    gc_objects: int
    lab_rss_kib: int
    peer_rss_kib: int
    seconds: float


async def soak(lab: LabHandle, rounds: int, sample_every: int, scrape_every: int,
               peer: Blackbox | None, peer_url: str) -> tuple[list[Sample], int, int]:
    def peer_probe() -> bool:
        assert peer is not None
        try:
            return peer.probe("soak", peer_url).get("probe_success") == 1.0
        except OSError:
            return False

    loaded = load_config(lab.config_path)
    store = SnapshotStore(loaded.config)
    registry = CollectorRegistry()
    registry.register(RoundCollector(store.current))
    scheduler = RoundScheduler(loaded, store)
    name = next(iter(loaded.config.vantage_points))
    samples: list[Sample] = []
    failed = peer_failed = 0
    started = time.perf_counter()
    lab_pid = lab.process.pid or 0
    for index in range(1, rounds + 1):
        entry = await scheduler.run_vantage(name)
        if entry is None or entry.result.errors:
            failed += 1
        if index % scrape_every == 0:
            generate_latest(registry)
        if peer is not None:
            peer_failed += not await asyncio.to_thread(peer_probe)
        if index % sample_every == 0 or index == 1:
            samples.append(Sample(index, rss_kib(), len(gc.get_objects()), rss_kib(lab_pid),
                                  rss_kib(peer.process.pid) if peer and peer.process else 0,
                                  time.perf_counter() - started))
            if index % (sample_every * 10) == 0:
                last = samples[-1]
                print(f"  round {index}: RSS {last.rss_kib / 1024:.1f} MiB, "
                      f"{last.gc_objects} objects, {last.seconds:.0f} s", flush=True)
    return samples, failed, peer_failed


def report(samples: Sequence[Sample], rounds: int, failed: int, peer_failed: int,
           peer: bool) -> None:
    second_half = [s for s in samples if s.round > rounds // 2]
    first, last = samples[0], samples[-1]
    print(f"\n{rounds} rounds in {last.seconds:.0f} s "
          f"({last.seconds / rounds * 1000:.1f} ms per round); rounds with errors: {failed}"
          + (f"; blackbox_exporter probes failed: {peer_failed}" if peer else ""))
    header = ["process", "RSS at round 1", f"at {second_half[0].round}", f"at {last.round}",
              "slope, 2nd half (KiB / 1,000 rounds)"]
    series = {"routewatch (serve's round path)": [(s.round, s.rss_kib) for s in samples],
              "the lab (its process)": [(s.round, s.lab_rss_kib) for s in samples]}
    if peer:
        series["blackbox_exporter (a probe per round)"] = [(s.round, s.peer_rss_kib)
                                                           for s in samples]
    middle = samples.index(second_half[0])
    table = [header]
    for name, points in series.items():
        late = [p for p in points if p[0] > rounds // 2]
        table.append([name, *(f"{points[i][1] / 1024:.1f} MiB" for i in (0, middle, -1)),
                      f"{slope_per_1000(late):+.1f}"])
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths, strict=True))))
    objects = slope_per_1000([(s.round, s.gc_objects) for s in second_half])
    print(f"objects tracked by the garbage collector: {first.gc_objects} at round 1, "
          f"{second_half[0].gc_objects} at {second_half[0].round}, {last.gc_objects} at "
          f"{last.round}; slope over the 2nd half {objects:+.1f} per 1,000 rounds")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--scrape-every", type=int, default=10)
    parser.add_argument("--no-peer", action="store_true", help="without blackbox_exporter")
    args = parser.parse_args(argv)
    rounds = max(10, min(args.rounds, 1_000_000))
    sample_every = max(1, min(args.sample_every, rounds))
    # serve's own logging (JSON, a line per round and per path), written to /dev/null
    sink = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
    with contextlib.redirect_stderr(sink):
        configure_logging("json")

    binary = None if args.no_peer else (shutil.which("prometheus-blackbox-exporter")
                                        or shutil.which("blackbox_exporter"))
    print(f"serve RSS soak, {time.strftime('%Y-%m-%d %H:%M:%S')}; machine: {os.cpu_count()} "
          f"CPUs, {platform.machine()}, Python {platform.python_version()}, load average "
          f"{os.getloadavg()[0]:.2f}; peer: {binary or 'none'}")
    with tempfile.TemporaryDirectory(prefix="routewatch-soak-") as tmp:
        world = Path(tmp) / "soak-world.yaml"
        world.write_text(yaml.safe_dump(WORLD, sort_keys=False), encoding="utf-8")
        peer: Blackbox | None = None
        with start_lab(load_scenario(world)) as lab:
            try:
                service = lab.config_dict["service"]
                address = next(iter(lab.regions.values()))
                peer_url = f"https://{address}:{lab.https_port}{service['health_path']}"
                if binary is not None:
                    world_of = World(lab, service["origin_name"], lab.https_port,
                                     service["health_path"], str(lab.ca_path))
                    peer = Blackbox(binary, Path(tmp), {"soak": _http_module(world_of)})
                    peer.start()
                samples, failed, peer_failed = asyncio.run(
                    soak(lab, rounds, sample_every, max(1, args.scrape_every), peer, peer_url))
            finally:
                if peer is not None:
                    peer.stop()
    report(samples, rounds, failed, peer_failed, peer is not None)
    print(f"load average at the end {os.getloadavg()[0]:.2f} (the machine is shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
