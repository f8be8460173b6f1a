"""Against lab worlds: a disputed region header misleads nothing (issue 10, fault 6), a slow app
near by is not a distant region (fault 7), and TLS versions and certificate expiry per region and
path (issue 12) from origins with a TLS 1.2-only policy and a short-lived certificate."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from monitor.config import Config, load_config
from monitor.core.report import round_document
from monitor.lab import LabHandle, parse_scenario, start_lab
from monitor.metrics import SnapshotStore, snapshot_samples
from monitor.round.run import run_round

DISPUTED = """
description: eu-west-1's app says it is us-east-1 (header and health JSON); fra and its edge are
  served by eu-west-1, the region nearest to both.
regions: {us-east-1: {}, eu-west-1: {}}
vantage_points:
  fra: {location: FRA, latency_ms: {us-east-1: 90, eu-west-1: 25}}
edges:
  fra56: {pop: FRA56-P1, latency_ms: {us-east-1: 88, eu-west-1: 22},
          vantage_latency_ms: {fra: 3}}
faults:
  - {kind: header_mismatch, region: eu-west-1, claims: us-east-1}
"""

SLOW_APP = """
description: eu-west-1 is 10 ms from dub but its app takes 100 ms; us-east-1 is 60 ms away.
regions:
  eu-west-1: {processing_ms: 100}
  us-east-1: {}
vantage_points:
  dub: {location: DUB, latency_ms: {eu-west-1: 10, us-east-1: 60}}
"""

TLS = """
description: eu-west-1 has a TLS 1.2-only policy and a certificate that expires in two days.
regions:
  eu-west-1: {tls_max_version: "1.2", cert_valid_days: 2}
  us-east-1: {}
vantage_points:
  dub: {location: DUB, latency_ms: {eu-west-1: 10, us-east-1: 60}}
