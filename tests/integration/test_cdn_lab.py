"""The cdn path end to end: lab edges (POPs) resolve the origin from their own address."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import LabWorld
from lab_client import (
    Converged,
    accuracy_ms,
    assert_agrees,
    calm_check,
    converge,
    first_byte_ms,
    injected_rows,
)

from monitor.config import Config, load_config
from monitor.core.model import CdnDetails, PathResult, RoundResult, RoutingState
from monitor.core.model import Path as RoutePath
from monitor.lab import LabHandle, load_scenario, start_lab
from monitor.round.run import run_round


@pytest.fixture
def world(lab_world: LabWorld) -> tuple[LabHandle, Config]:
    handle = lab_world("healthy")
    return handle, load_config(handle.config_path).config


def cdn_paths(result: RoundResult) -> dict[str, PathResult]:
    found = {}
    for v in result.vantage_points:
        path = v.path(RoutePath.CDN)
        assert path is not None, v.vantage
        found[v.vantage] = path
    return found


def edge_details(path: PathResult) -> CdnDetails:
    assert isinstance(path.details, CdnDetails), path
    return path.details


def edge_of(handle: LabHandle, vantage: str) -> str:
    """The edge the scenario puts next to a vantage point."""
    return next(name for name, edge in handle.scenario.edges.items()
                if vantage in edge.vantage_latency_ms)


def test_every_edge_reaches_its_closest_region_miss_then_hit(
        world: tuple[LabHandle, Config]) -> None:
    handle, config = world
    paths = cdn_paths(asyncio.run(run_round(config)))
    assert len({edge_details(p).pop for p in paths.values()}) >= 2
    for vantage, path in paths.items():
        edge = handle.scenario.edges[edge_of(handle, vantage)]
        details = edge_details(path)
        assert path.verdict.state is RoutingState.OK, (vantage, path.verdict)
        assert details.pop == edge.pop
        assert (details.cache, details.cache_repeat) == ("miss", "hit")
        ranked = sorted(edge.latency_ms, key=edge.latency_ms.__getitem__)
        assert path.verdict.served_region == ranked[0]
        fbl = details.server_timing["cdn-upstream-fbl"]
        # one sample of the edge's first byte from the region: at least the injected round trip
        # (how close to it: test_upstream_first_byte_grows_with_the_edge_to_region_delay)
        assert 0.9 * edge.latency_ms[ranked[0]] / 1000 <= fbl, (vantage, fbl)


def test_upstream_first_byte_grows_with_the_edge_to_region_delay(
        world: tuple[LabHandle, Config]) -> None:
    handle, config = world
    edge_name = edge_of(handle, "nyc")
    edge = handle.scenario.edges[edge_name]
    closest = min(edge.latency_ms, key=edge.latency_ms.__getitem__)

    def upstream_fbl() -> float:  # one round, one sample of the edge's first byte (ms)
        result = asyncio.run(run_round(config, vantage_points=["nyc"]))
        return float(edge_details(cdn_paths(result)["nyc"]).server_timing["cdn-upstream-fbl"]
                     ) * 1000

    def control() -> float:  # a raw client from the edge's address: the same injected trip
        return first_byte_ms(handle.regions[closest], handle.https_port, handle.edges[edge_name],
                             config.service.origin_name, handle.ca_path)

    def converged(rtt: float) -> Converged:
        # Server-Timing durations are whole ms
        pairs = converge(upstream_fbl, control, expected_excess_ms=0.0,
                         tolerance_ms=accuracy_ms(rtt) + 1)
        assert_agrees(pairs, expected_excess_ms=0, tolerance_ms=accuracy_ms(rtt) + 1)
        return pairs

    rtt = edge.latency_ms[closest]
    before = converged(rtt)
    handle.set_faults([{"kind": "slow", "region": closest, "extra_ms": 40, "vantage": edge_name}])
    after = converged(rtt + 40)
    # before, it read the injected trip; after, the 40 ms more that its control reads too
    assert min(before.readings) >= rtt - 1, before
    assert min(after.readings) >= rtt + 40 - 1, after


def test_stale_edge_is_misrouted_naming_both_regions(world: tuple[LabHandle, Config]) -> None:
    handle, config = world
    edge_name = edge_of(handle, "fra")
    edge = handle.scenario.edges[edge_name]
    ranked = sorted(edge.latency_ms, key=edge.latency_ms.__getitem__)
    handle.set_faults([{"kind": "edge_stale_origin", "edge": edge_name, "answer": ranked[1]}])
    path = cdn_paths(asyncio.run(run_round(config, vantage_points=["fra"])))["fra"]
    assert path.verdict.state is RoutingState.MISROUTED
    assert (path.verdict.served_region, path.verdict.expected_region) == (ranked[1], ranked[0])
    assert path.verdict.reason == "edge_origin_region"
    # the POP shares the vantage point's metro, so its baseline row gives an honest penalty
    assert path.verdict.penalty_seconds is not None
    assert path.verdict.penalty_seconds > 0.03


@pytest.mark.parametrize(("headers", "reason"), [
    ("no_pop", "pop_missing"), ("malformed_server_timing", "server_timing_malformed")])
def test_bad_edge_headers_give_their_own_reason(world: tuple[LabHandle, Config], headers: str,
                                                reason: str) -> None:
    handle, config = world
    handle.set_faults([{"kind": "edge_bad_headers", "edge": edge_of(handle, "dub"),
                        "headers": headers}])
    result = asyncio.run(run_round(config, vantage_points=["dub"]))
    path = cdn_paths(result)["dub"]
    if reason == "pop_missing":
        assert (path.verdict.state, path.verdict.reason) == (RoutingState.UNKNOWN, reason)
    else:  # the region is still known; the bad header is reported, not fatal
        assert path.verdict.state is RoutingState.OK
        assert any(reason in note for note in path.notes)
    assert any(e.path == "cdn" and e.reason == reason for e in result.vantage_points[0].errors)


def test_edge_down_gives_its_own_reason(world: tuple[LabHandle, Config]) -> None:
    handle, config = world
    handle.set_faults([{"kind": "edge_down", "edge": edge_of(handle, "dub")}])
    path = cdn_paths(asyncio.run(run_round(config, vantage_points=["dub"])))["dub"]
    assert (path.verdict.state, path.verdict.reason) == (RoutingState.UNKNOWN, "connect_error")
    assert "edge" in path.verdict.detail


def test_unknown_pop_code_is_unknown_naming_it(tmp_path: Path) -> None:
    scenario = tmp_path / "odd-pop.yaml"
    scenario.write_text(
        "regions: {us-east-1: {}, eu-west-1: {}}\n"
        "vantage_points:\n"
        "  nyc: {location: JFK, latency_ms: {us-east-1: 8, eu-west-1: 75}}\n"
        "edges:\n"
        "  odd: {pop: QQQ50-C1, location: JFK, latency_ms: {us-east-1: 7, eu-west-1: 72},"
        " vantage_latency_ms: {nyc: 3}}\n")
    with start_lab(load_scenario(scenario)) as world:
        result = asyncio.run(run_round(load_config(world.config_path).config))
    path = cdn_paths(result)["nyc"]
    assert (path.verdict.state, path.verdict.reason) == (RoutingState.UNKNOWN, "unknown_pop")
    assert "QQQ50-C1" in path.verdict.detail


def test_check_shows_the_stale_edge_scenario(tmp_path: Path) -> None:
    run = calm_check(["--lab", "cdn-stale-edge"], injected_rows(load_scenario("cdn-stale-edge")),
                     tmp_path / "round.json")
    assert run.returncode == 1, run.stderr
    cdn_rows = [line for line in run.stdout.splitlines() if line.strip().startswith("cdn")]
    assert any("misrouted" in row for row in cdn_rows), run.stdout
    assert "edge_origin_region" in run.stdout
