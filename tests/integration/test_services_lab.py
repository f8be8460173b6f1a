"""Many services per configuration, on a lab world: one service misrouted and another ok from
the same vantage point — per-service verdicts in the JSON document, the exit code (the worst
over services), ``check --service``, and the service label on /metrics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import LabWorld
from lab_client import Rows, calm, calm_check, document_rows, injected_rows
from prometheus_client import CollectorRegistry, generate_latest

from monitor.cli.schema import report_schema
from monitor.config import load_config, parse_config
from monitor.core.report import round_document
from monitor.exporters.prometheus import RoundCollector
from monitor.lab import LabHandle, Scenario, load_scenario
from monitor.metrics import SnapshotStore
from monitor.round.run import planned_checks, run_round

ROOT = Path(__file__).parents[2]
SCENARIO = ROOT / "tests" / "data" / "services-split.yaml"


@pytest.fixture
def scenario() -> Scenario:
    return load_scenario(SCENARIO)


@pytest.fixture
def world(lab_world: LabWorld, scenario: Scenario) -> LabHandle:
    return lab_world(scenario)


def every_service_rows(document: dict[str, Any]) -> Rows:
    """The latency matrix of every service's rounds, the reading farthest off kept per cell
    (each service measures the same cells)."""
    merged: dict[str, dict[str, float]] = {}
    for vantage in document["vantage_points"]:
        for name, row in document_rows({"vantage_points": [vantage]}).items():
            cells = merged.setdefault(name, {})
            for region, ms in row.items():
                cells[region] = max(cells.get(region, ms), ms)
    return merged


def entries(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(v["service"], v["name"]): {p["path"]: p for p in v["paths"]}
            for v in document["vantage_points"]}


def test_one_service_misrouted_and_another_ok_from_the_same_vantage_point(
        world: LabHandle, scenario: Scenario, tmp_path: Path) -> None:
    output = tmp_path / "round.json"
    run = calm_check(["--config", str(world.config_path), "--json"], injected_rows(scenario),
                     output)
    document = json.loads(output.read_text())
    jsonschema.validate(document, report_schema())
    assert run.returncode == 1 == document["exit_code"], run.stderr
    assert [(s["name"], s["exit_code"]) for s in document["services"]] == [("api", 1),
                                                                            ("app", 0)]
    assert document["services"][0]["summary"] == {"ok": 0, "failover": 0, "misrouted": 2,
                                                  "unknown": 0}
    paths = entries(document)
    assert set(paths) == {("api", "dub"), ("app", "dub")}
    for path in ("dns", "origin"):
        api, app = paths[("api", "dub")][path], paths[("app", "dub")][path]
        assert (api["state"], api["served_region"], api["expected_region"]) == (
            "misrouted", "us-east-1", "eu-west-1")
        assert (app["state"], app["served_region"]) == ("ok", "eu-west-1")
    assert "cdn" not in paths[("api", "dub")]  # the lab's services have no CDN path


def test_check_service_narrows_the_round_and_its_exit_code(
        world: LabHandle, scenario: Scenario, tmp_path: Path) -> None:
    output = tmp_path / "round.json"
    run = calm_check(["--config", str(world.config_path), "--json", "--service", "app"],
                     injected_rows(scenario), output)
    document = json.loads(output.read_text())
    assert run.returncode == 0, run.stderr
    assert [s["name"] for s in document["services"]] == ["app"]
    assert {v["service"] for v in document["vantage_points"]} == {"app"}
    unknown = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--config",
                              str(world.config_path), "--service", "web"],
                             capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("error: unknown service(s): web "
                                      "(configured: api, app)")


def test_the_table_names_each_service(world: LabHandle) -> None:
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--config",
                          str(world.config_path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=False)
    assert run.returncode in (0, 1), run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("dub · api (") for line in lines)
    assert any(line.startswith("dub · app (") for line in lines)
    assert any(line.startswith("1 vantage point, 2 services, 4 paths in ") for line in lines)


def test_every_series_of_a_round_carries_its_service(world: LabHandle,
                                                     scenario: Scenario) -> None:
    config = load_config(world.config_path).config
    result = calm(lambda: asyncio.run(run_round(config)),
                  lambda r: every_service_rows(json.loads(json.dumps(round_document(r)))),
                  injected_rows(scenario))
    store = SnapshotStore(config)
    for vantage in result.vantage_points:
        store.publish(vantage)
    registry = CollectorRegistry()
    registry.register(RoundCollector(store.current))
    text = generate_latest(registry).decode()
    assert ('routewatch_routing_observed_state{path="origin",probe="dub",service="api",'
            'state="misrouted"} 1.0') in text
    assert ('routewatch_routing_observed_state{path="origin",probe="dub",service="app",'
            'state="ok"} 1.0') in text
    series = [line for line in text.splitlines()
              if line.startswith("routewatch_") and 'probe="' in line]
    assert series
    assert all('service="api"' in s or 'service="app"' in s for s in series)


def test_the_lambda_publishes_each_services_series_and_evidence(
        world: LabHandle, scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler in-process: one round judges every service; each datapoint is published
    with the Service dimension and without it (the probe stack's alarms read every service at
    once); each evidence line names its service."""
    import io
    from contextlib import redirect_stdout

    from aws_helpers import validate_emf

    from monitor.aws.lambda_handler import handler
    from monitor.core.report import round_from_document
    from monitor.exporters.evidence_log import EVENT, parse_evidence

    monkeypatch.setenv("ROUTEWATCH_CONFIG", str(world.config_path))
    monkeypatch.setenv("ROUTEWATCH_VANTAGE_POINT", "dub")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)

    def invoke() -> tuple[dict[str, Any], list[str]]:
        out = io.StringIO()
        with redirect_stdout(out):
            answer = handler({"source": "routewatch-schedule"}, None)
        return json.loads(json.dumps(answer)), out.getvalue().splitlines()

    answer, lines = calm(invoke, lambda found: every_service_rows(found[0]),
                         injected_rows(scenario))
    assert [(v.service, v.vantage) for v in round_from_document(answer).vantage_points] == [
        ("api", "dub"), ("app", "dub")]
    evidence = [parse_evidence(line) for line in lines if f'"{EVENT}"' in line]
    assert {(e.service, e.path.value, e.verdict.state.value) for e in evidence} == {
        ("api", "dns", "misrouted"), ("api", "origin", "misrouted"),
        ("app", "dns", "ok"), ("app", "origin", "ok")}
    emf = [json.loads(line) for line in lines if line.startswith("{") and EVENT not in line]
    for document in emf:
        assert validate_emf(document) == [], document
    misrouted = {(tuple(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]),
                  doc.get("Service"), doc.get("Path"), value)
                 for doc in emf if "Misrouted" in doc
                 for value in (doc["Misrouted"] if isinstance(doc["Misrouted"], list)
                               else [doc["Misrouted"]])}
    assert (("Probe", "Service", "Path"), "api", "origin", 1.0) in misrouted
    assert (("Probe", "Service", "Path"), "app", "origin", 0.0) in misrouted
    assert {m[3] for m in misrouted if m[0] == ("Probe", "Path") and m[2] == "origin"} == {0.0,
                                                                                           1.0}


