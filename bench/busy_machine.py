"""Verdicts on a busy machine: holdout-style lab worlds, with and without two CPU-hog processes.

Several seeded worlds (4 regions × 5 vantage points, some vantage points misrouted by the DNS,
some penalties close to the tolerance) are judged round after round, alternating a control phase
(no hog) and a hog phase (two ``while True: pass`` processes: one per core of a 2-vCPU machine),
and within each phase alternating measurement trust on and off (off: every sample is used, as
before trust existed). Counted per origin verdict:

* false misrouted: ``misrouted`` where the world routes the vantage point right;
* missed: a misrouted vantage point judged ``ok``/``failover`` (a hidden misroute);
* disturbed: ``unknown`` with ``measurement_disturbed``.

Goal (issue 13): with trust on, 0 false misrouted and 0 missed — a misroute the disturbed numbers
would hide is reported as disturbed, not ok. Run: ``.venv/bin/python bench/busy_machine.py``
(part of ``make bench``). The machine may be shared: compare hog with control in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from monitor.config import load_config
from monitor.core.model import Path, RoundResult, RoutingState
from monitor.domain.reasons import Reason
from monitor.lab import LabHandle, parse_scenario, start_lab
from monitor.round.lag import DISTURBED_S
from monitor.round.run import run_round

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2")
PLACES = ("JFK", "DUB", "SIN", "SFO", "FRA")
_HOG = "while True: pass"


@dataclass
class Tally:
    verdicts: int = 0
    false_misrouted: int = 0
    missed: int = 0
    disturbed: int = 0
    misroutes: int = 0


def world(seed: int) -> tuple[str, dict[str, str]]:
    """A seeded world (scenario YAML) and its misroutes (vantage point → region the DNS gives)."""
    rng = random.Random(seed)
    vantage_points: dict[str, Any] = {}
    faults = []
    misroutes: dict[str, str] = {}
    for j, place in enumerate(PLACES):
        name = f"{place.lower()}{j}"
        rtts = {region: round(rng.uniform(40, 220), 1) for region in REGIONS}
        best = rng.choice(REGIONS)
        rtts[best] = round(rng.uniform(4, 30), 1)
        vantage_points[name] = {"location": place, "latency_ms": rtts}
        if rng.random() < 0.4:  # misrouted, sometimes by a margin near the tolerance
            wrong = rng.choice([r for r in REGIONS if r != best])
            if rng.random() < 0.5:
                rtts[wrong] = round(rtts[best] + max(14.0, 0.4 * rtts[best]), 1)
            faults.append({"kind": "misroute", "vantage": name, "answer": wrong})
            misroutes[name] = wrong
    document = {"description": f"busy-machine world {seed}",
                "regions": {region: {} for region in REGIONS},
                "vantage_points": vantage_points, "faults": faults}
    return json.dumps(document), misroutes


def tally(result: RoundResult, misroutes: dict[str, str], into: Tally) -> None:
    for vantage in result.vantage_points:
        origin = vantage.path(Path.ORIGIN)
        if origin is None:
            continue
        into.verdicts += 1
        state = origin.verdict.state
        if origin.verdict.reason is Reason.MEASUREMENT_DISTURBED:
            into.disturbed += 1
        if vantage.vantage in misroutes:
            into.misroutes += 1
            if state in (RoutingState.OK, RoutingState.FAILOVER):
                into.missed += 1
        elif state is RoutingState.MISROUTED:
            into.false_misrouted += 1


def start_hogs(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(count)]


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    for hog in hogs:
        hog.kill()
    for hog in hogs:
        hog.wait(timeout=10)


def run_phase(lab: LabHandle, misroutes: dict[str, str], rounds: int,
              tallies: dict[tuple[str, bool], Tally], phase: str) -> None:
    config = load_config(lab.config_path).config
    with asyncio.Runner() as runner:
        for index in range(rounds * 2):
            trust = index % 2 == 0
            result = runner.run(run_round(
                config, lag_sources=[lab.lateness_source()],
                disturbed_s=DISTURBED_S if trust else float("inf")))
            tally(result, misroutes, tallies[(phase, trust)])


def print_table(tallies: dict[tuple[str, bool], Tally]) -> None:
    print("| phase | trust | origin verdicts | misrouted worlds' verdicts | false misrouted "
          "| missed (ok while misrouted) | disturbed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (phase, trust), t in sorted(tallies.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        print(f"| {phase} | {'on' if trust else 'off'} | {t.verdicts} | {t.misroutes} | "
              f"{t.false_misrouted} | {t.missed} | {t.disturbed} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per world, phase and mode")
    parser.add_argument("--hogs", type=int, default=2)
    args = parser.parse_args()
    tallies = {(phase, trust): Tally() for phase in ("control", "hog") for trust in (True, False)}
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    for seed in range(args.worlds):
        text, misroutes = world(seed)
        with start_lab(parse_scenario(text, name=f"busy{seed}")) as lab:
            run_phase(lab, misroutes, args.rounds, tallies, "control")
            hogs = start_hogs(args.hogs)
            try:
                run_phase(lab, misroutes, args.rounds, tallies, "hog")
            finally:
                stop_hogs(hogs)
    print(f"busy machine: {args.worlds} worlds × {len(PLACES)} vantage points × {args.rounds} "
          f"rounds per phase and mode, {args.hogs} CPU hogs in the hog phase; "
          f"{time.monotonic() - started:.0f} s; load average before {load_before:.1f} "
          f"(the machine is shared with other work)")
    print_table(tallies)
    ok = all(t.false_misrouted == 0 and t.missed == 0
             for (_, trust), t in tallies.items() if trust)
    print("goal (trust on: 0 false misrouted, 0 missed):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
