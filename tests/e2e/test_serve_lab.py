"""``routewatch serve --lab`` with real rounds against lab worlds on loopback.

* A scrape taken while rounds run never shows two rounds' values for one vantage point: every
  scraped value is checked against the JSON log line of the round its ``rounds_total`` names.
* With a region blackholed, /metrics keeps answering, every vantage point keeps publishing
  rounds, and each stuck round ends at its deadline.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families
from serve_process import ServeProcess

from monitor.lab import control_request
from monitor.serve.rounds import DEADLINE_MARGIN_S

Scrape = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(text: str) -> Scrape:
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def of_probe(scrape: Scrape, name: str, probe: str) -> dict[str, float]:
    return {dict(k).get("region", dict(k).get("phase", "")): v
            for k, v in scrape.get(name, {}).items() if dict(k).get("probe") == probe}


def test_scrapes_during_rounds_never_mix_two_rounds(tmp_path: Path) -> None:
    scrapes: list[Scrape] = []
    with ServeProcess(tmp_path, "--lab", "healthy", "--interval", "1", "--jitter", "0") as serve:
        serve.wait_rounds(1)
        while len(scrapes) < 3000:  # scrape back to back while rounds keep finishing
            scrapes.append(parse(serve.metrics()))
            totals = scrapes[-1].get("routewatch_rounds_total", {})
            if len(totals) == 3 and min(totals.values()) >= 5:
                break
            time.sleep(0.005)  # paces the scrapes; the loop ends on what they show
        data_path_leaves_the_region(serve)
        assert serve.stop() == 0
    rounds: dict[tuple[str, int], dict[str, Any]] = {
        (r["vantage"], r["round"]): r for r in serve.rounds()}
    seen_rounds: set[tuple[str, int]] = set()
    for scrape in scrapes:
        for key, total in scrape.get("routewatch_rounds_total", {}).items():
            probe = dict(key)["probe"]
            record = rounds[(probe, int(total))]
            seen_rounds.add((probe, int(total)))
            duration = of_probe(scrape, "routewatch_round_duration_seconds", probe)[""]
            assert math.isclose(duration, record["duration_seconds"], abs_tol=2e-6)
            latencies = of_probe(scrape, "routewatch_region_latency_seconds", probe)
            assert latencies == {r: v for r, v in record["regions"].items() if v is not None}
            states = {dict(k)["path"]: dict(k)["state"]
                      for k, v in scrape["routewatch_routing_observed_state"].items()
                      if dict(k)["probe"] == probe and v == 1}
            assert states == {p["path"]: p["state"] for p in record["paths"]}
    assert len(seen_rounds) >= 12, "the scrapes did not span several rounds"
    print(json.dumps({"scrapes": len(scrapes), "rounds_seen": len(seen_rounds)}))


def data_path_leaves_the_region(serve: ServeProcess) -> None:
    """eu-west-1 starts reading DynamoDB in us-east-1: dub (served by eu-west-1) sees it."""
    (lab,) = serve.wait_event("lab")
    control_request(lab["control_address"], "PUT", "/faults", [
        {"kind": "dynamodb_remote", "region": "eu-west-1", "dynamodb_region": "us-east-1",
         "read_ms": 71}])
    # the second round of dub from now on started after the fault
    serve.wait_rounds(len(serve.rounds("dub")) + 2, "dub")
    scrape = parse(serve.metrics())
    assert of_probe(scrape, "routewatch_data_path_local", "dub")[""] == 0.0
    assert of_probe(scrape, "routewatch_data_region", "dub")["us-east-1"] == 1.0
    assert math.isclose(of_probe(scrape, "routewatch_data_read_seconds", "dub")[""], 0.071)
    assert of_probe(scrape, "routewatch_data_path_local", "nyc")[""] == 1.0


def test_a_blackholed_region_does_not_stall_serving(tmp_path: Path) -> None:
    scenario = yaml.safe_load(
        (Path(__file__).parents[2] / "monitor/lab/scenarios/blackhole.yaml").read_text())
    deadline = 3.0
    # requests may wait as long as the round: only the round deadline ends them
    scenario["probe"] = {"connect_timeout_s": deadline, "request_timeout_s": deadline,
                         "round_deadline_s": deadline}
    scenario_file = tmp_path / "blackhole-long.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario))
    with ServeProcess(tmp_path, "--lab", str(scenario_file), "--interval", "1",
                      "--jitter", "0") as serve:
        answered = 0
        # while every vantage point's rounds run into the deadline, /metrics keeps answering
        while not all(len(serve.rounds(probe)) >= 3 for probe in ("nyc", "dub", "sin")):
            assert answered < 3000, "three rounds per vantage point never came"
            serve.metrics()
            answered += 1
            time.sleep(0.05)  # paces the scrapes; the loop ends on what the log shows
        scrape = parse(serve.metrics())
        assert serve.stop() == 0
    assert answered > 10
    for probe in ("nyc", "dub", "sin"):
        duration = of_probe(scrape, "routewatch_round_duration_seconds", probe)[""]
        assert deadline <= duration, (probe, duration)
        healthy = of_probe(scrape, "routewatch_region_healthy", probe)
        assert healthy == {"us-east-1": 1.0, "eu-west-1": 1.0, "ap-southeast-1": 0.0}
    origin_ok = {dict(k)["probe"] for k, v in scrape["routewatch_routing_observed_state"].items()
                 if dict(k)["path"] == "origin" and dict(k)["state"] in ("ok", "failover")
                 and v == 1}
    assert {"nyc", "dub"} <= origin_ok  # judged normally on what was measured
    rounds = serve.rounds()
    # each stuck round ends at its deadline: run_round's own, or else the scheduler's backstop
    assert all(r["duration_seconds"] < deadline + DEADLINE_MARGIN_S for r in rounds)
    assert all(not r["errors"] or r["errors"][0]["reason"] != "deadline"
               or r["errors"][0]["path"] != "round" for r in rounds)
    print(json.dumps({"rounds": len(rounds), "scrapes": answered}))
