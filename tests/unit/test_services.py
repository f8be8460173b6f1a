"""Many services per configuration, without a socket: the two config forms, per-service views and
their region overrides, the round's plan over every service, per-service verdicts and exit codes
in the document, the snapshot and its series per service, and serve publishing every service."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from rounds import round_of, vantage_round

from monitor.config import (
    DEFAULT_SERVICE,
    Config,
    ConfigError,
    LoadedConfig,
    SeveralServices,
    parse_config,
)
from monitor.core.model import RoutingState, VantageRound
from monitor.core.report import exit_code, round_document, round_from_document
from monitor.exporters.prometheus import RoundCollector
from monitor.metrics import SnapshotStore
from monitor.round.run import UnknownService, planned_checks, run_round
from monitor.serve.scheduler import RoundScheduler

SERVICES = """
services:
  api: {origin_name: api-alb.example.com, cdn_name: api.example.com}
  app:
    origin_name: app-alb.example.com
    port: 8443
    regions:
      eu-west-1: {addresses: [192.0.2.30], port: 9443}
      us-east-1:
  assets:
    origin_name: assets-alb.example.com
    regions: {us-east-1: {alb_name: assets.us-east-1.elb.amazonaws.com}}
regions:
  us-east-1: {addresses: [192.0.2.20]}
  eu-west-1: {alb_name: alb.eu-west-1.elb.amazonaws.com}
  ap-southeast-1: {addresses: [192.0.2.40]}
vantage_points:
  dub: {resolver: 192.0.2.53}
  nyc: {resolver: 192.0.2.54}