def test_a_round_plans_every_services_checks_and_says_up_front_when_they_cannot_fit(
        caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens at these loopback addresses: the round is refused fast and only its plan
    matters here."""
    regions = "\n".join(f"  {r}: {{addresses: [127.9.{i}.1]}}" for i, r in enumerate(
        ("us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "eu-central-1",
         "ap-northeast-1", "sa-east-1", "ap-south-1", "ca-central-1", "eu-north-1"), start=1))
    text = f"""
services:
  api: {{origin_name: api-alb.example.com}}
  app: {{origin_name: app-alb.example.com, regions: {{us-east-1: , eu-west-1: }}}}
regions:
{regions}
vantage_points: {{here: {{resolver: 127.9.0.53}}}}
probe: {{samples: 50, dns_timeout_s: 0.2, connect_timeout_s: 0.2, request_timeout_s: 0.5,
        round_deadline_s: 1.0, allow_addresses: [127.0.0.0/8]}}
"""
    config = parse_config(text).config
    with caplog.at_level("WARNING", logger="monitor.round.run"):
        result = asyncio.run(run_round(config))
    assert result.plan is not None
    assert result.plan.checks == sum(planned_checks(view) for _, view in config.service_views())
    assert result.plan.checks > 10 * 50 + 2 * 50  # every service's samples, and its paths'
    assert not result.plan.fits
    assert f"round cannot fit its deadline: {result.plan.checks} checks" in caplog.text
    assert [(v.service, v.vantage) for v in result.vantage_points] == [("api", "here"),
                                                                       ("app", "here")]
    narrowed = asyncio.run(run_round(config, services=["app"]))
    assert narrowed.plan is not None
    assert narrowed.plan.checks == planned_checks(config.for_service("app"))


def test_a_service_nothing_of_which_answers_is_named_on_stderr(
        world: LabHandle, tmp_path: Path) -> None:
    """app's regions point where nothing listens: the check exits 1 (api was measured), app's
    own exit code is 3, and stderr names it, so a gate can tell an outage of one service."""
    import yaml

    document = yaml.safe_load(world.config_path.read_text(encoding="utf-8"))
    document["services"]["app"]["regions"] = {
        region: {"addresses": [f"127.99.0.{i}"]}
        for i, region in enumerate(document["regions"], start=1)}
    config = tmp_path / "dead-app.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--config", str(config),
                          "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         check=False)
    result = json.loads(run.stdout)
    assert run.returncode == 1 == result["exit_code"], run.stderr
    assert {s["name"]: s["exit_code"] for s in result["services"]}["app"] == 3
    assert ("error: service app: no region could be measured from any vantage point (alone it "
            "exits 3)") in run.stderr
