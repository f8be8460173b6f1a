"""The serve scheduler with stand-in rounds: isolation, no overlap, crashes, reload, stop."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, LoadedConfig, ServeSettings, load_config, parse_config
from monitor.core.model import (
    Attribution,
    PathResult,
    RegionLatency,
    RoutingState,
    RoutingVerdict,
    VantageRound,
)
from monitor.core.model import Path as RoutePath
from monitor.metrics import SnapshotStore, VantageSnapshot
from monitor.serve import scheduler as scheduler_module
from monitor.serve.scheduler import RoundScheduler, effective_jitter

CONFIG_YAML = """
service: {origin_name: global-alb.example.com}
regions:
  us-east-1: {addresses: [127.0.10.1]}
  eu-west-1: {addresses: [127.0.10.2]}
vantage_points:
  nyc: {resolver: 127.0.0.53}
  dub: {resolver: 127.0.0.53}
probe: {request_timeout_s: 0.2, round_deadline_s: 0.3}
serve: {interval_s: 1, jitter_s: 0, misfire_grace_s: 5, hysteresis_rounds: 2}
"""


def loaded(text: str = CONFIG_YAML) -> LoadedConfig:
    return parse_config(text, "test.yaml")


def ok_round(config: Config, name: str) -> VantageRound:
    verdict = RoutingVerdict(RoutingState.OK, "us-east-1", "us-east-1", 0.0)
    paths = tuple(PathResult(p, verdict, Attribution("us-east-1", "header"))
                  for p in (RoutePath.DNS, RoutePath.ORIGIN))
    regions = tuple(RegionLatency(r, 0.01, True) for r in config.regions)
    return VantageRound(name, 0.0, 0.01, regions, paths)


Runner = Callable[[Config, str], Awaitable[VantageRound]]


async def run_until(scheduler: RoundScheduler, done: Callable[[], bool],
                    checks: int = 400) -> None:
    """Run the scheduler until ``done()``, checking every 50 ms (bounded), then stop it."""
    task = asyncio.create_task(scheduler.run(install_signals=False))
    try:
        for _ in range(checks):
            if done():
                break
            await asyncio.sleep(0.05)
        assert done(), "the scheduler did not get there"
    finally:
        scheduler.request_stop()
        await task


async def test_a_stuck_vantage_point_never_stops_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "DEADLINE_MARGIN_S", 0.05)
    started: Counter[str] = Counter()

    async def runner(config: Config, name: str) -> VantageRound:
        started[name] += 1
        if name == "dub":
            await asyncio.sleep(3600)  # blackholed: only the deadline ends it
        return ok_round(config, name)

    store = SnapshotStore(loaded().config)
    scheduler = RoundScheduler(loaded(), store, runner=runner)
    await run_until(scheduler, lambda: "dub" in store.current().vantage
                    and store.current().vantage.get("nyc") is not None
                    and store.current().vantage["nyc"].rounds_total >= 2)
    dub = store.current().vantage["dub"].result
    assert not dub.success
    assert [(e.path, e.reason) for e in dub.errors] == [("round", "deadline")]


async def test_a_slow_round_is_never_overlapped_by_the_next() -> None:
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    finished: Counter[str] = Counter()

    async def runner(config: Config, name: str) -> VantageRound:
        running[name] += 1
        most[name] = max(most[name], running[name])
        try:
            await asyncio.sleep(0.25 if name == "nyc" else 0)
        finally:
            running[name] -= 1
            finished[name] += 1
        return ok_round(config, name)

    text = CONFIG_YAML.replace("round_deadline_s: 0.3", "round_deadline_s: 5")
    store = SnapshotStore(loaded(text).config)
    scheduler = RoundScheduler(loaded(text), store, runner=runner)
    # make nyc's 0.25 s round slower than its interval: every 0.1 s
    task = asyncio.create_task(scheduler.run(install_signals=False))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if scheduler._scheduler.get_job("nyc") is not None:
            break
    scheduler._scheduler.reschedule_job("nyc", trigger=IntervalTrigger(seconds=0.1))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if finished["nyc"] >= 3:
            break
    scheduler.request_stop()
    await task
    assert finished["nyc"] >= 3
    assert most["nyc"] == 1


async def test_a_crashing_round_is_published_as_failed_and_rounds_go_on(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: Counter[str] = Counter()

    async def runner(config: Config, name: str) -> VantageRound:
        calls[name] += 1
        if name == "nyc" and calls[name] == 1:
            raise RuntimeError("probe bug")
        return ok_round(config, name)

    store = SnapshotStore(loaded().config)
    scheduler = RoundScheduler(loaded(), store, runner=runner)
    seen: list[bool] = []
    original = store.publish

    def publish(result: VantageRound) -> VantageSnapshot | None:
        if result.vantage == "nyc":
            seen.append(result.success)
        return original(result)

    store.publish = publish  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, "monitor.serve.scheduler"):
        await run_until(scheduler, lambda: len(seen) >= 2)
    assert seen[:2] == [False, True]
    entry = store.current().vantage["nyc"]
    assert dict(entry.errors_total) == {("round", "internal_error"): 1}
    assert "round crashed" in caplog.text


async def test_every_round_is_logged_with_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    store = SnapshotStore(loaded().config)

    async def runner(config: Config, name: str) -> VantageRound:
        return ok_round(config, name)

    scheduler = RoundScheduler(loaded(), store, runner=runner)
    with caplog.at_level(logging.INFO, "monitor.rounds"):
        await run_until(scheduler, lambda: len(store.current().vantage) == 2)
    records = [r for r in caplog.records if r.name == "monitor.rounds"]
    fields = [r.fields for r in records]  # type: ignore[attr-defined]
    assert {f["vantage"] for f in fields} == {"nyc", "dub"}
    first = fields[0]
    assert first["event"] == "round"
    assert first["success"] is True
    assert first["paths"][0] == {
        "path": "dns", "state": "ok", "stable_state": "ok", "streak": 1,
        "served_region": "us-east-1", "expected_region": "us-east-1", "penalty_seconds": 0.0,
        "reason": None}
    assert "round finished" in records[0].getMessage()


async def test_reload_keeps_the_old_config_when_the_new_one_is_bad(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "routewatch.yaml"
    path.write_text(CONFIG_YAML)

    async def runner(config: Config, name: str) -> VantageRound:
        return ok_round(config, name)

    first = load_config(path)
    store = SnapshotStore(first.config)
    scheduler = RoundScheduler(first, store, reload=lambda: load_config(path), runner=runner)
    task = asyncio.create_task(scheduler.run(install_signals=False))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if len(store.current().vantage) == 2:
            break

    path.write_text(CONFIG_YAML.replace("interval_s: 1", "interval_s: 0"))
    with caplog.at_level(logging.ERROR, "monitor.serve.scheduler"):
        assert await scheduler.reload() is False
    assert "keeping the previous configuration" in caplog.text
    assert "serve.interval_s" in caplog.text
    assert scheduler.config.serve.interval_s == 1
    assert store.current().reload_successful is False

    path.write_text(CONFIG_YAML.replace("  nyc: {resolver: 127.0.0.53}\n",
                                        "  sin: {resolver: 127.0.0.53}\n"))
    assert await scheduler.reload() is True
    assert store.current().reload_successful is True
    assert "nyc" not in store.current().vantage
    assert scheduler._scheduler.get_job("nyc") is None
    for _ in range(200):
        await asyncio.sleep(0.05)
        if "sin" in store.current().vantage:
            break
    scheduler.request_stop()
    await task
    assert "sin" in store.current().vantage
    assert "nyc" not in store.current().vantage


async def test_stop_lets_the_round_in_flight_finish() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()
    finished: list[str] = []

    async def runner(config: Config, name: str) -> VantageRound:
        if name == "nyc":
            entered.set()
            await release.wait()
            finished.append(name)
        return ok_round(config, name)

    text = CONFIG_YAML.replace("round_deadline_s: 0.3", "round_deadline_s: 30")
    store = SnapshotStore(loaded(text).config)
    scheduler = RoundScheduler(loaded(text), store, runner=runner)
    task = asyncio.create_task(scheduler.run(install_signals=False))
    await asyncio.wait_for(entered.wait(), 30)
    scheduler.request_stop()
    await asyncio.sleep(0.1)
    assert not task.done()  # still waiting for nyc's round
    release.set()
    await asyncio.wait_for(task, 30)
    assert finished == ["nyc"]
    assert store.current().vantage["nyc"].result.success


async def test_a_second_stop_cancels_rounds_in_flight() -> None:
    entered = asyncio.Event()

    async def runner(config: Config, name: str) -> VantageRound:
        if name == "nyc":
            entered.set()
            await asyncio.sleep(3600)
        return ok_round(config, name)

    text = CONFIG_YAML.replace("round_deadline_s: 0.3", "round_deadline_s: 600")
    store = SnapshotStore(loaded(text).config)
    scheduler = RoundScheduler(loaded(text), store, runner=runner)
    task = asyncio.create_task(scheduler.run(install_signals=False))
    await asyncio.wait_for(entered.wait(), 30)
    scheduler.request_stop()
    scheduler.request_stop()
    await asyncio.wait_for(task, 30)
    assert "nyc" not in store.current().vantage


async def test_reload_reschedules_when_serve_settings_change(tmp_path: Path) -> None:
    path = tmp_path / "routewatch.yaml"
    path.write_text(CONFIG_YAML)

    async def runner(config: Config, name: str) -> VantageRound:
        return ok_round(config, name)

    first = load_config(path)
    store = SnapshotStore(first.config)
    scheduler = RoundScheduler(first, store, reload=lambda: load_config(path), runner=runner)
    task = asyncio.create_task(scheduler.run(install_signals=False))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if scheduler._scheduler.get_job("dub") is not None:
            break
    path.write_text(CONFIG_YAML.replace("interval_s: 1", "interval_s: 30").replace(
        "misfire_grace_s: 5", "misfire_grace_s: 7"))
    assert await scheduler.reload() is True
    jobs = {name: scheduler._scheduler.get_job(name) for name in ("nyc", "dub")}
    scheduler.request_stop()
    await task
    for job in jobs.values():
        assert job is not None
        assert job.trigger.interval.total_seconds() == 30
        assert job.misfire_grace_time == 7
        assert job.max_instances == 1
        assert job.coalesce is True
    assert store.current().space.interval_s == 30


def test_jitter_is_at_most_half_the_interval() -> None:
    def serve(interval: float, jitter: float) -> ServeSettings:
        return ServeSettings(interval_s=interval, jitter_s=jitter)

    assert effective_jitter(serve(1, 5)) == 0.5
    assert effective_jitter(serve(60, 5)) == 5
    assert effective_jitter(serve(10, 5)) == 5
    assert effective_jitter(serve(10, 0)) == 0


async def test_a_jitter_longer_than_the_interval_is_clamped_and_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    text = CONFIG_YAML.replace("jitter_s: 0", "jitter_s: 5")

    async def runner(config: Config, name: str) -> VantageRound:
        return ok_round(config, name)

    store = SnapshotStore(loaded(text).config)
    scheduler = RoundScheduler(loaded(text), store, runner=runner)
    with caplog.at_level(logging.INFO, "monitor.serve.scheduler"):
        task = asyncio.create_task(scheduler.run(install_signals=False))
        jobs = []
        for _ in range(200):
            await asyncio.sleep(0.02)
            jobs = [scheduler._scheduler.get_job(name) for name in ("nyc", "dub")]
            if all(jobs):
                break
        scheduler.request_stop()
        await task
    for job in jobs:
        assert job is not None
        assert job.trigger.jitter == 0.5
    messages = [r.getMessage() for r in caplog.records if r.name == "monitor.serve.scheduler"]
    clamped = [m for m in messages if "more than half the interval" in m]
    assert clamped == ["serve.jitter_s 5 s is more than half the interval (1 s): using 0.5 s, "
                       "so rounds stay about one interval apart"]
    assert any("every 1 s (jitter 0.5 s" in m for m in messages), messages


async def test_regional_vantage_points_are_not_probed_from_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    text = CONFIG_YAML.replace("dub: {resolver: 127.0.0.53}",
                               "dub: {resolver: 127.0.0.53, region: eu-west-1}")
    probed: Counter[str] = Counter()

    async def runner(config: Config, name: str) -> VantageRound:
        probed[name] += 1
        return ok_round(config, name)

    store = SnapshotStore(loaded(text).config)
    scheduler = RoundScheduler(loaded(text), store, runner=runner)
    await run_until(scheduler, lambda: probed["nyc"] >= 2)
    assert probed["dub"] == 0
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # on a machine in eu-west-1 it is local
    assert scheduler_module.probed_here(loaded(text).config) == ["nyc", "dub"]
