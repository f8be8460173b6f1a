"""The alert rules: promtool validates them and runs their unit tests (alerts/tests/*.yml)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "routewatch.rules.yml"
RULE_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"

ROUTING_ALERTS = frozenset({"RoutewatchRoutingMisrouted", "RoutewatchCdnOriginMisrouted",
                            "RoutewatchDataPathNotRegionLocal", "RoutewatchRegionUnhealthy"})
"""The alerts about where traffic goes: their descriptions name the probe, regions and penalty."""
REQUIRED_ALERTS = ROUTING_ALERTS | {"RoutewatchRoutingUnknown", "RoutewatchProbeStale",
                                    "RoutewatchConfigReloadFailed"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.geteuid() == 0:
            pytest.fail("promtool is missing although we are root: run `make system-deps`")
        pytest.skip("promtool is not installed (Debian package prometheus) and we are not root")
    return found


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    assert RULE_TESTS
    result = subprocess.run([promtool(), "test", "rules", *map(str, RULE_TESTS)],
                            capture_output=True, text=True, timeout=120, check=False,
                            cwd=ROOT / "alerts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_for_severity_annotations_and_a_runbook_section() -> None:
    headings = {re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
                for line in RUNBOOK.read_text(encoding="utf-8").splitlines()
                if line.startswith("## ")}
    assert {rule["alert"] for rule in alerts()} >= REQUIRED_ALERTS
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no `for`"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        url = annotations["runbook_url"]
        assert url.endswith(f"docs/runbook.md#{name.lower()}"), (name, url)
        assert name.lower() in headings, f"docs/runbook.md has no section ## {name}"


def test_routing_alerts_name_probe_path_regions_and_penalty() -> None:
    routing = [rule for rule in alerts() if rule["alert"] in ROUTING_ALERTS]
    # a renamed alert fails here instead of leaving the loop below with nothing to check
    assert {rule["alert"] for rule in routing} == ROUTING_ALERTS
    for rule in routing:
        description = rule["annotations"]["description"]
        for needed in ("$labels.probe", "routewatch_served_region",
                       "routewatch_expected_region", "routewatch_routing_penalty_seconds"):
            assert needed in description, (rule["alert"], needed)


def test_each_alert_is_shown_firing_and_not_firing() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names <= fired, f"never shown firing: {names - fired}"
    assert names <= quiet, f"never shown staying quiet: {names - quiet}"


def test_a_failed_reload_alerts_on_the_reload_gauge() -> None:
    (rule,) = [r for r in alerts() if r["alert"] == "RoutewatchConfigReloadFailed"]
    assert rule["expr"].strip() == "routewatch_config_last_reload_successful == 0"
    assert rule["labels"]["severity"] == "warning"
    assert "routewatch_config_last_reload_success_timestamp_seconds" in \
        rule["annotations"]["description"]
