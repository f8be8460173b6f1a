"""alerts/alertmanager.example.yml: valid for Alertmanager (``amtool check-config``), and one region
outage pages once.

amtool can test routing (``amtool config routes test``) but not inhibition, so the inhibit rules
are evaluated here, with Alertmanager's semantics, over the alerts the rules really produce: the
``exp_alerts`` of the promtool tests in alerts/tests/ (tests/test_alerts.py runs them through
promtool, which fails if the rules produce anything else). What is left is routed by amtool and
grouped by the route's ``group_by``: one group is one notification.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "alerts" / "alertmanager.example.yml"
RULE_TESTS = ROOT / "alerts" / "tests"

Alert = dict[str, str]


def amtool() -> str:
    return require_tool("amtool", "prometheus-alertmanager")


def config() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return document


def expected_alerts(file: str, case: str, eval_time: str) -> list[Alert]:
    """The alerts a promtool test case expects to be firing at ``eval_time``."""
    document = yaml.safe_load((RULE_TESTS / file).read_text(encoding="utf-8"))
    [test] = [t for t in document["tests"] if t["name"] == case]
    alerts = [{"alertname": check["alertname"], **expected["exp_labels"]}
              for check in test["alert_rule_test"] if check["eval_time"] == eval_time
              for expected in check["exp_alerts"]]
    assert alerts, f"{file}: {case!r} expects nothing at {eval_time}"
    return alerts


# --- Alertmanager's matchers and inhibition ------------------------------------------------------

_MATCHER = re.compile(r'^\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _MATCHER.match(text)
        assert found, f"not a matcher this test understands: {text!r}"
        return cls(found[1], found[2], found[3].encode().decode("unicode_escape"))

    def matches(self, alert: Alert) -> bool:
        actual = alert.get(self.label, "")  # a missing label is the empty string
        if self.op in ("=", "!="):
            return (actual == self.value) == (self.op == "=")
        return (re.fullmatch(self.value, actual) is not None) == (self.op == "=~")


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def parse(cls, rule: dict[str, Any]) -> InhibitRule:
        assert set(rule) <= {"source_matchers", "target_matchers", "equal"}, rule
        return cls(tuple(Matcher.parse(m) for m in rule["source_matchers"]),
                   tuple(Matcher.parse(m) for m in rule["target_matchers"]),
                   tuple(rule.get("equal", ())))

    def inhibits(self, source: Alert, target: Alert) -> bool:
        return (source is not target
                and all(m.matches(source) for m in self.source)
                and all(m.matches(target) for m in self.target)
                and all(source.get(k, "") == target.get(k, "") for k in self.equal))


def not_inhibited(alerts: list[Alert], rules: list[InhibitRule]) -> list[Alert]:
    return [target for target in alerts
            if not any(rule.inhibits(source, target) for rule in rules for source in alerts)]


def inhibit_rules() -> list[InhibitRule]:
    return [InhibitRule.parse(rule) for rule in config()["inhibit_rules"]]


def group_by(alert: Alert) -> list[str]:
    """The ``group_by`` of the first child route the alert matches (none of them continues),
    else the top route's."""
    route = config()["route"]
    for child in route.get("routes", []):
        assert not child.get("continue"), child
        assert "routes" not in child, child
        if all(Matcher.parse(m).matches(alert) for m in child.get("matchers", [])):
            found: list[str] = child.get("group_by", route["group_by"])
            return found
    top: list[str] = route["group_by"]
    return top


