"""A dual-stack lab world where one address family is misrouted and the other not, checked end to
end with ``routewatch check --json``: each family's verdicts, the exit code, the JSON document
and the metrics built from it.

The world's IPv6 addresses (fd00::/16) exist only inside a network namespace each test creates
(``unshare -n``: a fresh ``lo`` with 127/8 and the addresses added to it); the lab world and the
check both run in it, and it disappears with them. Root only; skipped otherwise, saying why.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_client import calm

from monitor.config import IpFamily
from monitor.core.model import Path as RoutePath
from monitor.core.report import round_from_document
from monitor.lab import (
    edge_address,
    edge_address_v6,
    ipv6_addresses,
    region_address,
    region_address_v6,
)
from monitor.metrics.catalogue import metric
from monitor.metrics.samples import vantage_samples
from monitor.metrics.snapshot import LabelSpace, VantageSnapshot
from monitor.page.render import render_page

ROOT = Path(__file__).parents[2]
REGIONS = ("us-east-1", "eu-west-1")
LATENCY = {"nyc": {"us-east-1": 8.0, "eu-west-1": 75.0},
           "dub": {"us-east-1": 70.0, "eu-west-1": 6.0}}
LATENCY_V6 = {"nyc": {"us-east-1": 20.0, "eu-west-1": 75.0}, "dub": LATENCY["dub"]}


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating a network namespace (unshare -n) and adding addresses needs root"
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"no `{tool}` command (Debian package {package})"
    tried = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True,
                           timeout=30, check=False)
    if tried.returncode != 0:
        return f"unshare -n fails here: {tried.stderr.strip()}"
    return None


pytestmark = pytest.mark.skipif(bool(reason := _unavailable()), reason=reason or "")


def scenario(tmp_path: Path, misrouted: IpFamily) -> Path:
    """dub's answer in one family names us-east-1 (70 ms) although eu-west-1 is 6 ms away."""
    document = {
        "description": f"dual-stack; dub misrouted over {misrouted} only",
        "ipv6": True,
        "regions": {region: {} for region in REGIONS},
        "vantage_points": {
            "nyc": {"location": "JFK", "latency_ms": LATENCY["nyc"],
                    "latency_v6_ms": LATENCY_V6["nyc"]},
            "dub": {"location": "DUB", "latency_ms": LATENCY["dub"]},
        },
        # one CloudFront-like edge for both, reaching eu-west-1, over either family
        "edges": {"fra": {"pop": "FRA56-P1", "latency_ms": {"us-east-1": 90, "eu-west-1": 20},
                          "vantage_latency_ms": {"nyc": 80, "dub": 20}}},
        "faults": [{"kind": "misroute", "vantage": "dub", "answer": "us-east-1",
                    "family": misrouted.value}],
    }
    path = tmp_path / f"dual-stack-{misrouted}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def check_in_namespace(scenario_path: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """``routewatch check --lab SCENARIO --json`` inside a fresh network namespace."""
    added = " && ".join(f"ip -6 addr add {address}/128 dev lo nodad"
                        for address in ipv6_addresses(len(REGIONS), len(LATENCY), 1))
    check = shlex.join([sys.executable, "-m", "monitor.cli", "check", "--lab",
                        str(scenario_path), "--json", "--output", str(output)])
    output.unlink(missing_ok=True)
    return subprocess.run(["unshare", "-n", "sh", "-c",
                           f"ip link set lo up && {added} && exec {check}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=180, check=False)


def rows(output: Path) -> dict[str, dict[str, float]]:
    """The latency matrix per vantage point and family ("dub ipv6" → region → ms)."""
    if not output.exists():
        return {}
    document = json.loads(output.read_text())
    found: dict[str, dict[str, float]] = {}
    for vantage in document["vantage_points"]:
        for row in vantage["regions"]:
            if row.get("healthy") and row.get("latency_seconds") is not None:
                found.setdefault(f"{vantage['name']} {row['family']}", {})[row["region"]] = (
                    row["latency_seconds"] * 1000)
            elif row.get("reason") == "measurement_disturbed":
                found.setdefault(f"{vantage['name']} {row['family']}", {})[row["region"]] = (
                    float("inf"))
    return found


INJECTED = {**{f"{name} ipv4": row for name, row in LATENCY.items()},
            **{f"{name} ipv6": row for name, row in LATENCY_V6.items()}}


def calm_document(tmp_path: Path, misrouted: IpFamily) -> tuple[int, dict[str, Any]]:
    output = tmp_path / "round.json"
    path = scenario(tmp_path, misrouted)
    done = calm(lambda: check_in_namespace(path, output), lambda _: rows(output), INJECTED)
    assert output.exists(), done.stderr
    return done.returncode, json.loads(output.read_text())


def verdicts(document: dict[str, Any]) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    return {(v["name"], p["path"], p["family"]): (p["state"], p["served_region"])
            for v in document["vantage_points"] for p in v["paths"]}


@pytest.mark.parametrize("misrouted", list(IpFamily), ids=lambda f: f"{f}-misrouted")
def test_one_family_misrouted_the_other_not(tmp_path: Path, misrouted: IpFamily) -> None:
    code, document = calm_document(tmp_path, misrouted)
    right = next(f for f in IpFamily if f is not misrouted)
    expected = {(name, path, family.value): ("ok", "us-east-1" if name == "nyc" else "eu-west-1")
                for name in LATENCY for path in ("dns", "origin") for family in IpFamily}
    expected.update({(name, "cdn", family.value): ("ok", "eu-west-1")
                     for name in LATENCY for family in IpFamily})
    expected[("dub", "dns", misrouted.value)] = ("misrouted", "us-east-1")
    expected[("dub", "origin", misrouted.value)] = ("misrouted", "us-east-1")
    assert verdicts(document) == expected
    assert code == document["exit_code"] == 1
    assert document["summary"] == {"ok": 10, "failover": 0, "misrouted": 2, "unknown": 0}

    dub = next(v for v in document["vantage_points"] if v["name"] == "dub")
    by_family = {(p["path"], p["family"]): p for p in dub["paths"]}
    wrong = by_family[("origin", misrouted.value)]
    assert wrong["expected_region"] == "eu-west-1"
    assert 0.045 < wrong["penalty_seconds"] < 0.085  # 64 ms injected
    us_index = REGIONS.index("us-east-1") + 1
    assert wrong["address"] == (region_address_v6(us_index) if misrouted is IpFamily.IPV6
                                else region_address(us_index))
    eu_index = REGIONS.index("eu-west-1") + 1
    assert by_family[("origin", right.value)]["address"] == (
        region_address_v6(eu_index) if right is IpFamily.IPV6 else region_address(eu_index))
    assert {family: by_family[("cdn", family.value)]["edge_address"] for family in IpFamily} == {
        IpFamily.IPV4: edge_address(1), IpFamily.IPV6: edge_address_v6(1)}
    assert by_family[("cdn", "ipv6")]["pop"] == "FRA56-P1"
    # each family measured its own round trips (nyc's IPv6 route to us-east-1 is 20 ms, not 8)
    nyc = rows(tmp_path / "round.json")
    assert nyc["nyc ipv6"]["us-east-1"] > nyc["nyc ipv4"]["us-east-1"] + 6

    # the metrics of this round: per family, and the path-level series follow the worst family
    result = round_from_document(document)
    space = LabelSpace(tuple(LATENCY), REGIONS, tuple(RoutePath), 60.0, 1)
    samples = list(vantage_samples(space, VantageSnapshot.single(
        next(v for v in result.vantage_points if v.vantage == "dub"), space.paths)))
    observed = {s.labels[2:4]: s.labels[4] for s in samples  # after probe and service
                if s.spec is metric("family_routing_observed_state") and s.value == 1}
    assert observed == {("dns", misrouted.value): "misrouted",
                        ("origin", misrouted.value): "misrouted",
                        ("dns", right.value): "ok", ("origin", right.value): "ok",
                        ("cdn", "ipv4"): "ok", ("cdn", "ipv6"): "ok"}
    stable = {s.labels[2]: s.labels[3] for s in samples
              if s.spec is metric("routing_state") and s.value == 1}
    assert stable == {"dns": "misrouted", "origin": "misrouted", "cdn": "ok"}
    page = render_page(document, now=result.started_at)
    assert f'data-path="origin {misrouted}" data-state="misrouted"' in page
    assert f'data-path="origin {right}" data-state="ok"' in page


def test_a_dual_stack_world_outside_a_namespace_says_where_it_must_run(tmp_path: Path) -> None:
    """On the host (only ::1 on lo) the world refuses to start and says why; nothing is added."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "check", "--lab",
         str(scenario(tmp_path, IpFamily.IPV6)), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "network namespace" in done.stderr
    assert "fd00:20:1::1" in done.stderr


def test_outside_a_namespace_the_dual_stack_world_refuses_with_one_clear_line(
        tmp_path: Path) -> None:
    """On the host (no ULA addresses on lo) the world never adds any: it refuses to start and
    names what is missing, in one line without an exception's class name."""
    scenario = tmp_path / "v6.yaml"
    scenario.write_text("ipv6: true\nregions: {us-east-1: {}}\n"
                        "vantage_points:\n  nyc: {latency_ms: {us-east-1: 8}}\n",
                        encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--lab", str(scenario)],
                         capture_output=True, text=True, timeout=120, check=False)
    if run.returncode == 0:
        pytest.skip("this host has the lab's IPv6 addresses on lo")
    assert run.returncode == 2
    assert run.stderr.startswith("error: lab world: ipv6: this dual-stack world needs "
                                 "fd00:20:1::1, fd00:30:1::1 on lo"), run.stderr
    assert "Error:" not in run.stderr
    assert "Traceback" not in run.stderr
