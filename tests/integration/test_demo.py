"""``routewatch demo``: runs the built-in world and explains it; ``explain`` is pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monitor.cli.demo import explain
from monitor.core.model import (
    CdnDetails,
    PathResult,
    RegionLatency,
    RoundResult,
    RoutingState,
    RoutingVerdict,
    VantageRound,
)
from monitor.core.model import Path as RoutePath

ROOT = Path(__file__).parents[2]


def _path(path: RoutePath, state: RoutingState, served: str, expected: str,
          penalty: float | None = None) -> PathResult:
    return PathResult(path, RoutingVerdict(state, served, expected, penalty, None, ""),
                      details=CdnDetails("FRA56-P1", "miss", "hit", {}, None, None)
                      if path is RoutePath.CDN else None)


def test_explain_names_the_misroute_its_cost_and_the_edge_that_is_right() -> None:
    paths = (_path(RoutePath.DNS, RoutingState.MISROUTED, "us-east-1", "eu-west-1", 0.065),
             _path(RoutePath.CDN, RoutingState.OK, "eu-west-1", "eu-west-1"))
    regions = (RegionLatency("eu-west-1", 0.025, True), RegionLatency("us-east-1", 0.09, True))
    text = explain(RoundResult((VantageRound("fra", 0.0, 0.5, regions, paths),), 0.0, 0.5))
    assert "1 of 2 paths" in text
    assert "From fra, DNS sends its clients to us-east-1 although eu-west-1 is closest" in text
    assert "65 ms more per round trip" in text
    assert "FRA56-P1 reaches eu-west-1" in text


def test_explain_a_failover_is_not_called_nothing_to_see() -> None:
    """A region down and traffic on the next closest: the opening counts the failover paths as
    served by the closest healthy region and the closing names the alert to act on."""
    paths = (_path(RoutePath.DNS, RoutingState.FAILOVER, "us-east-1", "us-east-1"),
             _path(RoutePath.ORIGIN, RoutingState.OK, "us-east-1", "us-east-1"))
    regions = (RegionLatency("eu-west-1", None, False), RegionLatency("us-east-1", 0.07, True))
    text = explain(RoundResult((VantageRound("dub", 0.0, 0.5, regions, paths),), 0.0, 0.5))
    assert "1 of 2 paths are served by the closest region, 1 by the closest healthy one" in text
    assert "Nothing needs attention" not in text
    assert "RoutewatchRegionDown" in text


def test_demo_runs_and_explains() -> None:
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "demo"], capture_output=True,
                         text=True, cwd=ROOT, timeout=180, check=False)
    assert run.returncode == 0, run.stderr
    assert "what this means" in run.stdout
    assert "misrouted" in run.stdout
    assert "although" in run.stdout  # the misrouted vantage point is explained
