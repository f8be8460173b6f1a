"""The probe round end to end against lab worlds on loopback: verdicts, penalties, deadlines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import LabWorld
from lab_client import (
    CALM_SLACK_MS,
    accuracy_ms,
    assert_agrees,
    calm,
    calm_check,
    converge,
    disturbed_cells,
    first_byte_ms,
    injected_rows,
    round_rows,
)

from monitor.config import Config, load_config
from monitor.core.model import OriginDetails, RoundResult, RoutingState, VantageRound
from monitor.core.model import Path as RoutePath
from monitor.core.report import exit_code, round_document
from monitor.lab import LabHandle, Scenario, load_scenario, start_lab
from monitor.round.run import run_round
from probes.http import HttpTarget, probe_http, ssl_context_for

ROOT = Path(__file__).parents[2]
T = TypeVar("T")


def round_of(config: Config) -> RoundResult:
    return asyncio.run(run_round(config))


def vantage(result: RoundResult, name: str) -> VantageRound:
    return next(v for v in result.vantage_points if v.vantage == name)


def states(v: VantageRound) -> dict[str, RoutingState]:
    return {p.path.value: p.verdict.state for p in v.paths}


@pytest.fixture
def world(lab_world: LabWorld) -> LabHandle:
    return lab_world("healthy")


@pytest.fixture
def healthy_config(world: LabHandle) -> Config:
    return load_config(world.config_path).config


def ranking(latencies: Mapping[str, float]) -> list[str]:
    return sorted(latencies, key=latencies.__getitem__)


def calm_round(config: Config, scenario: Scenario, *, attempts: int = 3,
               slack_ms: float = CALM_SLACK_MS) -> RoundResult:
    """A round the machine did not disturb beyond ``slack_ms`` (else the test skips)."""
    return calm(lambda: round_of(config), round_rows, injected_rows(scenario),
                attempts=attempts, slack_ms=slack_ms)


@pytest.mark.parametrize(("vantage", "region"), [
    ("dub", "eu-west-1"), ("nyc", "us-east-1"), ("dub", "us-east-1"), ("fra", "ap-southeast-1")])
def test_the_probe_reads_a_cell_as_a_raw_client_does(world: LabHandle, healthy_config: Config,
                                                     vantage: str, region: str) -> None:
    """The baseline's instrument, sample for sample beside a raw TLS client from the same address
    through the same lab path: its floor is the control's, within 3 ms + 10 %."""
    context = ssl_context_for(str(world.ca_path))
    origin = healthy_config.service.origin_name
    rtt = world.scenario.vantage_points[vantage].latency_ms[region]
    source = world.vantage_points[vantage]
    target = HttpTarget(origin, world.regions[region], world.https_port, local_address=source)
    with asyncio.Runner() as runner:

        def reading() -> float:
            evidence = runner.run(probe_http(target, ssl_context=context))
            assert evidence.error is None, evidence.error
            return evidence.phases["processing"] * 1000  # first byte, as the control reads

        def control() -> float:
            return first_byte_ms(world.regions[region], world.https_port, source, origin,
                                 world.ca_path)

        pairs = converge(reading, control, expected_excess_ms=0.0, tolerance_ms=accuracy_ms(rtt))
    assert_agrees(pairs, expected_excess_ms=0, tolerance_ms=accuracy_ms(rtt))
    assert min(pairs.readings) >= rtt, pairs


def test_healthy_every_path_ok(
        world: LabHandle, healthy_config: Config) -> None:
    """A round the machine did not disturb judges every path ok. (How close the round's cells come
    to the injected round trips is `make bench`'s to say; the probe's own accuracy is held
    against a control above.)"""
    result = calm_round(healthy_config, world.scenario)  # no cell below its round trip either
    assert exit_code(result) == 0
    for v in result.vantage_points:
        assert all(r.healthy for r in v.regions), v.regions
        assert set(states(v).values()) == {RoutingState.OK}, (v.vantage, states(v))


def test_misroute_is_flagged_with_the_measured_penalty(
        world: LabHandle, healthy_config: Config) -> None:
    scenario = world.scenario
    name, spec = max(scenario.vantage_points.items(),
                     key=lambda item: sorted(item[1].latency_ms.values())[1]
                     - min(item[1].latency_ms.values()))
    ranked = ranking(spec.latency_ms)
    closest, wrong = ranked[0], ranked[1]
    world.set_faults([{"kind": "misroute", "vantage": name, "answer": wrong}])
    result = calm_round(healthy_config, scenario)
    assert exit_code(result) == 1
    row = {r.region: r.latency_seconds for r in vantage(result, name).regions}
    for path in (RoutePath.DNS, RoutePath.ORIGIN):
        found = vantage(result, name).path(path)
        assert found is not None
        verdict = found.verdict
        assert verdict.state is RoutingState.MISROUTED, (path, verdict)
        assert (verdict.served_region, verdict.expected_region) == (wrong, closest)
        # the penalty is what this round measured between the two regions
        assert row[wrong] is not None
        assert row[closest] is not None
        assert verdict.penalty_seconds == pytest.approx(row[wrong] - row[closest])
    for other in result.vantage_points:
        if other.vantage != name:
            assert set(states(other).values()) == {RoutingState.OK}, other.vantage


