"""The serve scheduler: its job planning as pure functions of a given ``now`` (by table), and its
rounds, reload and stop with stand-in rounds, synchronised by events, never by sleeping."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rounds import vantage_round

from monitor.config import Config, LoadedConfig, ServeSettings, load_config, parse_config
from monitor.core.model import Path as RoutePath
from monitor.core.model import VantageRound
from monitor.metrics import SnapshotStore
from monitor.serve import rounds as rounds_module
from monitor.serve import scheduler as scheduler_module
from monitor.serve.plan import JobPlan, Replan, effective_jitter, plan_jobs, plan_reload
from monitor.serve.scheduler import RoundScheduler, job_arguments

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

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
HANG_GUARD_S = 60.0
"""Only a broken scheduler waits this long: every wait below ends on an event."""


def loaded(text: str = CONFIG_YAML) -> LoadedConfig:
    return parse_config(text, "test.yaml")


def ok_round(config: Config, name: str) -> VantageRound:
    return vantage_round(name, paths=(RoutePath.DNS, RoutePath.ORIGIN))


def serve(interval: float = 60, jitter: float = 0, misfire: float = 30) -> ServeSettings:
    return ServeSettings(interval_s=interval, jitter_s=jitter, misfire_grace_s=misfire)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def plan(name: str, first: float, interval: float = 60, jitter: float = 0,
         misfire: int = 30) -> JobPlan:
    return JobPlan(name, at(first), interval, jitter, misfire)


class Published:
    """Every round the store publishes, and an event per condition a test waits for."""

    def __init__(self, store: SnapshotStore) -> None:
        self.rounds: list[VantageRound] = []
        self._waiting: list[tuple[int, str | None, asyncio.Event]] = []
        original = store.publish

        def publish(result: VantageRound) -> object:
            entry = original(result)
            self.rounds.append(result)
            for count, name, event in self._waiting:
                if self.count(name) >= count:
                    event.set()
            return entry

        store.publish = publish  # type: ignore[assignment,method-assign]

    def count(self, name: str | None = None) -> int:
        return sum(1 for r in self.rounds if name is None or r.vantage == name)

    async def wait(self, count: int, name: str | None = None) -> None:
        """Until ``count`` rounds (of ``name``) are published."""
        event = asyncio.Event()
        if self.count(name) >= count:
            return
        self._waiting.append((count, name, event))
        await asyncio.wait_for(event.wait(), HANG_GUARD_S)


def scheduler_for(text: str = CONFIG_YAML, runner: object = None,
                  **options: object) -> tuple[RoundScheduler, SnapshotStore, Published]:
    config = loaded(text)
    store = SnapshotStore(config.config)
    published = Published(store)
    scheduler = RoundScheduler(config, store, runner=runner or ok_round_async,  # type: ignore[arg-type]
                               **options)  # type: ignore[arg-type]
    return scheduler, store, published


async def ok_round_async(config: Config, name: str) -> VantageRound:
    return ok_round(config, name)


# --- planning: pure, by table --------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "names", "expected"), [
    # the first rounds run at start, then spread out by interval / count, at most 1 s apart
    (serve(60), ["nyc", "dub", "sin"], [plan("nyc", 0), plan("dub", 1), plan("sin", 2)]),
    (serve(1), ["nyc", "dub"], [plan("nyc", 0, 1, 0), plan("dub", 0.5, 1, 0)]),
    (serve(2, misfire=5), ["nyc", "dub", "sin", "fra"],
     [plan("nyc", 0, 2, misfire=5), plan("dub", 0.5, 2, misfire=5),
      plan("sin", 1.0, 2, misfire=5), plan("fra", 1.5, 2, misfire=5)]),
    # jitter: kept when at most half the interval, clamped to half otherwise
    (serve(60, jitter=5), ["nyc"], [plan("nyc", 0, 60, 5)]),
    (serve(1, jitter=5), ["nyc"], [plan("nyc", 0, 1, 0.5)]),
    # misfire grace: whole seconds, at least one
    (serve(60, misfire=0), ["nyc"], [plan("nyc", 0, misfire=1)]),
    (serve(60, misfire=7.4), ["nyc"], [plan("nyc", 0, misfire=7)]),
    (serve(60), [], []),
])
def test_jobs_at_start(settings: ServeSettings, names: list[str],
                       expected: list[JobPlan]) -> None:
    assert list(plan_jobs(settings, names, NOW)) == expected


def test_a_job_runs_one_round_at_a_time_and_coalesces_a_backlog() -> None:
    (job,) = plan_jobs(serve(60), ["nyc"], NOW)
    assert (job.max_instances, job.coalesce) == (1, True)


@pytest.mark.parametrize(("old", "old_names", "new", "new_names", "expected"), [
    # nothing changed
    (serve(60), ["nyc", "dub"], serve(60), ["nyc", "dub"], Replan()),
    # a vantage point removed, another added: the new one's first round runs now
    (serve(60), ["nyc", "dub"], serve(60), ["dub", "sin"],
     Replan(removed=("nyc",), added=(plan("sin", 0),))),
    # new serve settings: the kept vantage points run again one interval later, spread out
    (serve(60), ["nyc", "dub"], serve(30, misfire=7), ["nyc", "dub"],
     Replan(rescheduled=(plan("nyc", 30, 30, misfire=7), plan("dub", 31, 30, misfire=7)))),
    (serve(60), ["nyc", "dub"], serve(30, jitter=20), ["dub", "sin"],
     Replan(removed=("nyc",), added=(plan("sin", 0, 30, 15),),
            rescheduled=(plan("dub", 30, 30, 15),))),
])
def test_jobs_after_a_reload(old: ServeSettings, old_names: list[str], new: ServeSettings,
                             new_names: list[str], expected: Replan) -> None:
    assert plan_reload(old, old_names, new, new_names, NOW) == expected


def test_jitter_is_at_most_half_the_interval() -> None:
    assert effective_jitter(serve(1, 5)) == 0.5
    assert effective_jitter(serve(60, 5)) == 5
    assert effective_jitter(serve(10, 5)) == 5
    assert effective_jitter(serve(10, 0)) == 0


def test_a_plan_becomes_the_job_it_describes() -> None:
    job = plan("nyc", 0, 60, 5, misfire=7)
    arguments = job_arguments(job)
    assert arguments["next_run_time"] == NOW  # the first round: at the planned time, no jitter
    assert (arguments["max_instances"], arguments["coalesce"],
            arguments["misfire_grace_time"]) == (1, True, 7)
    trigger = arguments["trigger"]
    assert trigger.interval == timedelta(seconds=60)
    assert trigger.jitter == 5
    no_jitter = job_arguments(plan("nyc", 0, 60))["trigger"]
    assert no_jitter.jitter is None
    assert no_jitter.get_next_fire_time(NOW, NOW) == at(60)


# --- one round: bounded, published, logged, exported ---------------------------------------------


async def test_a_stuck_round_ends_at_the_deadline_as_failed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rounds_module, "DEADLINE_MARGIN_S", 0.05)

    async def runner(config: Config, name: str) -> VantageRound:
        if name == "dub":
            await asyncio.Event().wait()  # blackholed: only the deadline ends it
        return ok_round(config, name)

    scheduler, store, _ = scheduler_for(runner=runner)
    entry = await scheduler.run_vantage("dub")
    assert entry is not None
    assert not entry.result.success
    assert [(e.path, e.reason) for e in entry.result.errors] == [("round", "deadline")]
    assert (await scheduler.run_vantage("nyc")) is not None
    assert store.current().vantage[("default", "nyc")].result.success


async def test_a_crashing_round_is_published_as_failed_and_the_next_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: Counter[str] = Counter()

    async def runner(config: Config, name: str) -> VantageRound:
        calls[name] += 1
        if calls[name] == 1:
            raise RuntimeError("probe bug")
        return ok_round(config, name)

    scheduler, store, published = scheduler_for(runner=runner)
    with caplog.at_level(logging.ERROR, "monitor.serve"):
        await scheduler.run_vantage("nyc")
        await scheduler.run_vantage("nyc")
    assert [r.success for r in published.rounds] == [False, True]
    entry = store.current().vantage[("default", "nyc")]
    assert dict(entry.errors_total) == {("round", "internal_error"): 1}
    assert "round crashed" in caplog.text


async def test_every_round_is_logged_with_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    scheduler, _, _ = scheduler_for()
    with caplog.at_level(logging.INFO, "monitor.rounds"):
        await scheduler.run_vantage("nyc")
    (record,) = [r for r in caplog.records if r.name == "monitor.rounds"]
    fields = record.fields  # type: ignore[attr-defined]
    assert (fields["event"], fields["vantage"], fields["success"]) == ("round", "nyc", True)
    assert fields["paths"][0] == {
        "path": "dns", "state": "ok", "stable_state": "ok", "streak": 1,
        "served_region": "us-east-1", "expected_region": "us-east-1", "penalty_seconds": 0.0,
        "reason": None}
    assert "round finished" in record.getMessage()


async def test_a_failing_exporter_stops_neither_the_round_nor_the_others(
        caplog: pytest.LogCaptureFixture) -> None:
    exported: list[str] = []

    def broken(result: VantageRound) -> None:
        raise RuntimeError("cloudwatch is down")

    scheduler, _, published = scheduler_for(
        exporters=[broken, lambda result: exported.append(result.vantage)])
    with caplog.at_level(logging.ERROR, "monitor.serve"):
        await scheduler.run_vantage("nyc")
    assert published.count("nyc") == 1
    assert exported == ["nyc"]
    assert "exporter" in caplog.text


# --- the scheduler running -----------------------------------------------------------------------


async def test_the_first_rounds_run_at_start_not_one_interval_later() -> None:
    text = CONFIG_YAML.replace("interval_s: 1", "interval_s: 3600")
    scheduler, _, published = scheduler_for(text)
    task = asyncio.create_task(scheduler.run(install_signals=False))
    try:
        await published.wait(1, "nyc")
        await published.wait(1, "dub")
    finally:
        scheduler.request_stop()
        await task
    assert {p.vantage for p in scheduler.plans.values()} == {"nyc", "dub"}


async def test_reload_keeps_the_old_config_when_the_new_one_is_bad(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "routewatch.yaml"
    path.write_text(CONFIG_YAML)
    scheduler, store, published = scheduler_for(reload=lambda: load_config(path))
    task = asyncio.create_task(scheduler.run(install_signals=False))
    try:
        await published.wait(1, "dub")
        path.write_text(CONFIG_YAML.replace("interval_s: 1", "interval_s: 0"))
        with caplog.at_level(logging.ERROR, "monitor.serve"):
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
        assert set(scheduler.plans) == {"dub", "sin"}
        await published.wait(1, "sin")  # an added vantage point's first round runs at once
    finally:
        scheduler.request_stop()
        await task
    assert "nyc" not in store.current().vantage


async def test_reload_reschedules_when_serve_settings_change(tmp_path: Path) -> None:
    path = tmp_path / "routewatch.yaml"
    path.write_text(CONFIG_YAML)
    scheduler, store, published = scheduler_for(reload=lambda: load_config(path))
    task = asyncio.create_task(scheduler.run(install_signals=False))
    try:
        await published.wait(1, "dub")
        path.write_text(CONFIG_YAML.replace("interval_s: 1", "interval_s: 30").replace(
            "misfire_grace_s: 5", "misfire_grace_s: 7"))
        assert await scheduler.reload() is True
    finally:
        scheduler.request_stop()
        await task
    for job in scheduler.plans.values():
        assert (job.interval_s, job.misfire_grace_s, job.max_instances) == (30, 7, 1)
    assert store.current().space.interval_s == 30


class Said(logging.Handler):
    """Sets an event when a record with ``text`` in its message is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


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
    scheduler, store, _ = scheduler_for(text, runner)
    stopping = Said("stopping: no new rounds; 1 in flight")
    logger = logging.getLogger(scheduler_module.__name__)
    logger.addHandler(stopping)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        task = asyncio.create_task(scheduler.run(install_signals=False))
        await asyncio.wait_for(entered.wait(), HANG_GUARD_S)
        scheduler.request_stop()
        await asyncio.wait_for(stopping.event.wait(), HANG_GUARD_S)  # draining, nyc in flight
        assert not task.done()
        release.set()
        await asyncio.wait_for(task, HANG_GUARD_S)
    finally:
        logger.removeHandler(stopping)
        logger.setLevel(previous)
    assert finished == ["nyc"]
    assert store.current().vantage[("default", "nyc")].result.success


