"""The loopback lab keeps its first-byte timing under the ``auto`` default: the config the lab
writes pins ``first_byte``, and ``auto`` itself sees the delay proxy answer the connect locally
(connect ~0 beside a handshake that pays the round trip) and falls back to first byte for the
whole row, saying why. The slow-app world is judged as before: near but slow is ok (slow_app)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.config import Config, Estimator, load_config
from monitor.core.report import round_document
from monitor.lab import LabHandle, parse_scenario, start_lab
from monitor.round.run import run_round

SLOW_APP = """
description: eu-west-1 is 10 ms from dub but its app takes 100 ms; us-east-1 is 60 ms away.
regions:
  eu-west-1: {processing_ms: 100}
  us-east-1: {}
vantage_points:
  dub: {location: DUB, latency_ms: {eu-west-1: 10, us-east-1: 60}}
"""


@pytest.fixture(scope="module")
def world() -> Iterator[LabHandle]:
    handle = start_lab(parse_scenario(SLOW_APP, "slow-app", "slow-app"))
    try:
        yield handle
    finally:
        handle.stop()


def document(config: Config) -> dict[str, Any]:
    return json.loads(json.dumps(round_document(asyncio.run(run_round(config)))))


def test_the_lab_pins_first_byte_and_auto_detects_the_local_connect(world: LabHandle) -> None:
    pinned = load_config(world.config_path).config
    assert pinned.probe.estimator is Estimator.FIRST_BYTE
    [dub] = document(pinned)["vantage_points"]
    assert {(r["estimator"], r["estimator_reason"]) for r in dub["regions"]} == {
        ("first_byte", "configured")}
    auto = pinned.model_copy(update={"probe": pinned.probe.model_copy(
        update={"estimator": Estimator.AUTO})})
    [dub] = document(auto)["vantage_points"]
    rows = {r["region"]: r for r in dub["regions"]}
    for row in rows.values():
        assert row["estimator"] == "first_byte", row
        assert row["estimator_reason"] in ("connect_local", "row_connect_local"), row
        assert row["connect_seconds"] < row["handshake_seconds"], row  # the proxy's accept
    # us-east-1, 60 ms away, cannot hide the proxy's local accept
    assert rows["us-east-1"]["estimator_reason"] == "connect_local"
    origin = next(p for p in dub["paths"] if p["path"] == "origin")
    # eu-west-1 (10 ms, app 100 ms) served: by first byte it reads slower, by network it is
    # near: ok with the slow_app finding, exactly as under the pinned first byte
    if origin["served_region"] == "eu-west-1" and origin["state"] != "unknown":
        assert (origin["state"], origin["reason"], origin["estimator"]) == (
            "ok", "slow_app", "handshake"), origin