"""


@pytest.fixture(scope="module")
def worlds() -> Iterator[dict[str, LabHandle]]:
    started: dict[str, LabHandle] = {}
    try:
        for name, text in (("disputed", DISPUTED), ("slow-app", SLOW_APP), ("tls", TLS)):
            started[name] = start_lab(parse_scenario(text, name, name))
        yield started
    finally:
        for world in started.values():
            world.stop()


def config_of(world: LabHandle, *, slow_app_ms: float | None = None, **probe: Any) -> Config:
    config = load_config(world.config_path).config
    if probe:
        config = replace(config, probe=replace(config.probe, **probe))
    if slow_app_ms is not None:
        config = replace(config, tolerance=replace(config.tolerance, slow_app_ms=slow_app_ms))
    return config


def document(config: Config) -> dict[str, Any]:
    return json.loads(json.dumps(round_document(asyncio.run(run_round(config)))))


def path(entry: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in entry["paths"] if p["path"] == name)


def test_a_disputed_header_gives_no_confident_verdict_anywhere(
        worlds: dict[str, LabHandle]) -> None:
    """The origin sees the header (us-east-1) at eu-west-1's address: evidence_conflict. The same
    round must not say "us-east-1 reads DynamoDB in eu-west-1" (an alert would fire) nor call the
    edge misrouted because the header it passes names us-east-1."""
    config = config_of(worlds["disputed"])
    result = asyncio.run(run_round(config))
    [fra] = json.loads(json.dumps(round_document(result)))["vantage_points"]
    origin, cdn = path(fra, "origin"), path(fra, "cdn")
    assert (origin["state"], origin["reason"]) == ("unknown", "evidence_conflict"), origin
    assert not [n for n in origin["notes"] if "leaves the serving region" in n], origin["notes"]
    assert "data_path_local" not in origin
    assert origin["data_path"] == "disputed"
    assert (cdn["state"], cdn["reason"]) == ("unknown", "evidence_conflict"), cdn
    assert cdn["penalty_seconds"] is None
    assert cdn["expected_region"] == "eu-west-1"
    assert any("eu-west-1" in c for c in cdn["attribution"]["conflicts"]), cdn["attribution"]
    # nothing on /metrics for the data-path alert to fire on
    store = SnapshotStore(config)
    store.publish(result.vantage_points[0])
    names = {spec.name for spec, samples in snapshot_samples(store.current()).items() if samples}
    assert "routewatch_data_path_local" not in names
    assert "routewatch_routing_penalty_seconds" not in {
        s.spec.name for samples in snapshot_samples(store.current()).values() for s in samples
        if s.labels[1:2] == ("cdn",)}


def test_a_slow_app_near_by_is_its_own_finding_not_a_misroute(
        worlds: dict[str, LabHandle]) -> None:
    world = worlds["slow-app"]
    [dub] = document(config_of(world))["vantage_points"]  # the default estimator, first_byte
    row = {r["region"]: r for r in dub["regions"]}["eu-west-1"]
    assert row["app_seconds"] > 0.050  # 100 ms of app time, beyond tolerance.slow_app_ms
    for name in ("dns", "origin"):
        entry = path(dub, name)
        assert (entry["state"], entry["reason"]) == ("ok", "slow_app"), entry
        assert (entry["served_region"], entry["expected_region"]) == ("eu-west-1", "eu-west-1")
        assert entry["estimator"] == "handshake"  # the verdict rests on network distance
    assert "slow_app" in path(dub, "origin")["detail"]
    # the same with the handshake estimator: ok by distance, and the slow app is a finding
    [dub] = document(config_of(world, estimator="handshake"))["vantage_points"]
    assert (path(dub, "origin")["state"], path(dub, "origin")["reason"]) == ("ok", "slow_app")


def test_first_byte_alone_stays_selectable_and_counts_app_time_as_distance(
        worlds: dict[str, LabHandle]) -> None:
    [dub] = document(config_of(worlds["slow-app"], slow_app_ms=0))["vantage_points"]
    origin = path(dub, "origin")
    assert (origin["state"], origin["served_region"], origin["expected_region"]) == (
        "misrouted", "eu-west-1", "us-east-1"), origin
    assert origin["estimator"] == "first_byte"


def test_tls_version_and_certificate_expiry_per_region_and_path(
        worlds: dict[str, LabHandle]) -> None:
    world = worlds["tls"]
    config = config_of(world)
    started = time.time()
    result = asyncio.run(run_round(config))
    [dub] = json.loads(json.dumps(round_document(result)))["vantage_points"]
    rows = {r["region"]: r for r in dub["regions"]}
    eu, us = rows["eu-west-1"], rows["us-east-1"]
    assert (eu["tls_version"], eu["handshake_round_trips"]) == ("TLSv1.2", 2)
    assert (us["tls_version"], us["handshake_round_trips"]) == ("TLSv1.3", 1)
    from datetime import datetime

    eu_expiry = datetime.fromisoformat(eu["cert_not_after"]).timestamp()
    us_expiry = datetime.fromisoformat(us["cert_not_after"]).timestamp()
    two_days = 2 * 86400
    # the world started before the round: its certificate expires within two days of now
    assert started - 3600 < eu_expiry <= started + two_days
    assert us_expiry > started + 365 * 86400
    # TLS 1.2: two round trips counted as one of distance, so eu-west-1 stays the closer region
    assert eu["latency_seconds"] < us["latency_seconds"]
    origin = path(dub, "origin")
    assert (origin["served_region"], origin["tls_version"]) == ("eu-west-1", "TLSv1.2")
    assert origin["cert_not_after"] == eu["cert_not_after"]
    store = SnapshotStore(config)
    store.publish(result.vantage_points[0])
    samples = {(s.spec.name, s.labels): s.value
               for found in snapshot_samples(store.current()).values() for s in found}
    assert samples["routewatch_tls_cert_expiry_timestamp_seconds",
                   ("dub", "default", "baseline", "eu-west-1")] == eu_expiry
    assert samples["routewatch_tls_cert_expiry_timestamp_seconds",
                   ("dub", "default", "origin", "eu-west-1")] == eu_expiry
    who = ("dub", "default")  # probe, service
    assert samples["routewatch_tls_version_info", (*who, "baseline", "eu-west-1", "TLSv1.2")] == 1
    assert samples["routewatch_tls_version_info", (*who, "baseline", "us-east-1", "TLSv1.3")] == 1
    assert samples["routewatch_tls_version_info", (*who, "origin", "eu-west-1", "TLSv1.2")] == 1