"""
SINGLE = """
service: {origin_name: global-alb.example.com}
regions: {us-east-1: {addresses: [192.0.2.20]}}
vantage_points: {dub: {resolver: 192.0.2.53}}
"""


def services_config() -> Config:
    return parse_config(SERVICES).config


def test_the_singular_service_is_one_service_named_default() -> None:
    config = parse_config(SINGLE).config
    assert config.service_names == (DEFAULT_SERVICE,) == ("default",)
    assert config.for_service("default") is config
    assert config.service.origin_name == "global-alb.example.com"
    with pytest.raises(KeyError):
        config.for_service("api")


def test_each_service_sees_its_own_names_and_endpoints_and_shares_the_rest() -> None:
    config = services_config()
    assert config.service_names == ("api", "app", "assets")
    views = dict(config.service_views())
    api, app, assets = views["api"], views["app"], views["assets"]
    assert (api.service.origin_name, api.service.cdn_name) == ("api-alb.example.com",
                                                               "api.example.com")
    assert api.regions == config.regions  # no regions: every top-level region as written
    # regions given: only those; an empty entry is the top-level region; endpoints replace
    assert list(app.regions) == ["eu-west-1", "us-east-1"]
    assert app.regions["eu-west-1"].addresses == ("192.0.2.30",)
    assert app.regions["eu-west-1"].alb_name is None
    assert app.regions["eu-west-1"].port == 9443
    assert app.regions["us-east-1"] == config.regions["us-east-1"]
    assert app.service.port == 8443
    assert assets.regions["us-east-1"].alb_name == "assets.us-east-1.elb.amazonaws.com"
    assert assets.regions["us-east-1"].addresses == ()
    for view in views.values():
        assert view.vantage_points == config.vantage_points
        assert view.probe == config.probe
        assert view.services is None
        assert view.service_names == (DEFAULT_SERVICE,)


def test_several_services_have_no_single_service() -> None:
    with pytest.raises(SeveralServices, match=r"3 services \(api, app, assets\)"):
        _ = services_config().service
    one = parse_config(SERVICES.split("  app:")[0] + SERVICES[SERVICES.index("regions:\n  us"):])
    assert one.config.service_names == ("api",)
    assert one.config.service.origin_name == "api-alb.example.com"


def test_the_addresses_a_service_writes_are_allowed_like_the_regions() -> None:
    from monitor.config import address_policy

    assert address_policy(services_config()).refusal("192.0.2.30") is None
    assert address_policy(services_config()).refusal("192.0.2.31") is not None


@pytest.mark.parametrize(("text", "problems"), [
    (SINGLE.replace("vantage_points:", "services: {api: {origin_name: a.example.com}}\n"
                                       "vantage_points:"),
     ["line 4: services: give service (one application) or services (several, by name), "
      "not both"]),
    (SINGLE.replace("service: {origin_name: global-alb.example.com}\n", ""),
     ["service: required key is missing (or give services: several applications, by name)"]),
    (SERVICES.replace("eu-west-1: {addresses: [192.0.2.30], port: 9443}",
                      "eu-central-1: {addresses: [192.0.2.30]}"),
     ["line 8: services.app.regions.eu-central-1: 'eu-central-1' is not a configured region "
      "(the top-level regions list every region a service may run in)"]),
    (SERVICES.replace("  api: {", "  API: {"),
     ["line 3: services.API: 'API' is not a valid name (lower case letters, digits, - and _)"]),
    (SERVICES.replace("{alb_name: assets", "{surprise: 1, alb_name: assets"),
     ["line 12: services.assets.regions.us-east-1.surprise: unknown key"]),
    ("services: {}\n" + SINGLE.split("\n", 2)[2],
     ["line 1: services: must not be empty"]),
    (SERVICES.replace("  api: {", "  default: {"),
     ["line 3: services.default: 'default' names the singular service: form's one service "
      "(metrics, alarms and pages leave it out); give this service another name"]),
])
def test_bad_services_are_typed_errors_with_their_location(text: str,
                                                           problems: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert [str(p) for p in caught.value.problems] == problems


def test_the_round_plans_every_services_checks_on_one_pacer() -> None:
    config = services_config()
    per_service = [planned_checks(view) for _, view in config.service_views()]
    # api: 3 regions x 3 samples + dns + origin + cdn; app: 2 regions; assets: 1 region
    assert per_service[0] > per_service[1] > per_service[2]

    async def plan() -> object:
        with pytest.raises(UnknownService, match=r"web \(configured: api, app, assets\)"):
            await run_round(config, services=["web"])
        return None

    asyncio.run(plan())


def test_the_document_gives_each_services_verdict_and_the_worst_exit_code() -> None:
    api = dataclasses.replace(vantage_round("dub", state=RoutingState.MISROUTED,
                                            served="us-east-1", expected="eu-west-1",
                                            penalty=0.064), service="api")
    app = dataclasses.replace(vantage_round("dub"), service="app")
    result = round_of(api, app)
    document = round_document(result)
    assert document["schema_version"] == 2
    assert document["exit_code"] == exit_code(result) == 1
    assert [(s["name"], s["exit_code"], s["summary"]["misrouted"])
            for s in document["services"]] == [("api", 1, 3), ("app", 0, 0)]
    assert [(v["name"], v["service"]) for v in document["vantage_points"]] == [("dub", "api"),
                                                                              ("dub", "app")]
    back = round_from_document(document)
    assert [(v.vantage, v.service) for v in back.vantage_points] == [("dub", "api"),
                                                                     ("dub", "app")]
    old = {**document, "vantage_points": [{k: v for k, v in entry.items() if k != "service"}
                                          for entry in document["vantage_points"]]}
    assert {v.service for v in round_from_document(old).vantage_points} == {DEFAULT_SERVICE}


def exposition(store: SnapshotStore) -> str:
    registry = CollectorRegistry()
    registry.register(RoundCollector(store.current))
    return generate_latest(registry).decode()


def test_the_snapshot_keeps_each_services_round_and_drops_unconfigured_ones() -> None:
    config = services_config()
    store = SnapshotStore(config)
    for service in ("api", "app", "web"):
        store.publish(dataclasses.replace(vantage_round("dub"), service=service))
    assert sorted(store.current().vantage) == [("api", "dub"), ("app", "dub")]
    text = exposition(store)
    assert 'routewatch_rounds_total{probe="dub",service="api"} 1.0' in text
    assert 'routewatch_rounds_total{probe="dub",service="app"} 1.0' in text
    assert 'service="web"' not in text
    store.reconfigure(parse_config(SERVICES.replace("  api:", "  web:")).config)
    assert sorted(store.current().vantage) == [("app", "dub")]


def test_a_single_service_config_exports_the_default_service() -> None:
    store = SnapshotStore(parse_config(SINGLE).config)
    store.publish(vantage_round("dub"))
    assert 'routewatch_round_success{probe="dub",service="default"} 1.0' in exposition(store)


def test_serve_publishes_every_services_round_and_fails_each_when_the_round_fails() -> None:
    loaded = LoadedConfig(services_config(), "<test>")
    store = SnapshotStore(loaded.config)

    async def runner(config: Config, name: str) -> Sequence[VantageRound]:
        return [dataclasses.replace(vantage_round(name), service=s) for s in config.service_names]

    async def crashing(config: Config, name: str) -> Sequence[VantageRound]:
        raise RuntimeError("boom")

    asyncio.run(RoundScheduler(loaded, store, runner=runner).run_vantage("dub"))
    assert sorted(store.current().vantage) == [("api", "dub"), ("app", "dub"),
                                               ("assets", "dub")]
    asyncio.run(RoundScheduler(loaded, store, runner=crashing).run_vantage("nyc"))
    failed = [store.current().vantage[(s, "nyc")].result for s in loaded.config.service_names]
    assert [(r.service, r.success, r.errors[0].reason) for r in failed] == [
        (s, False, "internal_error") for s in ("api", "app", "assets")]


LAB = """
regions: {us-east-1: {}, eu-west-1: {}}
vantage_points: {dub: {latency_ms: {us-east-1: 70, eu-west-1: 6}}}
services:
  api: {origin_name: api-alb.example.com}
  app: {origin_name: app-alb.example.com}