def test_misroute_inside_the_tolerance_is_not_flagged(tmp_path: Path) -> None:
    scenario = tmp_path / "near.yaml"
    scenario.write_text(
        "regions: {us-east-1: {}, us-east-2: {}}\n"
        "vantage_points:\n"
        "  nyc: {latency_ms: {us-east-1: 8, us-east-2: 13}, location: JFK}\n"
        "faults:\n"
        "  - {kind: misroute, vantage: nyc, answer: us-east-2}\n")
    with start_lab(load_scenario(scenario)) as world:
        # 5 ms apart: only a round whose cells are within the accuracy bound can tell
        result = calm_round(load_config(world.config_path).config, world.scenario,
                            attempts=5, slack_ms=0)
    dns = vantage(result, "nyc").path(RoutePath.DNS)
    assert dns is not None
    assert dns.verdict.state is RoutingState.OK
    assert dns.verdict.served_region == "us-east-2"
    assert dns.verdict.expected_region == "us-east-1"
    assert "within tolerance" in dns.verdict.detail


def test_region_down_gives_failover_not_misrouted(lab_world: LabWorld) -> None:
    world = lab_world("region-down")
    scenario = world.scenario
    result = round_of(load_config(world.config_path).config)
    dead = {f.region for f in scenario.faults if f.kind == "region_down"}
    near_dead = [name for name, spec in scenario.vantage_points.items()
                 if min(spec.latency_ms, key=spec.latency_ms.__getitem__) in dead]
    assert near_dead, "the scenario must make the dead region the nearest for someone"
    for name in near_dead:
        v = vantage(result, name)
        assert states(v)["dns"] is RoutingState.FAILOVER, v
        assert states(v)["origin"] is RoutingState.FAILOVER, v
        assert RoutingState.MISROUTED not in states(v).values()
        assert all(not r.healthy for r in v.regions if r.region in dead)
    assert exit_code(result) == 0
    assert exit_code(result, strict=True) == 1


def test_dns_servfail_is_unknown_naming_servfail(world: LabHandle,
                                                 healthy_config: Config) -> None:
    world.set_faults([{"kind": "dns_servfail"}])
    result = round_of(healthy_config)
    assert exit_code(result) == 1
    for v in result.vantage_points:
        dns = v.path(RoutePath.DNS)
        assert dns is not None
        assert dns.verdict.state is RoutingState.UNKNOWN
        assert dns.verdict.reason == "dns_servfail"
        assert "SERVFAIL" in dns.verdict.detail
        assert any(e.reason == "dns_servfail" for e in v.errors)
        assert all(r.healthy for r in v.regions)  # the baseline is still measured


@pytest.mark.parametrize(("fault", "reason"), [
    ("dns_timeout", "dns_timeout"), ("dns_garbage", "dns_malformed")])
def test_dns_faults_have_typed_reasons(world: LabHandle, healthy_config: Config, fault: str,
                                       reason: str) -> None:
    config = replace(healthy_config, probe=replace(healthy_config.probe, dns_timeout_s=0.5))
    world.set_faults([{"kind": fault}])
    result = round_of(config)
    for v in result.vantage_points:
        dns = v.path(RoutePath.DNS)
        assert dns is not None
        assert (dns.verdict.state, dns.verdict.reason) == (RoutingState.UNKNOWN, reason)


def test_blackhole_ends_at_the_deadline_and_judges_the_rest(world: LabHandle,
                                                           healthy_config: Config) -> None:
    scenario = world.scenario
    regions = list(scenario.regions)
    # blackhole a region that is nobody's closest, so the others are judged normally
    closest = {min(s.latency_ms, key=s.latency_ms.__getitem__)
               for s in scenario.vantage_points.values()}
    victim = next(r for r in regions if r not in closest)
    world.set_faults([{"kind": "blackhole", "region": victim}])
    deadline = 2.0
    config = replace(healthy_config, probe=replace(
        healthy_config.probe, round_deadline_s=deadline, request_timeout_s=1.0,
        connect_timeout_s=0.5))
    result, lag = asyncio.run(lagging(run_round(config)))
    for v in result.vantage_points:
        # no vantage point's round outlives the deadline, plus judging, plus however late this
        # busy machine ran the event loop meanwhile (measured beside it: the control)
        assert v.duration_seconds < deadline + 1.0 + lag, (v.vantage, v.duration_seconds, lag)
        row = next(r for r in v.regions if r.region == victim)
        assert not row.healthy
        assert row.reason == "timeout", row
        calm_row = {v.vantage: round_rows(result)[v.vantage]}
        if not disturbed_cells(calm_row, injected_rows(scenario)):  # judged on what was measured
            assert set(states(v).values()) == {RoutingState.OK}, (v.vantage, states(v))


