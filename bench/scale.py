"""Rounds at scale: regions × vantage points against a lab world, every cell checked.

For each world size (3×3, 10×10, 20×30 by default) a seeded lab world injects a round trip per
(vantage point, region) cell; a few rounds run with the configuration the lab writes (3 samples,
the default deadline). A cell is *within bound* when its estimate is within 3 ms + 10 % of the
injected round trip (the issue's bound); *disturbed* when measurement trust left it out
(``measurement_disturbed``); a round is *within deadline* when no vantage point hit it. Prints the
table and the round plan (closed-loop pacing). Run: ``.venv/bin/python bench/scale.py``
(part of ``make bench``). The machine may be shared: the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import load_config
from monitor.domain.reasons import Reason
from monitor.lab import parse_scenario, start_lab

if TYPE_CHECKING:
    from monitor.lab import LabHandle, LabStats
from monitor.round.run import run_round

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "eu-central-1",
           "ap-northeast-1", "sa-east-1", "ap-south-1", "ca-central-1", "eu-north-1",
           "us-east-2", "us-west-1", "eu-west-2", "eu-west-3", "ap-northeast-2",
           "ap-southeast-2", "me-central-1", "af-south-1", "ap-east-1", "eu-south-1")
PLACES = ("JFK", "DUB", "SIN", "SFO", "FRA", "NRT", "GRU", "BOM", "YYZ", "ARN", "ORD", "LAX",
          "LHR", "CDG", "ICN", "SYD", "DXB", "JNB", "HKG", "MXP", "IAD", "SEA", "AMS", "MAD",
          "WAW", "DEL", "KIX", "MEL", "BOG", "SCL")


def world(regions: int, vantage_points: int, seed: int) -> tuple[str, dict[str, dict[str, float]]]:
    rng = random.Random(seed)
    names = REGIONS[:regions]
    matrix: dict[str, dict[str, float]] = {}
    for j in range(vantage_points):
        matrix[f"v{j}"] = {r: round(rng.uniform(5, 200), 1) for r in names}
    document = {
        "description": f"scale {regions}x{vantage_points}",
        "regions": {r: {} for r in names},
        "vantage_points": {name: {"location": PLACES[j % len(PLACES)], "latency_ms": rtts}
                           for j, (name, rtts) in enumerate(matrix.items())},
    }
    return json.dumps(document), matrix


def bound_s(injected_ms: float) -> float:
    return (3.0 + 0.1 * injected_ms) / 1000.0


def measure(regions: int, vantage_points: int, rounds: int) -> dict[str, object]:
    text, matrix = world(regions, vantage_points, seed=regions * 100 + vantage_points)
    cells = within = disturbed = unmeasured = in_deadline = checks = 0
    errors: list[float] = []
    durations: list[float] = []
    plan_note = ""

    def progress(_vantage: str, _done: int, _planned: int) -> None:
        nonlocal checks
        checks += 1

    with start_lab(parse_scenario(text, name=f"scale{regions}x{vantage_points}")) as lab:
        config = load_config(lab.config_path).config
        with asyncio.Runner() as runner:
            lab_before = _lab_stats(lab)
            lab_cpu_before = _process_cpu(lab.process.pid)
            client_before = time.process_time()
            for _ in range(rounds):
                result = runner.run(run_round(config, lag_sources=[lab.lateness_source()],
                                              progress=progress))
                durations.append(result.duration_seconds)
                if result.plan is not None:
                    plan_note = (f"{result.plan.checks} checks, gap "
                                 f"{result.plan.gap_seconds * 1000:.1f} ms, "
                                 f"{'fits' if result.plan.fits else 'DOES NOT FIT'}")
                in_deadline += all(v.success or not any(e.reason is Reason.DEADLINE
                                                        for e in v.errors)
                                   for v in result.vantage_points)
                for vantage in result.vantage_points:
                    for row in vantage.regions:
                        cells += 1
                        injected = matrix[vantage.vantage][row.region]
                        if row.reason is Reason.MEASUREMENT_DISTURBED:
                            disturbed += 1
                            continue
                        if row.latency_seconds is None:
                            unmeasured += 1
                            continue
                        error = row.latency_seconds - injected / 1000.0
                        errors.append(error)
                        within += abs(error) <= bound_s(injected)
            client_cpu = time.process_time() - client_before
            lab_cpu = _process_cpu(lab.process.pid) - lab_cpu_before
            lab_after = _lab_stats(lab)
            lab_cost = lab_after.since(lab_before) if lab_after and lab_before else None
    return {
        "world": f"{regions} × {vantage_points}", "cells": cells, "within": within,
        "disturbed": disturbed, "unmeasured": unmeasured, "rounds": rounds,
        "in_deadline": in_deadline,
        "median_ms": statistics.median(errors) * 1000 if errors else None,
        "worst_ms": max(errors, key=abs) * 1000 if errors else None,
        "round_s": statistics.median(durations), "plan": plan_note, "checks": checks,
        "lab_cpu_ms": lab_cpu * 1000 / max(1, checks),
        "client_cpu_ms": client_cpu * 1000 / max(1, checks),
        "lateness_p50_ms": _ms_or_none(lab_cost.lateness_quantile(0.5) if lab_cost else None),
        "lateness_p99_ms": _ms_or_none(lab_cost.lateness_quantile(0.99) if lab_cost else None),
        "lab_scheduling": lab_cost.scheduling if lab_cost else "not reported",
    }


def _process_cpu(pid: int | None) -> float:
    """A process's CPU seconds (user + system) from /proc: the lab's world process, whatever
    version of the lab it runs (so a run of this script can measure an older checkout too)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _lab_stats(lab: LabHandle) -> LabStats | None:
    """The lab's delivery lateness, from a lab that reports it (None from an older one)."""
    stats = getattr(lab, "stats", None)
    return stats() if stats is not None else None


def _ms_or_none(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def ms(value: object) -> str:
    return "—" if not isinstance(value, float) else f"{value:+.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3x3,10x10,20x30")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    started = time.monotonic()
    rows = []
    for size in args.sizes.split(","):
        regions, vantage_points = (int(n) for n in size.split("x"))
        rows.append(measure(regions, vantage_points, args.rounds))
    print(f"scale: {args.rounds} rounds per world; {time.monotonic() - started:.0f} s; load "
          f"average before {load:.1f}, after {os.getloadavg()[0]:.1f} (the machine is shared "
          f"with other work); code: {Path(run_round.__code__.co_filename).parents[2]}")
    print("| world (regions × vantage points) | cells within 3 ms + 10% | disturbed (left out) "
          "| unmeasured | median / worst error | rounds within deadline | round (median) "
          "| plan |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['world']} | {row['within']}/{row['cells']} | {row['disturbed']} | "
              f"{row['unmeasured']} | {ms(row['median_ms'])} / {ms(row['worst_ms'])} ms | "
              f"{row['in_deadline']}/{row['rounds']} | {row['round_s']:.2f} s | {row['plan']} |")
    print()
    print("| world | checks done | lab CPU per check | client CPU per check "
          "| lab delivery lateness p50 / p99 | lab scheduling |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['world']} | {row['checks']} | {row['lab_cpu_ms']:.2f} ms | "
              f"{row['client_cpu_ms']:.2f} ms | {_plain(row['lateness_p50_ms'])} / "
              f"{_plain(row['lateness_p99_ms'])} ms | {row['lab_scheduling']} |")
    return 0


def _plain(value: object) -> str:
    return "—" if not isinstance(value, float) else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
