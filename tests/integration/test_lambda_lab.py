"""The real handler, in-process, against a lab world: one probe per region, as deployed.

Each "regional Lambda" is the handler called with that region (the event's ``region``, as
``check --remote`` sends it; in AWS, ``AWS_REGION``). Lambda itself runs nothing here: what is
verified is our code on a real network world, the EMF it prints (against the specification's
required fields and limits) and the document it returns; ``check --remote`` then merges these
answers (concurrently, one region hanging past its timeout).
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from contextlib import redirect_stdout
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aws_helpers import validate_emf
from conftest import LabWorld
from lab_client import calm, disturbed_cells, injected_rows, round_rows

from monitor.aws.lambda_handler import handler
from monitor.aws.remote import InvokeAnswer, run_remote
from monitor.config import load_config
from monitor.core.model import Path as RoutePath
from monitor.core.model import RoutingState
from monitor.core.report import round_from_document
from monitor.exporters.evidence_log import EVENT as EVIDENCE_EVENT
from monitor.exporters.evidence_log import parse_evidence
from monitor.lab import LabHandle, parse_scenario
from monitor.round.run import run_round

# Three regional probes (vantage points named after, and running in, their regions) and a
# laptop; Route 53 sends the eu-west-1 probe's subnet to us-east-1.
SCENARIO = """
description: regional probes, one misrouted
regions:
  us-east-1: {}
  eu-west-1: {}
  ap-southeast-1: {}
vantage_points:
  us-east-1: {region: us-east-1, latency_ms: {us-east-1: 2, eu-west-1: 70, ap-southeast-1: 210}}
  eu-west-1: {region: eu-west-1, latency_ms: {us-east-1: 70, eu-west-1: 2, ap-southeast-1: 160}}
  ap-southeast-1:
    region: ap-southeast-1
    latency_ms: {us-east-1: 210, eu-west-1: 160, ap-southeast-1: 2}
  laptop: {location: JFK, latency_ms: {us-east-1: 8, eu-west-1: 75, ap-southeast-1: 230}}
faults:
  - {kind: misroute, vantage: eu-west-1, answer: us-east-1}
"""
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


@pytest.fixture
def lab(lab_world: LabWorld) -> LabHandle:
    return lab_world(parse_scenario(SCENARIO, name="regional-probes"))


@pytest.fixture
def lambda_config(lab: LabHandle, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROUTEWATCH_CONFIG", str(lab.config_path))
    monkeypatch.delenv("ROUTEWATCH_VANTAGE_POINT", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    return lab.config_path


def invoke_logged(event: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Call the handler the way Lambda would; return its answer (as JSON) and its stdout lines
    (what CloudWatch Logs would store, one event each)."""
    out = io.StringIO()
    with redirect_stdout(out):
        answer = handler(event, None)
    return json.loads(json.dumps(answer)), out.getvalue().splitlines()


