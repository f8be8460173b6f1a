"""Many services from one vantage point: 50 services × 10 regions inside a 60 s interval.

One lab world (10 regions, one vantage point, 50 services: every region's origin serves every
service's name, as the lab does) and the configuration it writes, with ``serve.interval_s`` 60.
In the same run, the same 500 (service, region) cells are measured three ways:

* **one round** — ``run_round`` over every service at once (``serve``'s way: one job per vantage
  point, every service's checks on one pacer planned into the round deadline), warm, in-process;
  with the default round deadline (15 s: the plan narrows the gap between starts to fit) and with
  a deadline that uses the interval (45 s: the configured 10 ms gap fits);
* **50 rounds** — one single-service round after another in the same process (each service's
  view of the configuration), the way a loop over the services would do it;
* **50 checks** — ``routewatch check --json`` once per service, each a fresh process with a
  single-service configuration, the way a team without ``services:`` would run it.

A cell is *within bound* when its estimate is within 3 ms + 10 % of the injected round trip;
*disturbed* when measurement trust left it out. CPU is the process's own for the in-process
ways and the children's for the checks. Prints the table and the ratios against the one round.
Run: ``.venv/bin/python bench/services.py`` (part of ``make bench``, ~6 minutes); ``--services``,
``--regions``, ``--rounds``, ``--deadlines`` for other sizes. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from scale import REGIONS as SCALE_REGIONS  # bench/ is this script's folder
from scale import bound_s

from monitor.config import load_config
from monitor.core.model import VantageRound
from monitor.domain.reasons import Reason
from monitor.lab import LabHandle, parse_scenario, start_lab
from monitor.round.run import run_round

ROOT = Path(__file__).resolve().parents[1]
REGIONS = SCALE_REGIONS[:10]
INTERVAL_S = 60.0


def world(services: int, regions: int, seed: int) -> tuple[str, dict[str, float]]:
    rng = random.Random(seed)
    rtts = {r: round(rng.uniform(5, 200), 1) for r in REGIONS[:regions]}
    document = {
        "description": f"{services} services x {regions} regions from one vantage point",
        "regions": {r: {} for r in rtts},
        "vantage_points": {"v0": {"location": "FRA", "latency_ms": rtts}},
        "services": {f"s{i:02d}": {"origin_name": f"s{i:02d}-alb.example.com"}
                     for i in range(services)},
    }
    return json.dumps(document), rtts


class Tally:
    """Cells of many rounds against the injected round trips."""

    def __init__(self, injected: dict[str, float]) -> None:
        self.injected = injected
        self.cells = self.within = self.disturbed = self.unmeasured = self.misjudged = 0
        self.errors: list[float] = []

    def add(self, rounds: Iterable[VantageRound]) -> None:
        for vantage in rounds:
            self.misjudged += sum(p.verdict.state.value not in ("ok", "unknown")
                                  for p in vantage.paths)
            self.add_rows((row.region, row.latency_seconds, row.reason)
                          for row in vantage.regions)

    def add_rows(self, rows: Iterable[tuple[str, float | None, str | None]]) -> None:
        for region, latency, reason in rows:
            self.cells += 1
            if reason == Reason.MEASUREMENT_DISTURBED:
                self.disturbed += 1
            elif latency is None:
                self.unmeasured += 1
            else:
                error = latency * 1000 - self.injected[region]
                self.errors.append(error)
                self.within += abs(error) / 1000.0 <= bound_s(self.injected[region])

    def error_text(self) -> str:
        if not self.errors:
            return "—"
        return (f"{statistics.median(self.errors):+.1f} / "
                f"{max(self.errors, key=abs):+.1f} ms")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_round(lab: LabHandle, config_path: Path, rounds: int,
              tally: Tally) -> tuple[list[float], list[float], str]:
    config = load_config(config_path).config
    walls, cpus, plan = [], [], ""
    with asyncio.Runner() as runner:
        runner.run(run_round(config.for_service(config.service_names[0])))  # warm, as serve is
        for _ in range(rounds):
            cpu = time.process_time()
            result = runner.run(run_round(config, lag_sources=[lab.lateness_source()]))
            cpus.append(time.process_time() - cpu)
            walls.append(result.duration_seconds)
            tally.add(result.vantage_points)
            if result.plan is not None:
                plan = (f"{result.plan.checks} checks, gap {result.plan.gap_seconds * 1000:.1f} "
                        f"ms, {result.plan.planned_seconds:.1f} s of a "
                        f"{result.plan.deadline_seconds:.0f} s deadline, "
                        f"{'fits' if result.plan.fits else 'DOES NOT FIT'}")
    return walls, cpus, plan


def round_per_service(lab: LabHandle, config_path: Path, tally: Tally) -> tuple[float, float]:
    config = load_config(config_path).config
    with asyncio.Runner() as runner:
        runner.run(run_round(config.for_service(config.service_names[0])))
        cpu, started = time.process_time(), time.perf_counter()
        for _, view in config.service_views():
            result = runner.run(run_round(view, lag_sources=[lab.lateness_source()]))
            tally.add(result.vantage_points)
        return time.perf_counter() - started, time.process_time() - cpu


def check_per_service(config_path: Path, folder: Path, tally: Tally) -> tuple[float, float]:
    document = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    services = document.pop("services")
    paths = []
    for name, service in services.items():
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"service": service, **document}), encoding="utf-8")
        paths.append(path)
    cpu, started = children_cpu(), time.perf_counter()
    for path in paths:
        run = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--config",
                              str(path), "--json"], capture_output=True, text=True,
                             cwd=ROOT, timeout=120, check=False)
        if run.returncode not in (0, 1):
            raise SystemExit(f"check --config {path} failed ({run.returncode}): {run.stderr}")
        for vantage in json.loads(run.stdout)["vantage_points"]:
            tally.misjudged += sum(p["state"] not in ("ok", "unknown") for p in vantage["paths"])
            tally.add_rows((r["region"], r["latency_seconds"], r["reason"])
                           for r in vantage["regions"])
    return time.perf_counter() - started, children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--regions", type=int, default=10, choices=range(1, len(REGIONS) + 1),
                        metavar=f"1..{len(REGIONS)}")
    parser.add_argument("--rounds", type=int, default=3, help="multi-service rounds")
    parser.add_argument("--deadlines", default="15,45",
                        help="probe.round_deadline_s of the one-round runs, comma-separated")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    started = time.monotonic()
    text, injected = world(args.services, args.regions, seed=args.services * 100 + args.regions)
    rows: list[dict[str, Any]] = []
    plans = []
    with start_lab(parse_scenario(text, name="services")) as lab, \
            tempfile.TemporaryDirectory(prefix="routewatch-services-") as tmp:
        document = yaml.safe_load(lab.config_path.read_text(encoding="utf-8"))
        document["serve"] = {"interval_s": INTERVAL_S}
        config_path = Path(tmp) / "services.yaml"
        for deadline in (float(d) for d in args.deadlines.split(",")):
            document["probe"]["round_deadline_s"] = deadline
            config_path.write_text(yaml.safe_dump(document), encoding="utf-8")
            tally = Tally(injected)
            walls, cpus, plan = one_round(lab, config_path, args.rounds, tally)
            plans.append(plan)
            rows.append({"way": f"one round, every service, deadline {deadline:g} s "
                                f"(× {args.rounds})", "tally": tally,
                         "wall": statistics.median(walls), "cpu": statistics.median(cpus),
                         "worst_wall": max(walls)})
        tally = Tally(injected)
        wall, cpu = round_per_service(lab, config_path, tally)
        rows.append({"way": f"{args.services} single-service rounds, one process",
                     "tally": tally, "wall": wall, "cpu": cpu, "worst_wall": wall})
        tally = Tally(injected)
        wall, cpu = check_per_service(config_path, Path(tmp), tally)
        rows.append({"way": f"{args.services} × `routewatch check` (fresh processes)",
                     "tally": tally, "wall": wall, "cpu": cpu, "worst_wall": wall})
    cells = args.services * args.regions
    print(f"services: {args.services} services × {args.regions} regions from one vantage point "
          f"({cells} cells per round), interval {INTERVAL_S:.0f} s; plans: {'; '.join(plans)}; "
          f"{time.monotonic() - started:.0f} s; load average before {load:.1f} (the machine is "
          f"shared with other work)")
    print("| way | wall time for all services | CPU | within a 60 s interval | cells within "
          "3 ms + 10% | disturbed (left out) | unmeasured | median / worst error | "
          "paths not ok (none injected) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    base = rows[0]
    for row in rows:
        tally = row["tally"]
        ratio = "" if row is base else (f" ({row['wall'] / base['wall']:.1f}× row 1; CPU "
                                        f"{row['cpu'] / base['cpu']:.1f}×)")
        print(f"| {row['way']} | {row['wall']:.1f} s{ratio} | {row['cpu']:.1f} s | "
              f"{'yes' if row['worst_wall'] <= INTERVAL_S else 'NO'} "
              f"(worst {row['worst_wall']:.1f} s) | {tally.within}/{tally.cells} | "
              f"{tally.disturbed} | {tally.unmeasured} | {tally.error_text()} | "
              f"{tally.misjudged} |")
    one_rounds = rows[:len(plans)]
    return 0 if all(row["worst_wall"] <= INTERVAL_S for row in one_rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
