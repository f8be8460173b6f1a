"""The round's CloudWatch datapoints and their EMF documents (checked against the EMF spec)."""

from __future__ import annotations

import io
import json

import pytest
from aws_helpers import validate_emf
from rounds import sample_round

from monitor.core.model import RoundResult
from monitor.exporters.cloudwatch import (
    CLOUDWATCH_METRICS,
    DIMENSION_NAMES,
    Datapoint,
    EmfEmitter,
    round_datapoints,
)
from monitor.metrics import METRICS

REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")


def by_key(points: list[Datapoint]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(p.name, p.dimensions): p.value for p in points}


def test_datapoints_carry_the_verdicts_in_milliseconds_and_counts() -> None:
    points = by_key(round_datapoints(sample_round(), REGIONS))
    probe = ("Probe", "eu-west-1")
    origin = (probe, ("Path", "origin"))
    assert points[("Misrouted", origin)] == 1.0
    assert points[("Unknown", origin)] == 0.0
    assert points[("RoutingPenalty", origin)] == 75.0
    assert points[("PathLatency", origin)] == 99.0
    assert points[("ServedRegion", (*origin, ("Region", "us-east-1")))] == 1.0
    assert points[("ExpectedRegion", (*origin, ("Region", "eu-west-1")))] == 1.0
    assert points[("Unknown", (probe, ("Path", "cdn")))] == 1.0
    assert points[("RegionLatency", (probe, ("Region", "eu-west-1")))] == 12.0
    assert points[("RegionHealthy", (probe, ("Region", "ap-south-1")))] == 0.0
    assert ("RegionLatency", (probe, ("Region", "ap-south-1"))) not in points
    assert points[("UnhealthyRegions", (probe,))] == 1.0
    assert points[("RoundCompleted", (probe,))] == 1.0
    assert points[("RoundDuration", (probe,))] == 420.0
    assert points[("ProbeErrors", (probe,))] == 1.0


def test_region_values_are_bounded_by_the_configuration() -> None:
    points = round_datapoints(sample_round(), REGIONS)
    regions = {v for p in points for k, v in p.dimensions if k == "Region"}
    assert regions <= {*REGIONS, "other"}
    assert "other" in regions  # the cdn path named mars-east-1
    assert {k for p in points for k, _ in p.dimensions} <= set(DIMENSION_NAMES)


def test_every_cloudwatch_metric_mirrors_a_defined_prometheus_metric() -> None:
    prometheus = {spec.name for spec in METRICS}
    for metric in CLOUDWATCH_METRICS.values():
        assert metric.mirrors is None or metric.mirrors in prometheus, metric
        assert metric.unit in ("Milliseconds", "Count")
        assert set(metric.dimensions) <= set(DIMENSION_NAMES)


def test_emf_documents_meet_the_specification() -> None:
    out = io.StringIO()
    emitter = EmfEmitter("RouteWatch", out)
    emitter.add(round_datapoints(sample_round(), REGIONS))
    printed = emitter.flush()
    lines = out.getvalue().splitlines()
    assert printed == len(lines) > 0
    names = set()
    for line in lines:
        document = json.loads(line)
        assert validate_emf(document) == []
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "RouteWatch"
        assert directive["Dimensions"][0][0] == "Probe"
        assert "service" not in document  # powertools adds none: the dimension set is bounded
        names.update(m["Name"] for m in directive["Metrics"])
    assert {"Misrouted", "RegionLatency", "RoundCompleted", "ServedRegion"} <= names
    assert emitter.flush() == 0  # flushed means cleared


def test_a_wide_round_stays_within_the_emf_limits() -> None:
    rounds = [sample_round(f"probe-{i}").vantage_points[0] for i in range(30)]
    wide = RoundResult(tuple(rounds), rounds[0].started_at, 1.0)
    emitter = EmfEmitter("RouteWatch", io.StringIO())
    emitter.add(round_datapoints(wide, REGIONS))
    documents = emitter.documents()
    assert len(documents) == 30 * (1 + 3 + 3 + 4)  # probe, paths, regions, path×region sets
    for document in documents:
        assert validate_emf(document) == []


def test_the_validator_catches_what_the_spec_forbids() -> None:
    good = {"_aws": {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [
        {"Namespace": "RouteWatch", "Dimensions": [["Probe"]],
         "Metrics": [{"Name": "M", "Unit": "Milliseconds"}]}]}, "Probe": "p", "M": 1.0}
    assert validate_emf(good) == []
    seconds = json.loads(json.dumps(good))
    seconds["_aws"]["Timestamp"] = 1_700_000_000
    assert validate_emf(seconds)
    missing_value = json.loads(json.dumps(good))
    del missing_value["M"]
    assert validate_emf(missing_value)
    too_many = json.loads(json.dumps(good))
    too_many["_aws"]["CloudWatchMetrics"][0]["Metrics"] = [{"Name": f"m{i}"} for i in range(101)]
    too_many.update({f"m{i}": 1 for i in range(101)})
    assert any("101 metrics" in p for p in validate_emf(too_many))
    wide = json.loads(json.dumps(good))
    wide["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = [[f"d{i}" for i in range(31)]]
    wide.update({f"d{i}": "v" for i in range(31)})
    assert any("31 keys" in p for p in validate_emf(wide))


@pytest.mark.parametrize("disabled", ["true"])
def test_powertools_switch_disables_emf(monkeypatch: pytest.MonkeyPatch, disabled: str) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", disabled)
    out = io.StringIO()
    emitter = EmfEmitter("RouteWatch", out)
    emitter.add(round_datapoints(sample_round(), REGIONS))
    assert emitter.flush() == 0
    assert out.getvalue() == ""
