"""End to end: a real Prometheus scrapes ``routewatch serve`` watching two services from one
vantage point; api's origin name is misrouted, app's is not — the series and the alert tell them
apart by their ``service`` label."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_server import PrometheusServer, require_binary, shorten_for
from serve_process import ServeProcess, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "routewatch.rules.yml"
SCENARIO = ROOT / "tests" / "data" / "services-split.yaml"
DASHBOARD = ROOT / "dashboards" / "routewatch-routing.json"


def test_prometheus_sees_each_service_with_its_own_verdict_and_alert(tmp_path: Path) -> None:
    require_binary("prometheus", "prometheus")
    rules = shorten_for(RULES, tmp_path / "routewatch.rules.yml", "2s")
    with ServeProcess(tmp_path / "serve", "--lab", str(SCENARIO), "--interval", "2",
                      "--jitter", "0") as serve, \
         PrometheusServer(tmp_path / "prometheus", targets=[serve.url.removeprefix("http://")],
                          rule_files=[rules]) as prom:
        # one scrape in which api's origin is misrouted and app's ok, from the same vantage point
        # (a round the busy machine disturbed may say otherwise for a moment: wait it out)
        wait_until(lambda: prom.query(
            'routewatch_routing_observed_state{probe="dub",service="api",path="origin",'
            'state="misrouted"} == 1 and on (probe) '
            'routewatch_routing_observed_state{probe="dub",service="app",path="origin",'
            'state="ok"} == 1'),
            checks=120, pause=0.5, what="api misrouted and app ok in one scrape")
        served = {s["metric"]["service"] for s in prom.query(
            'routewatch_served_region{probe="dub",path="origin",region="us-east-1"} == 1')}
        assert "api" in served
        firing = wait_until(lambda: [
            a for a in prom.alerts("RoutewatchRoutingMisrouted")
            if a["state"] == "firing" and a["labels"]["path"] == "origin"],
            checks=120, pause=0.5, what="RoutewatchRoutingMisrouted firing for api")
        assert {a["labels"]["service"] for a in firing} == {"api"}
        summary = firing[0]["annotations"]["summary"]
        assert summary.startswith("dub (api): origin is served by us-east-1, not "), summary
        rounds = {(r["vantage"], r["service"]) for r in serve.rounds("dub")}
        assert rounds == {("dub", "api"), ("dub", "app")}
        # the dashboard's latency matrix has a row per vantage point and service
        [matrix] = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
                    if p.get("title", "").startswith("Latency matrix") for t in p["targets"]]
        expr = re.sub(r"\$(probe|service|region)\b", ".*", matrix)
        rows = {s["metric"]["vantage"] for s in prom.query(expr)}
        assert rows == {"dub · api · closest eu-west-1", "dub · app · closest eu-west-1"}
