"""The loopback lab keeps its first-byte timing under the ``auto`` default: the config the lab
writes pins ``first_byte``, and ``auto`` itself sees the delay proxy answer the connect locally
(connect ~0 beside a handshake that pays the round trip) and falls back to first byte for the
whole row, saying why. The slow-app world is judged as before: near but slow is ok (slow_app)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from conftest import LabWorld

from monitor.config import Config, Estimator, load_config
from monitor.core.report import round_document
from monitor.lab import parse_scenario
from monitor.round.run import run_round

SLOW_NEAR = parse_scenario("""
description: eu-west-1 is 8 ms from dub but its app takes 150 ms; us-east-1 is 70 ms away and
  ap-southeast-1 180 ms.
regions:
  eu-west-1: {processing_ms: 150}
  us-east-1: {}
  ap-southeast-1: {}
vantage_points:
  dub: {location: DUB, latency_ms: {eu-west-1: 8, us-east-1: 70, ap-southeast-1: 180}}
""", "auto-slow-near", "auto-slow-near")


def document(config: Config) -> dict[str, Any]:
    return json.loads(json.dumps(round_document(asyncio.run(run_round(config)))))


def test_the_lab_pins_first_byte_and_auto_detects_the_local_connect(
        lab_world: LabWorld) -> None:
    pinned = load_config(lab_world(SLOW_NEAR).config_path).config
    assert pinned.probe.estimator is Estimator.FIRST_BYTE
    [dub] = document(pinned)["vantage_points"]
    assert {(r["estimator"], r["estimator_reason"]) for r in dub["regions"]} == {
        ("first_byte", "configured")}
    auto = replace(pinned, probe=replace(pinned.probe, estimator=Estimator.AUTO))
    [dub] = document(auto)["vantage_points"]
    rows = {r["region"]: r for r in dub["regions"]}
    for row in rows.values():
        assert row["estimator"] == "first_byte", row
        assert row["estimator_reason"] in ("connect_local", "row_connect_local"), row
        assert row["connect_seconds"] < row["handshake_seconds"], row  # the proxy's accept
    # us-east-1, 70 ms away, cannot hide the proxy's local accept
    assert rows["us-east-1"]["estimator_reason"] == "connect_local"
    # eu-west-1 (8 ms, app 150 ms) serves: by first byte it reads 88 ms slower than us-east-1,
    # by network it is the nearest: ok with the slow_app finding, as under the pinned first byte
    origin = next(p for p in dub["paths"] if p["path"] == "origin")
    assert origin["served_region"] == "eu-west-1", origin
    if origin["reason"] == "measurement_disturbed":
        pytest.skip(f"the machine disturbed the round: {origin['detail']}")
    assert (origin["state"], origin["reason"], origin["estimator"]) == (
        "ok", "slow_app", "handshake"), origin