def invoke(event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Call the handler; return its answer and its EMF documents."""
    answer, lines = invoke_logged(event)
    documents = [json.loads(line) for line in lines if line.startswith("{")]
    return answer, [d for d in documents if d.get("event") != EVIDENCE_EVENT]


def test_each_regional_probe_logs_one_evidence_line_per_path(lab: LabHandle,
                                                            lambda_config: Path) -> None:
    """The scheduled round's evidence, read back from its log lines as Logs Insights would."""
    for region in REGIONS:
        event = {"region": region, "source": "routewatch-schedule"}
        # a round the machine did not disturb, so its verdict and penalty mean something
        document, lines = calm(partial(invoke_logged, event),
                               lambda answer: round_rows(round_from_document(answer[0])),
                               injected_rows(lab.scenario))
        [vantage] = round_from_document(document).vantage_points
        evidence = [parse_evidence(line) for line in lines if f'"{EVIDENCE_EVENT}"' in line]
        assert [e.path for e in evidence] == [p.path for p in vantage.paths]
        for record, path in zip(evidence, vantage.paths, strict=True):
            assert record.vantage == region
            assert record.verdict == path.verdict
            assert record.address == path.address
            assert record.round_started_at == pytest.approx(vantage.started_at, abs=0.001)
        origin = next(e for e in evidence if e.path == RoutePath.ORIGIN)
        if region == "eu-west-1":  # Route 53 sends this subnet to us-east-1
            assert (origin.verdict.state, origin.verdict.served_region,
                    origin.verdict.expected_region) == (RoutingState.MISROUTED, "us-east-1",
                                                        "eu-west-1")
            assert origin.verdict.penalty_seconds is not None
            assert origin.verdict.penalty_seconds > 0.04  # ~68 ms injected
            assert origin.verdict.reason == "slower_region"
            assert origin.address is not None
            assert origin.address.startswith("127.")
        else:
            assert origin.verdict.state == RoutingState.OK


def test_each_regional_probe_returns_its_round_and_prints_valid_emf(
        lab: LabHandle, lambda_config: Path) -> None:
    for region in REGIONS:
        # a round the machine did not disturb, so its verdict and penalty mean something
        event = {"region": region, "source": "routewatch-remote"}
        document, emf = calm(partial(invoke, event),
                             lambda answer: round_rows(round_from_document(answer[0])),
                             injected_rows(lab.scenario))
        [vantage] = round_from_document(document).vantage_points
        assert vantage.vantage == region
        for line in emf:
            assert validate_emf(line) == [], line
            assert line["Probe"] == region
            assert set(line) - {"_aws"} >= set(line["_aws"]["CloudWatchMetrics"][0]
                                               ["Dimensions"][0])
        by_path = {line["Path"]: line for line in emf
                   if "Path" in line and "Misrouted" in line}
        origin = vantage.path(RoutePath.ORIGIN)
        assert origin is not None
        if region == "eu-west-1":
            assert origin.verdict.state == RoutingState.MISROUTED
            assert origin.verdict.served_region == "us-east-1"
            assert by_path["origin"]["Misrouted"] == [1.0]
            assert by_path["origin"]["RoutingPenalty"][0] > 40.0  # ms: ~68 injected
        else:
            assert origin.verdict.state == RoutingState.OK
            assert by_path["origin"]["Misrouted"] == [0.0]
        completed = [line for line in emf if "RoundCompleted" in line]
        assert completed[0]["RoundCompleted"] == [1.0]
        latency = {line["Region"]: line["RegionLatency"][0] for line in emf
                   if "RegionLatency" in line}
        assert set(latency) == set(REGIONS)
        assert min(latency, key=lambda r: latency[r]) == region


def test_check_remote_merges_the_regional_rounds_with_the_local_one(
        lab: LabHandle, lambda_config: Path) -> None:
    config = load_config(lambda_config).config
    hang = threading.Event()

    def in_process_lambda(region: str, payload: bytes, timeout_s: float) -> InvokeAnswer:
        if region == "ap-southeast-1":
            hang.wait(60)  # this region never answers in time
            return InvokeAnswer(b"too late")
        # EMF goes to the captured stdout: redirect_stdout is process-wide, not per thread
        answer = handler(json.loads(payload), None)
        return InvokeAnswer(json.dumps(answer).encode())

    progress: list[tuple[str, str]] = []
    try:
        merged, failures = asyncio.run(run_remote(
            config, run_round(config, vantage_points=["laptop"]), 6.0,
            invoker=in_process_lambda, progress=lambda r, m: progress.append((r, m))))
    finally:
        hang.set()
    names = [v.vantage for v in merged.vantage_points]
    assert names == ["laptop", "us-east-1", "eu-west-1"]
    states = {v.vantage: v.path(RoutePath.ORIGIN).verdict.state  # type: ignore[union-attr]
              for v in merged.vantage_points}
    expected = {"laptop": RoutingState.OK, "us-east-1": RoutingState.OK,
                "eu-west-1": RoutingState.MISROUTED}
    # a row a busy machine disturbed says nothing about its verdict (see lab_client.calm)
    rows = round_rows(merged)
    calm = {name for name in rows
            if not disturbed_cells({name: rows[name]}, injected_rows(lab.scenario))}
    assert {n: s for n, s in states.items() if n in calm} == {
        n: s for n, s in expected.items() if n in calm}
    assert [(f.region, f.reason) for f in failures] == [("ap-southeast-1", "timeout")]
    assert any(r == "eu-west-1" and m.startswith("answered") for r, m in progress)
