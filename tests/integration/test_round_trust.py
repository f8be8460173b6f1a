"""Measurement trust end to end on a lab world: a stall injected inside the samples of the region
that should win turns a would-be missed misroute into ``unknown`` / ``measurement_disturbed``."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from conftest import LabWorld

from monitor.config import load_config
from monitor.core.model import RoutingState
from monitor.core.report import round_document
from monitor.domain.reasons import Reason
from monitor.round.run import run_round
from probes.http import HttpEvidence, HttpTarget, probe_http

STALL_S = 0.1


def test_an_injected_stall_makes_the_round_say_disturbed_not_ok(
        lab_world: LabWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = lab_world("misrouted")  # dub is sent to us-east-1 (70 ms); eu-west-1 is 6 ms away
    config = load_config(lab.config_path).config
    closest = lab.regions["eu-west-1"]
    dub = lab.vantage_points["dub"]
    real = probe_http

    async def stalled(target: HttpTarget, **kwargs: Any) -> HttpEvidence:
        evidence = await real(target, **kwargs)
        if target.address != closest or target.local_address != dub:
            return evidence
        time.sleep(STALL_S)  # noqa: ASYNC251 -- the injected stall: it must block the loop
        await asyncio.sleep(0)
        # what the stall does to a reply that sat unread: eu-west-1 reads 106 ms, not 6
        phases = {**evidence.phases,
                  "processing": evidence.phases.get("processing", 0.0) + STALL_S}
        return dataclasses.replace(evidence, phases=phases)

    monkeypatch.setattr("monitor.round.baseline.probe_http", stalled)
    result = asyncio.run(run_round(config, vantage_points=["dub"],
                                   lag_sources=[lab.lateness_source()]))
    (vantage,) = result.vantage_points
    row = next(r for r in vantage.regions if r.region == "eu-west-1")
    assert row.reason is Reason.MEASUREMENT_DISTURBED
    assert row.latency_seconds is None
    assert row.disturbed_samples == config.probe.samples
    assert vantage.loop_lag_seconds is not None
    assert vantage.loop_lag_seconds >= STALL_S / 2
    for path in vantage.paths:  # never ok (the missed misroute), never a confident verdict
        assert path.verdict.state is RoutingState.UNKNOWN, path
    origin = next(p for p in vantage.paths if p.path.value == "origin")
    assert origin.verdict.reason is Reason.MEASUREMENT_DISTURBED
    document = round_document(result)
    assert document["vantage_points"][0]["loop_lag_seconds"] >= STALL_S / 2
    assert document["plan"]["fits"] is True


def test_the_lab_serves_its_lateness(lab_world: LabWorld) -> None:
    lab = lab_world("healthy")
    late = lab.lateness()
    assert isinstance(late, list)
    assert all(sent > due for due, sent in late)
