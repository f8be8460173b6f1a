"""Lab scenarios: validation messages, the built-in worlds' promises, the written config."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
import yaml

from monitor.config import Tolerance, parse_config
from monitor.lab import (
    Fault,
    FaultKind,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)
from monitor.lab._config_writer import lab_config

BASE = """\
regions: {us-east-1: {}, eu-west-1: {}}
vantage_points:
  nyc: {latency_ms: {us-east-1: 8, eu-west-1: 75}, location: JFK}
  dub: {latency_ms: {us-east-1: 70, eu-west-1: 6}, location: DUB}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(("text", "expected"), [
    (BASE + "colour: blue\n", ["line 5: colour: unknown key"]),
    (BASE.replace("location: JFK", "location: JFK, lat: 1"),
     ["line 3: vantage_points.nyc.lat: unknown key"]),
    (BASE.replace("us-east-1: 70, ", ""),
     ["line 4: vantage_points.dub.latency_ms: no round trip to us-east-1"]),
    (BASE.replace("eu-west-1: 75", "eu-west-2: 75"),
     ["line 3: vantage_points.nyc.latency_ms: no round trip to eu-west-1",
      "line 3: vantage_points.nyc.latency_ms.eu-west-2: not a region of this scenario"]),
    ("regions: {useast: {}}\nvantage_points: {nyc: {latency_ms: {useast: 1}}}\n",
     ["line 1: regions: 'useast' is not an AWS region name such as eu-west-1"]),
    (BASE.replace("location: JFK", "location: NEWYORK"),
     ["line 3: vantage_points.nyc.location: 'NEWYORK' is not a three-letter IATA airport code"]),
    (BASE.replace("8,", "-8,"),
     ["line 3: vantage_points.nyc.latency_ms: us-east-1: -8.0 ms is not between 0 and 2000 ms"]),
    (BASE + "faults:\n  - {kind: misroute, vantage: dub, answer: us-west-2}\n",
     ["line 6: faults[0].answer: 'us-west-2' is not a region of this scenario"]),
    (BASE + "faults:\n  - {kind: region_down}\n",
     ["line 5: faults[0]: region_down needs region"]),
    (BASE + "faults:\n  - {kind: misroute, vantage: dub, answer: us-east-1, extra_ms: 3}\n",
     ["line 5: faults[0]: misroute takes no extra_ms"]),
    (BASE + "faults:\n  - {kind: slow, region: us-east-1, extra_ms: 5, vantage: sin}\n",
     ["line 6: faults[0].vantage: 'sin' is not a vantage point of this scenario"]),
    (BASE + "faults:\n  - {kind: flood}\n",
     ["line 6: faults[0].kind: Input should be 'misroute', 'region_down', 'blackhole', 'slow', "
      "'http_5xx', 'dns_servfail', 'dns_timeout', 'dns_garbage', 'dns_truncate', "
      "'header_mismatch', 'dynamodb_remote', 'edge_down', 'edge_stale_origin' or "
      "'edge_bad_headers'"]),
    (BASE + "probe: {samples: 0}\n",
     ["line 5: probe.samples: Input should be greater than or equal to 1"]),
    ("regions: [us-east-1]\nvantage_points: {}\n",
     ["line 1: regions: Input should be a valid dictionary",
      "line 2: vantage_points: must not be empty"]),
    ("regions: {us-east-1: {}\n", ["line 2: invalid YAML: expected ',' or '}', but got "
                                  "'<stream end>'"]),
])
def test_invalid_scenarios_give_one_message_per_problem(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


EDGES = BASE + """\
edges:
  jfk: {pop: JFK50-C1, latency_ms: {us-east-1: 2, eu-west-1: 70}, vantage_latency_ms: {nyc: 3}}
"""


@pytest.mark.parametrize(("text", "expected"), [
    (EDGES.replace("JFK50-C1", "jfk-1"),
     ["line 6: edges.jfk.pop: 'jfk-1' is not a POP code such as FRA56-P1"]),
    (EDGES.replace("jfk:", "nyc:"),
     ["line 6: edges.nyc: an edge cannot share its name with a vantage point"]),
    (EDGES.replace("us-east-1: 2, ", "").replace("nyc: 3", "sin: 3"),
     ["line 6: edges.jfk.latency_ms: no round trip to us-east-1",
      "line 6: edges.jfk.vantage_latency_ms.sin: not a vantage point of this scenario"]),
    (EDGES + "faults:\n  - {kind: edge_down, edge: fra}\n",
     ["line 8: faults[0].edge: 'fra' is not an edge of this scenario"]),
    (EDGES + "faults:\n  - {kind: slow, region: us-east-1, extra_ms: 5, vantage: sin}\n",
     ["line 8: faults[0].vantage: 'sin' is not a vantage point or edge of this scenario"]),
])
def test_invalid_edges(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_edges_and_their_faults() -> None:
    scenario = parse_scenario(EDGES + "faults:\n"
                              "  - {kind: edge_stale_origin, edge: jfk, answer: eu-west-1}\n"
                              "  - {kind: misroute, vantage: jfk, answer: eu-west-1}\n")
    assert scenario.nearest_edge("nyc") == "jfk"
    assert scenario.nearest_edge("dub") is None
    assert scenario.nearest_region("jfk") == "us-east-1"


def test_cdn_stale_edge_pins_a_region_that_is_not_the_edges_nearest() -> None:
    scenario = load_scenario("cdn-stale-edge")
    [stale] = [f for f in scenario.faults if f.kind == FaultKind.EDGE_STALE_ORIGIN]
    assert stale.edge is not None
    assert stale.answer != scenario.nearest_region(stale.edge)
    assert len(scenario.edges) >= 2


def test_healthy_and_demo_have_edges() -> None:
    assert len(load_scenario("healthy").edges) >= 2
    assert load_scenario("demo").edges


def test_empty_region_entry_means_defaults() -> None:
    scenario = parse_scenario(BASE.replace("eu-west-1: {}}", "eu-west-1: }"), name="x")
    assert scenario.name == "x"
    assert scenario.regions["eu-west-1"].dynamodb_read_ms == 2.5


def test_unknown_builtin_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario("nope")
    assert "no built-in scenario 'nope' (built-in: blackhole, cdn-stale-edge, demo" in str(
        caught.value)


def test_scenario_file_is_loaded_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(BASE, encoding="utf-8")
    assert load_scenario(path).name == "mine"
    assert load_scenario(str(path)).vantage_points["dub"].latency_ms["eu-west-1"] == 6
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_runtime_faults_are_checked_against_the_scenario() -> None:
    scenario = parse_scenario(BASE)
    checked = scenario.check_faults([{"kind": "slow", "region": "us-east-1", "extra_ms": 5},
                                     Fault(kind=FaultKind.DNS_SERVFAIL)])
    assert [f.kind for f in checked] == ["slow", "dns_servfail"]
    with pytest.raises(ScenarioError) as caught:
        scenario.check_faults([{"kind": "blackhole", "region": "mars-1"},
                               {"kind": "header_mismatch", "region": "us-east-1",
                                "claims": "us-east-1"}])
    assert [str(p) for p in caught.value.problems] == [
        "faults[0].region: 'mars-1' is not a region of this scenario",
        "faults[1].claims: must name a region other than the serving one",
    ]


def test_builtin_scenarios_exist_and_load() -> None:
    names = builtin_scenarios()
    assert {"healthy", "misrouted", "region-down", "dns-servfail", "blackhole", "demo",
            "cdn-stale-edge"} <= set(names)
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.description
        for vantage in scenario.vantage_points.values():
            assert vantage.location is not None
            assert max(vantage.latency_ms.values()) <= 250


def _penalty_and_tolerance(name: str) -> tuple[float, float]:
    scenario = load_scenario(name)
    [fault] = [f for f in scenario.faults if f.kind == FaultKind.MISROUTE]
    assert fault.vantage is not None
    assert fault.answer is not None
    rtt = scenario.vantage_points[fault.vantage].latency_ms
    best = min(rtt.values())
    tolerance = scenario.tolerance or Tolerance()
    return rtt[fault.answer] - best, max(tolerance.absolute_ms, tolerance.relative * best)


@pytest.mark.parametrize("name", ["misrouted", "demo"])
def test_misroutes_cost_far_more_than_the_tolerance(name: str) -> None:
    penalty, allowed = _penalty_and_tolerance(name)
    assert penalty > 3 * allowed


def test_demo_is_a_real_world() -> None:
    demo = load_scenario("demo")
    assert len(demo.regions) >= 3
    assert len(demo.vantage_points) >= 4


def test_region_down_kills_someones_nearest_region() -> None:
    scenario = load_scenario("region-down")
    dead = {f.region for f in scenario.faults if f.kind == FaultKind.REGION_DOWN}
    assert any(scenario.nearest_region(v) in dead for v in scenario.vantage_points)


def test_blackhole_is_not_everyones_nearest_region() -> None:
    scenario = load_scenario("blackhole")
    [victim] = [f.region for f in scenario.faults if f.kind == FaultKind.BLACKHOLE]
    assert any(scenario.nearest_region(v) != victim for v in scenario.vantage_points)


def test_healthy_has_a_region_nobody_is_nearest_to() -> None:
    scenario = load_scenario("healthy")
    assert set(scenario.regions) - {scenario.nearest_region(v) for v in scenario.vantage_points}


@pytest.mark.parametrize("name", builtin_scenarios())
def test_written_config_validates(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))  # the config's CA is checked
    document = lab_config(scenario, https_port=4443, dns="127.10.0.1:5353",
                          ca_file=tmp_path / "ca.pem")
    loaded = parse_config(yaml.safe_dump(document), name)
    assert loaded.warnings == ()
    config = loaded.config
    assert set(config.regions) == set(scenario.regions)
    assert config.regions[next(iter(scenario.regions))].addresses == ("127.20.1.1",)
    first = config.vantage_points[next(iter(scenario.vantage_points))]
    assert (first.source_address, first.client_subnet) == ("127.30.1.1", "198.18.1.0/24")
    assert config.authoritative == ("127.10.0.1:5353",)
    # a world without edges has no CDN: no cdn path is probed
    assert config.service.cdn_name == ("app.example.com" if scenario.edges else None)
    if scenario.probe is not None:
        assert config.probe.round_deadline_s == scenario.probe.round_deadline_s


def test_the_written_config_takes_the_probe_keys_the_scenario_wrote(tmp_path: Path) -> None:
    """Only what the scenario wrote overrides the lab's own choices, a default value included
    (the lab pins first_byte; a scenario asking for auto gets auto)."""
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))

    def written(probe: str) -> dict[str, object]:
        scenario = parse_scenario(BASE + probe, "s.yaml")
        document = lab_config(scenario, https_port=4443, dns="127.10.0.1:5353",
                              ca_file=tmp_path / "ca.pem")
        return dict(document["probe"])

    assert written("")["estimator"] == "first_byte"
    assert written("probe: {samples: 5}\n") == {
        "allow_addresses": ["127.0.0.0/8"], "estimator": "first_byte", "samples": 5}
    assert written("probe: {estimator: auto, samples: 3}\n")["estimator"] == "auto"
    assert written("probe: {allow_addresses: [127.0.0.0/8]}\n")["allow_addresses"] == [
        "127.0.0.0/8"]
    assert problems(BASE + "probe: {samples: '3'}\n") == [
        "line 5: probe.samples: Input should be a valid integer"]
    assert problems(BASE + "probe: {round_deadline_s: 1.0, request_timeout_s: 2.0}\n") == [
        "line 5: probe: round_deadline_s must be at least request_timeout_s"]