def notifications(alerts: list[Alert]) -> set[tuple[str, tuple[str, ...]]]:
    """(receiver, group key) per notification, the receiver from amtool's routing."""
    found = set()
    for alert in alerts:
        run = subprocess.run(
            [amtool(), "config", "routes", "test", f"--config.file={CONFIG}",
             *(f"{k}={v}" for k, v in alert.items())],
            capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        receiver = run.stdout.strip()
        found.add((receiver, tuple(f"{label}={alert.get(label, '')}"
                                   for label in group_by(alert))))
    return found


# --- the tests -----------------------------------------------------------------------------------

OUTAGE = ("outage_test.yml", "eu-west-1 down from every vantage point, not yet failed over",
          "12m")


def test_amtool_check_config() -> None:
    run = subprocess.run([amtool(), "check-config", str(CONFIG)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout
    assert f"{len(config()['inhibit_rules'])} inhibit rules" in run.stdout


def test_critical_alerts_page_and_warnings_do_not() -> None:
    assert notifications([{"alertname": "RoutewatchRegionDown", "severity": "critical",
                           "service": "api", "region": "eu-west-1"}]) == {
        ("pager", ("alertname=RoutewatchRegionDown", "region=eu-west-1"))}
    assert notifications([{"alertname": "RoutewatchRegionUnhealthy", "severity": "warning",
                           "service": "api", "region": "eu-west-1", "probe": "dub"}]) == {
        ("team-chat", ("alertname=RoutewatchRegionUnhealthy", "service=api",
                       "region=eu-west-1"))}


def test_each_service_is_its_own_notification_and_outage() -> None:
    """Services have their own ALBs and owners: one service's outage notifies for it alone and
    inhibits only its own alerts."""
    api = [{**alert, "service": "api"} for alert in expected_alerts(*OUTAGE)]
    app = [{**alert, "service": "app"} for alert in expected_alerts(*OUTAGE)
           if alert["alertname"] != "RoutewatchRegionDown"]  # app's region still answers
    left = not_inhibited([*api, *app], inhibit_rules())
    assert {(a["alertname"], a["service"]) for a in left} == {
        ("RoutewatchRegionDown", "api"), *((a["alertname"], "app") for a in app)}
    assert ("pager", ("alertname=RoutewatchRegionDown", "region=eu-west-1")) in notifications(
        left)


def test_a_region_outage_without_inhibition_notifies_four_times() -> None:
    """The control: the alerts of one outage, grouped but not inhibited."""
    alerts = expected_alerts(*OUTAGE)
    assert {a["alertname"] for a in alerts} == {
        "RoutewatchRegionDown", "RoutewatchRegionUnhealthy", "RoutewatchRoutingMisrouted",
        "RoutewatchRoutingUnknown"}
    assert len(alerts) == 9  # 1 down, 4 unhealthy (one per vantage point), 2 misrouted, 2 unknown
    assert len(notifications(alerts)) == 4


def test_a_region_outage_pages_once() -> None:
    left = not_inhibited(expected_alerts(*OUTAGE), inhibit_rules())
    assert [a["alertname"] for a in left] == ["RoutewatchRegionDown"]
    assert notifications(left) == {
        ("pager", ("alertname=RoutewatchRegionDown", "region=eu-west-1"))}


def test_two_routewatch_instances_still_page_once() -> None:
    alerts = [{**alert, "instance": instance} for instance in ("rw-a:9465", "rw-b:9465")
              for alert in expected_alerts(*OUTAGE)]
    left = not_inhibited(alerts, inhibit_rules())
    assert len(left) == 2  # each instance's RegionDown...
    assert notifications(left) == {  # ...grouped
        ("pager", ("alertname=RoutewatchRegionDown", "region=eu-west-1"))}


def test_a_region_outage_of_several_services_pages_once() -> None:
    """Services share regions: the same outage raises one RoutewatchRegionDown per service,
    each inhibiting its own service's consequences; the page is still one, for the region."""
    alerts = [{**alert, "service": service} for service in ("api", "app", "assets")
              for alert in expected_alerts(*OUTAGE)]
    left = not_inhibited(alerts, inhibit_rules())
    assert sorted((a["alertname"], a["service"]) for a in left) == [
        ("RoutewatchRegionDown", "api"), ("RoutewatchRegionDown", "app"),
        ("RoutewatchRegionDown", "assets")]
    assert notifications(left) == {
        ("pager", ("alertname=RoutewatchRegionDown", "region=eu-west-1"))}


@pytest.mark.parametrize(("file", "case", "eval_time"), [
    ("probe_test.yml", "region unhealthy from one vantage point fires, region down does not",
     "7m"),
    ("routing_test.yml", "misrouted origin fires after 3 minutes and names regions and penalty",
     "7m"),
    ("routing_test.yml", "unknown fires after 10 minutes and lists the recent errors", "12m"),
], ids=["region-unhealthy-from-one", "misrouted", "unknown"])
def test_without_an_outage_nothing_is_held_back(file: str, case: str, eval_time: str) -> None:
    alerts = expected_alerts(file, case, eval_time)
    assert not_inhibited(alerts, inhibit_rules()) == alerts


def test_an_outage_elsewhere_in_another_routewatch_holds_nothing_back() -> None:
    outage = [a for a in expected_alerts(*OUTAGE) if a["alertname"] == "RoutewatchRegionDown"]
    misrouted = [{**a, "instance": "rw-other:9465"} for a in expected_alerts(
        "routing_test.yml",
        "misrouted origin fires after 3 minutes and names regions and penalty", "7m")]
    assert not_inhibited(outage + misrouted, inhibit_rules()) == outage + misrouted


def test_matcher_semantics() -> None:
    alert = {"alertname": "RoutewatchRoutingUnknown", "probe": "dub"}
    assert Matcher.parse('alertname = "RoutewatchRoutingUnknown"').matches(alert)
    assert Matcher.parse('alertname =~ "RoutewatchRouting.*"').matches(alert)
    assert not Matcher.parse('alertname =~ "Routing"').matches(alert)  # anchored
    assert Matcher.parse('region = ""').matches(alert)  # absent is empty
    assert Matcher.parse('probe != "nyc"').matches(alert)
    assert not Matcher.parse('probe !~ "d.b"').matches(alert)