async def test_a_second_stop_cancels_rounds_in_flight() -> None:
    entered = asyncio.Event()

    async def runner(config: Config, name: str) -> VantageRound:
        if name == "nyc":
            entered.set()
            await asyncio.Event().wait()
        return ok_round(config, name)

    text = CONFIG_YAML.replace("round_deadline_s: 0.3", "round_deadline_s: 600")
    scheduler, store, _ = scheduler_for(text, runner)
    task = asyncio.create_task(scheduler.run(install_signals=False))
    await asyncio.wait_for(entered.wait(), HANG_GUARD_S)
    scheduler.request_stop()
    scheduler.request_stop()
    await asyncio.wait_for(task, HANG_GUARD_S)
    assert "nyc" not in store.current().vantage


async def test_a_jitter_longer_than_the_interval_is_clamped_and_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    # a jitter other than the default (5 s) is the user's choice: clamping it is a warning (the
    # types keep no record of which keys a file wrote, so a jitter_s: 5 written out is the default)
    scheduler, _, _ = scheduler_for(CONFIG_YAML.replace("jitter_s: 0", "jitter_s: 4"))
    scheduler.request_stop()  # run() schedules, says what it does, and stops at once
    with caplog.at_level(logging.INFO, "monitor.serve.scheduler"):
        await scheduler.run(install_signals=False)
    assert {job.jitter_s for job in scheduler.plans.values()} == {0.5}
    messages = [r.getMessage() for r in caplog.records if r.name == "monitor.serve.scheduler"]
    clamped = [r for r in caplog.records if "more than half the interval" in r.getMessage()]
    assert [r.getMessage() for r in clamped] == [
        "serve.jitter_s 4 s is more than half the interval (1 s): using 0.5 s, so rounds stay "
        "about one interval apart"]
    assert clamped[0].levelno == logging.WARNING
    assert any("every 1 s (jitter 0.5 s" in m for m in messages), messages
    caplog.clear()
    default, _, _ = scheduler_for(CONFIG_YAML.replace(" jitter_s: 0,", ""))
    default.request_stop()
    with caplog.at_level(logging.INFO, "monitor.serve.scheduler"):
        await default.run(install_signals=False)
    said = [r for r in caplog.records if "more than half the interval" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO]  # the default's clamp is no warning