async def lagging(work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result and the event loop's worst lateness meanwhile (s)."""
    loop = asyncio.get_running_loop()
    worst = 0.0

    async def watch() -> None:
        nonlocal worst
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            worst = max(worst, loop.time() - before - 0.01)

    watcher = asyncio.create_task(watch())
    try:
        result = await work
    finally:
        watcher.cancel()
    return result, worst


def test_header_and_address_evidence_that_disagree_are_reported(
        world: LabHandle, healthy_config: Config) -> None:
    scenario = world.scenario
    name, spec = next(iter(scenario.vantage_points.items()))
    closest = min(spec.latency_ms, key=spec.latency_ms.__getitem__)
    liar = next(r for r in scenario.regions if r != closest)
    world.set_faults([{"kind": "header_mismatch", "region": closest, "claims": liar}])
    result = round_of(healthy_config)
    origin = vantage(result, name).path(RoutePath.ORIGIN)
    assert origin is not None
    assert origin.attribution is not None
    assert any(f"says {liar}" in c and closest in c for c in origin.attribution.conflicts), origin
    assert any("says" in note for note in origin.notes)
    # which region answered is unclear: not a misroute with an invented penalty
    assert (origin.verdict.state, origin.verdict.reason) == (RoutingState.UNKNOWN,
                                                             "evidence_conflict")
    assert origin.verdict.penalty_seconds is None


def test_data_path_leaving_the_region_is_flagged(world: LabHandle,
                                                 healthy_config: Config) -> None:
    scenario = world.scenario
    name, spec = next(iter(scenario.vantage_points.items()))
    closest = min(spec.latency_ms, key=spec.latency_ms.__getitem__)
    other = next(r for r in scenario.regions if r != closest)
    world.set_faults([{"kind": "dynamodb_remote", "region": closest, "dynamodb_region": other}])
    origin = vantage(round_of(healthy_config), name).path(RoutePath.ORIGIN)
    assert origin is not None
    assert isinstance(origin.details, OriginDetails)
    assert origin.details.data_path is not None
    assert origin.details.data_path.dynamodb_region == other
    assert origin.details.data_path.local is False
    assert any("data path leaves" in note for note in origin.notes)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)


def test_check_cli_json_and_exit_code_on_misrouted_scenario(tmp_path: Path) -> None:
    run = calm_check(["--lab", "misrouted", "--json"], injected_rows(load_scenario("misrouted")),
                     tmp_path / "round.json")
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    document = json.loads(run.stdout)
    assert document["exit_code"] == 1
    misrouted = [(v["name"], p["path"]) for v in document["vantage_points"]
                 for p in v["paths"] if p["state"] == "misrouted"]
    assert misrouted
    for v in document["vantage_points"]:
        assert {"name", "paths", "regions"} <= set(v)
        for p in v["paths"]:
            assert {"path", "state", "served_region", "expected_region", "penalty_seconds",
                    "reason"} <= set(p)
        for r in v["regions"]:
            assert {"region", "latency_seconds", "healthy"} <= set(r)


def test_check_cli_table_on_servfail_scenario_exits_1() -> None:
    run = _cli("check", "--lab", "dns-servfail")
    assert run.returncode == 1, run.stderr
    assert "unknown" in run.stdout
    assert "dns_servfail" in run.stdout


def test_check_cli_bad_config_exits_2() -> None:
    run = _cli("check", "--config", str(ROOT / "tests/config/invalid-unknown-key.yaml"))
    assert run.returncode == 2
    assert "service.helth_path: unknown key" in run.stderr
    assert "Traceback" not in run.stderr


def test_check_cli_nothing_reachable_exits_3(tmp_path: Path) -> None:
    """An outage (no region measurable) is exit 3, not the 2 of a configuration mistake."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "service: {origin_name: global-alb.example.com, port: 9}\n"
        "regions: {us-east-1: {addresses: [127.0.9.1]}}\n"
        "vantage_points: {here: {resolver: '127.0.9.2:9'}}\n"
        "probe: {dns_timeout_s: 0.3, request_timeout_s: 1, round_deadline_s: 2}\n")
    run = _cli("check", "--config", str(config), "--json")
    assert run.returncode == 3, (run.stdout, run.stderr)
    assert json.loads(run.stdout)["exit_code"] == 3
    assert "no region could be measured" in run.stderr


def test_round_document_round_trips(world: LabHandle, healthy_config: Config) -> None:
    from monitor.core.report import round_from_document

    result = round_of(healthy_config)
    document = json.loads(json.dumps(round_document(result)))
    again = round_from_document(document)
    assert round_document(again)["vantage_points"] == document["vantage_points"]
