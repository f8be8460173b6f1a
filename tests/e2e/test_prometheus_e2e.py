"""End to end: the real Prometheus scrapes ``routewatch serve --lab healthy``; a misroute injected
at run time makes RoutewatchRoutingMisrouted fire, clearing it resolves the alert.

The rules are the shipped ones with every ``for`` shortened to 2 s (a copy in the temporary
directory); rounds every 2 s, hysteresis 3 rounds (the lab config's default), scrape and
evaluation every second.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
from lab_client import disturbed_cells, injected_rows
from prometheus_server import PrometheusServer, require_binary, shorten_for
from serve_process import ServeProcess, wait_until

from monitor.lab import control_request, load_scenario

pytestmark = pytest.mark.e2e

RULES = Path(__file__).resolve().parents[2] / "alerts" / "routewatch.rules.yml"
MISROUTE = {"kind": "misroute", "vantage": "dub", "answer": "us-east-1"}


def misrouted_alerts(prom: PrometheusServer, state: str | None = None,
                     probe: str | None = "dub") -> list[dict[str, Any]]:
    return [a for a in prom.alerts("RoutewatchRoutingMisrouted")
            if (state is None or a["state"] == state)
            and (probe is None or a["labels"]["probe"] == probe)]


def assert_only_disturbed_rounds_misrouted(prom: PrometheusServer, serve: ServeProcess) -> None:
    """Another vantage point's misroute alert: only when a busy machine disturbed its rounds
    (each round's readings are in serve's log; the injected round trips in the scenario)."""
    injected = injected_rows(load_scenario("healthy"))
    for probe in {a["labels"]["probe"] for a in misrouted_alerts(prom, probe=None)} - {"dub"}:
        rows = [{probe: {region: seconds * 1000 for region, seconds in r["regions"].items()
                         if seconds is not None}} for r in serve.rounds(probe)]
        # the state flips after 3 rounds agree (the lab config's hysteresis)
        assert sum(bool(disturbed_cells(row, injected)) for row in rows) >= 3, (probe, rows)


def test_injected_misroute_fires_the_alert_and_clearing_it_resolves(tmp_path: Path) -> None:
    require_binary("prometheus", "prometheus")
    rules = shorten_for(RULES, tmp_path / "routewatch.rules.yml", "2s")
    with ServeProcess(tmp_path / "serve", "--lab", "healthy", "--interval", "2",
                      "--jitter", "0") as serve, \
         PrometheusServer(tmp_path / "prometheus", targets=[serve.url.removeprefix("http://")],
                          rule_files=[rules]) as prom:
        control = serve.wait_event("lab")[0]["control_address"]
        assert len(prom.rule_groups()) == 3

        # healthy first: dub's origin path is ok in Prometheus and nothing is misrouted
        wait_until(lambda: prom.query(
            'routewatch_routing_state{probe="dub",path="origin",state="ok"} == 1'),
            checks=120, pause=0.5, what="dub's first rounds in Prometheus")
        assert misrouted_alerts(prom) == []
        assert_only_disturbed_rounds_misrouted(prom, serve)

        control_request(control, "PUT", "/faults", [MISROUTE])
        injected = time.monotonic()
        firing = wait_until(lambda: [a for a in misrouted_alerts(prom, "firing")
                                     if a["labels"]["path"] == "origin"],
                            checks=120, pause=0.5, what="RoutewatchRoutingMisrouted firing")
        fired_after = time.monotonic() - injected
        alert = firing[0]
        assert alert["labels"]["probe"] == "dub"
        assert alert["labels"]["severity"] == "critical"
        summary = alert["annotations"]["summary"]
        # the expected region and penalty come from the latest round, which a busy machine may
        # have disturbed while the stable state still fires; the served region is the fault's
        assert re.fullmatch(r"dub: origin is served by us-east-1, not [a-z0-9-]+ "
                            r"\(penalty -?\d+(\.\d+)?m?s\)", summary), summary
        penalty = float(prom.query(
            'routewatch_routing_penalty_seconds{probe="dub",path="origin"}')[0]["value"][1])
        # what dub's round measured and logged (its accuracy is the round tests' and the bench's)
        logged = [p["penalty_seconds"] for r in serve.rounds("dub") for p in r["paths"]
                  if p["path"] == "origin" and p["penalty_seconds"] is not None]
        assert any(math.isclose(penalty, p) for p in logged), (penalty, logged)
        assert "runbook.md#routewatchroutingmisrouted" in alert["annotations"]["runbook_url"]
        assert_only_disturbed_rounds_misrouted(prom, serve)

        control_request(control, "DELETE", "/faults")
        cleared = time.monotonic()
        # resolved means: no such alert while dub's origin path reads ok (a failed scrape also
        # empties the alert list for a moment, so the state must be there too)
        wait_until(lambda: misrouted_alerts(prom) == [] and prom.query(
            'routewatch_routing_state{probe="dub",path="origin",state="ok"} == 1'),
            checks=120, pause=0.5, what="RoutewatchRoutingMisrouted resolved")
        resolved_after = time.monotonic() - cleared
        scrapes = prom.query("count_over_time(up[10m])")[0]["value"][1]
        failed = prom.query("count_over_time((up == 0)[10m:1s])")
        slowest = prom.query("max_over_time(scrape_duration_seconds[10m])")[0]["value"][1]
        print(f"fired {fired_after:.1f} s after the misroute, resolved {resolved_after:.1f} s "
              f"after clearing it; {scrapes} scrapes, failed {failed}, slowest {slowest} s")
    assert serve.process.returncode == 0