async def test_regional_vantage_points_are_not_probed_from_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    text = CONFIG_YAML.replace("dub: {resolver: 127.0.0.53}",
                               "dub: {resolver: 127.0.0.53, region: eu-west-1}")
    scheduler, _, _ = scheduler_for(text)
    scheduler.request_stop()
    await scheduler.run(install_signals=False)
    assert set(scheduler.plans) == {"nyc"}
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # on a machine in eu-west-1 it is local
    assert scheduler_module.probed_here(loaded(text).config) == ["nyc", "dub"]


def test_a_round_with_an_unknown_path_is_incomplete_not_failed(
        caplog: pytest.LogCaptureFixture) -> None:
    """Every path was judged but one is unknown: the log line says the round is incomplete and
    which path, not that the round (the probe) failed."""
    from rounds import path_result, vantage_round, verdict

    from monitor.core.model import Path, RoutingState
    from monitor.serve.round_log import log_round, round_message

    unknown = path_result(Path.ORIGIN, verdict(RoutingState.UNKNOWN, "us-east-1", "eu-west-1",
                                               None, "evidence_conflict", "header says x"))
    message = round_message(vantage_round("dub", paths=(Path.DNS, unknown), success=False),
                            None)
    assert message.startswith("dub: round incomplete in ")
    assert "origin unknown" in message
    assert "failed" not in message
    with caplog.at_level(logging.INFO, "monitor.rounds"):
        log_round(vantage_round("dub", paths=(Path.DNS, unknown), success=False), None)
        log_round(vantage_round("nyc"), None)
    assert [r.levelno for r in caplog.records if r.name == "monitor.rounds"] == [
        logging.WARNING, logging.INFO]