faults:
  - {kind: misroute, vantage: dub, answer: us-east-1, service: api}
"""


def test_a_lab_world_declares_services_and_misroutes_one_of_them() -> None:
    from monitor.lab import parse_scenario

    scenario = parse_scenario(LAB)
    assert scenario.origin_names() == {"global-alb.example.com": None,
                                       "api-alb.example.com": "api",
                                       "app-alb.example.com": "app"}
    assert scenario.faults[0].service == "api"


@pytest.mark.parametrize(("change", "problem"), [
    (("service: api}", "service: web}"),
     "line 8: faults[0].service: 'web' is not one of this scenario's services"),
    (("app-alb", "api-alb"),
     "line 6: services.app.origin_name: api-alb.example.com is already the origin name of api"),
    (("{kind: misroute, vantage: dub, answer: us-east-1, service: api}",
      "{kind: region_down, region: us-east-1, service: api}"),
     "line 7: faults[0]: region_down takes no service"),
])
def test_lab_services_mistakes_are_typed_errors(change: tuple[str, str], problem: str) -> None:
    from monitor.lab import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError) as caught:
        parse_scenario(LAB.replace(*change))
    assert [str(p) for p in caught.value.problems] == [problem]


def test_the_routing_page_names_each_service_and_its_worst_state() -> None:
    from monitor.page import render_page

    api = dataclasses.replace(vantage_round("dub", state=RoutingState.MISROUTED,
                                            served="us-east-1", expected="eu-west-1",
                                            penalty=0.064), service="api")
    app = dataclasses.replace(vantage_round("dub"), service="app")
    page = render_page(round_document(round_of(api, app)), now=2000.0)
    assert '<span class="count st-misrouted" data-service="api">' in page
    assert '<span class="count st-ok" data-service="app">' in page
    assert '<tr data-vantage="dub" data-service="api"><th scope="row">dub · api' in page
    assert '<li data-vantage="dub" data-service="api" data-path="origin">' in page
    single = render_page(round_document(round_of(vantage_round("dub"))), now=2000.0)
    assert "data-service" not in single
    assert "dub · default" not in single



def test_services_ending_together_share_the_lab_lateness_fetches() -> None:
    """Callers that ask while a fetch runs share the next fetch, which starts after they asked:
    three callers, two fetches; a caller after them all gets a fetch of its own."""
    from monitor.lab._handle import SharedCollect

    class Source:
        remote = True

        def __init__(self) -> None:
            self.started: list[int] = []  # how many callers had asked when each fetch started
            self.release = asyncio.Event()

        async def collect(self) -> None:
            self.started.append(asked)
            await self.release.wait()

        def stalls(self) -> list[tuple[float, float]]:
            return [(1.0, 2.0)]

    asked = 0

    async def scenario() -> list[int]:
        nonlocal asked
        source = Source()
        shared = SharedCollect(source)

        async def caller() -> None:
            nonlocal asked
            asked += 1
            await shared.collect()

        first = asyncio.create_task(caller())
        await asyncio.sleep(0)  # the first fetch starts (one caller has asked)
        others = [asyncio.create_task(caller()) for _ in range(2)]
        await asyncio.sleep(0)  # both ask while it runs
        source.release.set()
        await asyncio.gather(first, *others)
        await caller()
        assert shared.remote
        assert list(shared.stalls()) == [(1.0, 2.0)]
        return source.started

    assert asyncio.run(scenario()) == [1, 3, 4]


def test_healthz_lists_each_services_vantage_points() -> None:
    import json

    from monitor.exporters.prometheus import health_report

    store = SnapshotStore(services_config())
    store.publish(dataclasses.replace(vantage_round("dub", started_at=1000.0), service="api"))
    store.publish(dataclasses.replace(vantage_round("dub", started_at=990.0, success=False),
                                      service="app"))
    document = json.loads(json.dumps(health_report(store.current(), 1000.0).document))
    # a reader of vantage_points sees each vantage point with several services too: its
    # latest round over them, successful only if every service's was
    (dub,) = document["vantage_points"].values()
    assert list(document["vantage_points"]) == ["dub"]
    assert dub["success"] is False
    assert dub["finished_at"] == max(document["services"][service]["dub"]["finished_at"]
                                     for service in ("api", "app"))
    assert sorted(document["services"]) == ["api", "app"]
    assert document["services"]["api"]["dub"]["rounds"] == 1
    single = SnapshotStore(parse_config(SINGLE).config)
    single.publish(vantage_round("dub"))
    report = health_report(single.current(), 1000.0).document
    assert list(report["vantage_points"]) == ["dub"]
    assert "services" not in report


def test_a_regional_probes_rounds_replace_the_local_ones_for_every_service() -> None:
    from monitor.aws.remote import RegionAnswer, merge_rounds

    def of(vantage: str, service: str, latency: float) -> VantageRound:
        return dataclasses.replace(vantage_round(vantage, latency=latency), service=service)

    local = round_of(of("laptop", "api", 0.001), of("laptop", "app", 0.001),
                     of("dub", "api", 0.001), of("dub", "app", 0.001))
    regional = RegionAnswer("eu-west-1", round_of(of("dub", "api", 0.002),
                                                  of("dub", "app", 0.002)), 1.0)
    merged = merge_rounds(local, [regional])
    assert [(v.vantage, v.service, v.duration_seconds) for v in merged.vantage_points] == [
        ("laptop", "api", 0.001), ("laptop", "app", 0.001), ("dub", "api", 0.002),
        ("dub", "app", 0.002)]


def test_check_remote_refuses_an_unknown_service_before_invoking_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every vantage point runs in a region (no local round): an unknown --service is still
    exit 2 naming the services, not an empty round that reads as an outage (exit 3)."""
    from click.testing import CliRunner

    from monitor.cli import main

    config = tmp_path / "remote.yaml"
    monkeypatch.delenv("AWS_REGION", raising=False)  # no vantage point runs here
    config.write_text(SERVICES.replace("53}", "53, region: us-east-1}")
                      .replace("54}", "54, region: eu-west-1}")
                      .replace("192.0.2.", "127.0.2."), encoding="utf-8")
    run = CliRunner().invoke(main, ["check", "--config", str(config), "--remote", "--service",
                                    "nope", "--endpoint-url", "http://127.0.0.1:9"])
    assert run.exit_code == 2, run.output
    assert run.stderr.startswith("error: unknown service(s): nope (configured: ")
