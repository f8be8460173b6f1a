"""End to end: every Prometheus query of the Grafana *Routing overview* dashboard, with its
template variables expanded, returns at least one series from a real Prometheus scraping
``routewatch serve --lab demo``.

The demo world has fra misrouted and a CDN. Two faults are added at run time so that every
panel has something to show: ap-southeast-1 goes down (every vantage point records baseline
errors, so *Probe errors by reason* has series) and fra's edge keeps fetching from us-east-1
(fra's cdn path flips ok → misrouted, so the *Routing state changes* annotation fires). The
variables are expanded as Grafana would with vantage point ``fra`` and region ``eu-west-1``
selected; Grafana's ``$__rate_interval`` and ``$__range`` become fixed windows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_server import PrometheusServer, require_binary
from serve_process import ServeProcess, wait_until

from monitor.core.model import RoutingState
from monitor.dashboards.prometheus import STATE_CODES
from monitor.lab import control_request

pytestmark = pytest.mark.e2e

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "routewatch-routing.json"
SELECTED = {"probe": "fra", "service": "default", "region": "eu-west-1",
            "__rate_interval": "1m", "__range": "5m", "__interval": "15s"}
FAULTS = [{"kind": "region_down", "region": "ap-southeast-1"},
          {"kind": "edge_stale_origin", "edge": "fra56", "answer": "us-east-1"}]


def expand(expr: str) -> str:
    """``expr`` with the dashboard's and Grafana's variables replaced; ``$1`` (a label_replace
    group) is not a variable and stays."""
    expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: SELECTED.get(m.group(1), m.group(0)), expr)
    left = [v for v in re.findall(r"\$\{?(\w+)", expanded) if not v.isdigit()]
    assert not left, f"unexpanded variables {left} in {expr}"
    return expanded


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and annotation of the dashboard."""
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [(f"panel {p['id']} {p['title']!r} query {t['refId']}", t["expr"])
               for p in document["panels"] for t in p.get("targets", [])]
    queries += [(f"annotation {a['name']!r}", a["expr"]) for a in document["annotations"]["list"]]
    assert len(queries) >= 20
    return queries


def label_values(prom: PrometheusServer, query: str) -> list[str]:
    """Grafana's ``label_values(metric, label)`` through the API Grafana calls for it."""
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", query)
    assert match, query
    values: list[str] = prom.api(f"label/{match.group(2)}/values",
                                 **{"match[]": match.group(1)})
    return values


def _query_everything(serve: ServeProcess, prom: PrometheusServer,
                      queries: list[tuple[str, str]]) -> tuple[dict[str, list[dict[str, Any]]],
                                                             list[str], list[str]]:
    """Wait for the demo world in Prometheus, add the faults, wait for their effect, then run
    every query (and the variables' label_values lookups)."""
    (lab,) = serve.wait_event("lab")
    wait_until(lambda: prom.query('routewatch_routing_state{probe="fra",path="cdn"} == 1'),
               checks=240, pause=0.5, what="fra's first rounds in Prometheus")
    control_request(lab["control_address"], "POST", "/faults", FAULTS)
    wait_until(lambda: prom.query(
        'routewatch_routing_state{probe="fra",path="cdn",state="misrouted"} == 1')
        and prom.query('routewatch_probe_errors_total{probe="fra"}'),
        checks=240, pause=0.5, what="fra's cdn path to flip to misrouted, with errors")

    results: dict[str, list[dict[str, Any]]] = {}
    for where, expr in queries:
        results[where] = prom.query(expand(expr))
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in document["templating"]["list"]}
    probes = label_values(prom, variables["probe"]["query"])
    regions = label_values(prom, variables["region"]["query"])
    return results, probes, regions


def test_every_dashboard_query_returns_series_from_a_real_prometheus(tmp_path: Path) -> None:
    require_binary("prometheus", "prometheus")
    queries = dashboard_queries()
    with ServeProcess(tmp_path / "serve", "--lab", "demo", "--interval", "2",
                      "--jitter", "0") as serve:
        target = serve.url.removeprefix("http://")  # a port the kernel chose
        with PrometheusServer(tmp_path / "prometheus", targets=[target]) as prom:
            results, probes, regions = _query_everything(serve, prom, queries)
    assert serve.process.returncode == 0

    empty = [f"{where}: {expand(expr)}" for where, expr in queries if not results[where]]
    assert empty == [], "queries without a series:\n" + "\n".join(empty)
    assert {"nyc", "dub", "fra", "sin"} <= set(probes)
    assert {"us-east-1", "eu-west-1", "ap-southeast-1"} <= set(regions)

    # and they say what the world is: each row names its closest region; fra's cdn path is
    # misrouted now and the annotation saw it change
    by_title = {where.split(" query ")[0]: series for where, series in results.items()
                if where.endswith("query A")}
    [matrix] = [s for w, s in by_title.items() if "Latency matrix" in w]
    assert {row["metric"]["vantage"] for row in matrix} <= {
        f"fra · closest {region}" for region in ("us-east-1", "eu-west-1", "ap-southeast-1")}
    [states] = [s for w, s in by_title.items() if "Routing state per" in w]
    codes = {row["metric"]["path"]: int(float(row["value"][1])) for row in states}
    assert codes["cdn"] == STATE_CODES[RoutingState.MISROUTED]
    [changes] = [s for w, s in results.items() if w.startswith("annotation")]
    assert ("cdn", "misrouted") in {(row["metric"]["path"], row["metric"]["state"])
                                    for row in changes}
