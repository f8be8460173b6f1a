"""Measurement trust, deterministically: stalls are injected (a fake source, or a loop blocked with
time.sleep inside a sample's span), never read off the machine's timing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from monitor.config import Config, load_config
from monitor.core.model import Path as RoutePath
from monitor.core.model import PathResult, RegionLatency, RoutingState, RoutingVerdict
from monitor.domain.reasons import Reason
from monitor.lab._proxy import LatenessLog
from monitor.round.baseline import Trust, summarise_region
from monitor.round.lag import DISTURBED_S, LagMonitor, Span, Stall, StallLog, disturbance
from monitor.round.pacing import MIN_GAP_S, Pacer, plan_round
from monitor.round.run import Preparation, RoundContext, distrust
from probes.http import HttpEvidence, HttpTarget

CONFIG = """
service: {origin_name: app.example.test}
regions:
  us-east-1: {addresses: [127.20.1.1]}
  eu-west-1: {addresses: [127.20.2.1]}
vantage_points:
  nyc: {resolver: 127.0.0.53, region: us-east-1}
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "routewatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path).config


def source(*stalls: tuple[float, float]) -> StallLog:
    log = StallLog()
    for due, ran in stalls:
        log.add(Stall(due, ran))
    return log


def evidence_of(seconds: float) -> HttpEvidence:
    target = HttpTarget(host="app.example.test", address="127.20.1.1", port=443, path="/")
    return HttpEvidence(target=target, status=200, phases={"processing": seconds},
                        total_seconds=seconds)


def test_disturbance_is_the_stall_in_progress_when_the_phase_ended() -> None:
    span = Span(10.0, 10.1)
    assert disturbance(span, [source()]) == 0.0
    assert disturbance(span, [source((9.0, 9.5), (10.2, 10.3))]) == 0.0  # outside the span
    # a stall during the wait, over before the reply came: it delayed nothing read
    assert disturbance(span, [source((10.01, 10.05))]) == 0.0
    # the reply arrived during a stall: read when it ended (lab or loop, the longest counts)
    assert disturbance(span, [source((10.05, 10.1))]) == pytest.approx(0.05)
    assert disturbance(span, [source((10.08, 10.1005)), source((10.06, 10.12))]) \
        == pytest.approx(0.04)
    assert disturbance(span, [source((10.05, 10.0995))]) == pytest.approx(0.0495)  # margin


class _Lab(StallLog):
    remote = True


def test_a_stall_of_the_lab_counts_when_the_lab_had_to_act() -> None:
    span = Span(10.0, 10.1)
    lab = _Lab()
    lab.add(Stall(10.01, 10.05))  # stalled when the request was due onward: the reply came late
    assert disturbance(span, [lab]) == pytest.approx(0.04)
    assert disturbance(span, [source((10.01, 10.05))]) == 0.0  # our loop's: harmless then
    waiting = _Lab()
    waiting.add(Stall(10.01, 10.03))  # while the request sat in the delay queue: harmless
    assert disturbance(span, [waiting]) == 0.0
    early = _Lab()
    early.add(Stall(9.0, 9.99))
    assert disturbance(span, [early]) == 0.0


def test_disturbed_samples_are_left_out_and_the_rest_judged(config: Config) -> None:
    samples = [evidence_of(0.120), evidence_of(0.010), evidence_of(0.011)]
    row = summarise_region("us-east-1", samples, config, trust=Trust((0.2, 0.0, 0.0)))
    assert row.latency_seconds == pytest.approx(0.010)
    assert row.samples_seconds == (0.010, 0.011)
    assert row.disturbed_samples == 1
    assert row.reason is None
    # the disturbed sample was the smallest: it is still not used
    row = summarise_region("us-east-1", [evidence_of(0.004), evidence_of(0.010)], config,
                           trust=Trust((0.05, 0.0)))
    assert row.latency_seconds == pytest.approx(0.010)


def test_too_few_clean_samples_is_measurement_disturbed_not_a_latency(config: Config) -> None:
    samples = [evidence_of(0.120), evidence_of(0.130)]
    row = summarise_region("us-east-1", samples, config, trust=Trust((0.1, DISTURBED_S * 2)))
    assert row.latency_seconds is None
    assert row.healthy
    assert row.reason is Reason.MEASUREMENT_DISTURBED
    assert row.disturbed_samples == 2
    assert "2 of 2 samples" in (row.message or "")


def test_a_verdict_resting_on_a_disturbed_row_becomes_unknown() -> None:
    misrouted = PathResult(RoutePath.ORIGIN, RoutingVerdict(
        RoutingState.MISROUTED, "us-east-1", "eu-west-1", 0.06, Reason.SLOWER_REGION, "x"))
    already = PathResult(RoutePath.DNS, RoutingVerdict(
        RoutingState.UNKNOWN, None, None, None, Reason.DNS_TIMEOUT, "y"))
    clean = (RegionLatency("us-east-1", 0.07, True), RegionLatency("eu-west-1", 0.006, True))
    assert distrust((misrouted, already), clean) == (misrouted, already)
    disturbed = (clean[0], RegionLatency("eu-west-1", None, True, (),
                                         Reason.MEASUREMENT_DISTURBED, "m", 3))
    judged, kept = distrust((misrouted, already), disturbed)
    assert judged.verdict.state is RoutingState.UNKNOWN
    assert judged.verdict.reason is Reason.MEASUREMENT_DISTURBED
    assert judged.verdict.served_region == "us-east-1"
    assert judged.verdict.penalty_seconds is None
    assert "eu-west-1" in judged.verdict.detail
    assert kept == already  # an unknown keeps its own reason


def test_a_loop_blocked_inside_a_sample_span_shows_as_disturbance() -> None:
    """The injected stall: time.sleep blocks the loop inside the span; the monitor's wake-up,
    due within one tick of the span's start, runs only after it."""
    stall_s = 0.05

    async def scenario() -> tuple[float, float]:
        monitor = LagMonitor()
        monitor.acquire()
        await asyncio.sleep(0)  # the monitor task schedules its first wake-up
        loop = asyncio.get_running_loop()
        start = loop.time()
        time.sleep(stall_s)  # noqa: ASYNC251 -- the injected stall: it must block the loop
        await asyncio.sleep(0)
        end = loop.time()
        for _ in range(3):  # let the late wake-up run and be recorded
            await asyncio.sleep(0)
        monitor.release()
        quiet_start = loop.time()
        return disturbance(Span(start, end), [monitor]), quiet_start

    seen, _ = asyncio.run(scenario())
    assert seen > DISTURBED_S
    assert seen >= stall_s - 2 * LagMonitor().tick_s


def test_the_lab_notes_only_late_deliveries() -> None:
    log = LatenessLog()
    log.note(1.0, 1.0001)  # on time
    log.note(2.0, 2.05)
    assert log.since(0.0) == [(2.0, 2.05)]
    assert log.since(3.0) == []


def test_the_plan_fits_the_deadline_or_says_it_cannot() -> None:
    easy = plan_round(30, 0.010, 15.0)
    assert easy.fits
    assert easy.gap_seconds == 0.010
    big = plan_round(1920, 0.010, 15.0)  # 20 regions × 3 samples + 4, from 30 vantage points
    assert big.fits
    assert big.gap_seconds < 0.010
    assert big.planned_seconds <= 15.0 * 0.8
    impossible = plan_round(100_000, 0.010, 15.0)
    assert not impossible.fits
    assert impossible.gap_seconds == MIN_GAP_S


def test_the_pacer_holds_starts_while_too_many_checks_are_in_flight() -> None:
    async def scenario() -> list[str]:
        pacer = Pacer(0.0, max_in_flight=1)
        events: list[str] = []
        release = asyncio.Event()

        async def check(name: str) -> None:
            async with pacer.check():
                events.append(f"start {name}")
                if name == "a":
                    await release.wait()
                events.append(f"end {name}")

        first = asyncio.create_task(check("a"))
        second = asyncio.create_task(check("b"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert events == ["start a"]  # b waits for a slot
        release.set()
        await asyncio.gather(first, second)
        return events

    assert asyncio.run(scenario()) == ["start a", "end a", "start b", "end b"]


def test_nothing_that_blocks_runs_per_round(config: Config) -> None:
    calls = {"warm": 0, "collect": 0, "ca": 0}

    def count(name: str) -> None:
        calls[name] += 1

    def load_ca(ca: str | None) -> object:
        count("ca")
        return object()

    prepared = Preparation(warm=lambda: count("warm"), collect=lambda: count("collect"),
                           load_ca=load_ca)  # type: ignore[arg-type]

    async def two_rounds() -> None:
        RoundContext.build(config, prepared=prepared)
        RoundContext.build(config, prepared=prepared)

    asyncio.run(two_rounds())
    assert calls == {"warm": 1, "collect": 1, "ca": 1}


def test_a_changed_ca_bundle_is_loaded_again(config: Config, tmp_path: Path) -> None:
    loaded: list[str | None] = []
    def load_ca(ca: str | None) -> object:
        loaded.append(ca)
        return object()

    prepared = Preparation(warm=lambda: None, collect=lambda: 0,
                           load_ca=load_ca)  # type: ignore[arg-type]
    bundle = tmp_path / "ca.pem"
    bundle.write_text("one", encoding="utf-8")
    prepared.ssl_context(str(bundle))
    prepared.ssl_context(str(bundle))
    bundle.write_text("two, longer", encoding="utf-8")  # a SIGHUP reload after an edit
    prepared.ssl_context(str(bundle))
    assert loaded == [str(bundle), str(bundle)]


class _AlwaysLate(LagMonitor):
    def recent_max(self, window_s: float) -> float:
        return 1.0  # the loop is always running late: the pacer backs off all it can


def test_the_pacer_backs_off_on_lag_only_into_the_plans_slack() -> None:
    pacer = Pacer(0.01, lag=_AlwaysLate(), checks=10, budget_s=0.2)
    now, gaps = 0.0, []
    for _ in range(10):
        pacer._adjust()
        gap = pacer.next_gap(now)
        gaps.append(gap)
        now += gap
    assert pacer.backoff > 1.0
    assert min(gaps) >= 0.01  # never narrower than planned
    assert max(gaps) > 0.01  # wider while there is slack
    assert now <= 0.2 + 0.01  # and the last start still fits the plan
    unplanned = Pacer(0.01, lag=_AlwaysLate())
    unplanned._adjust()
    assert unplanned.next_gap(0.0) == pytest.approx(0.02)


def test_a_disturbed_row_is_bounded_by_its_disturbance(config: Config) -> None:
    """Judged twice (as read, and as fast as the stalls allow): a verdict both agree on stands."""
    from monitor.core.evidence import VantageEvidence
    from monitor.round.run import _bounded

    evidence = VantageEvidence()
    evidence.baseline["eu-west-1"] = [evidence_of(0.120), evidence_of(0.130)]
    trusts = {"us-east-1": Trust(), "eu-west-1": Trust((0.1, 0.05))}
    rows = (RegionLatency("us-east-1", 0.008, True, (0.008,)),
            summarise_region("eu-west-1", evidence.baseline["eu-west-1"], config,
                             trust=trusts["eu-west-1"]))
    assert rows[1].reason is Reason.MEASUREMENT_DISTURBED
    as_read = _bounded(rows, evidence, config, trusts, lower=False)
    floor = _bounded(rows, evidence, config, trusts, lower=True)
    assert as_read[0] == floor[0] == rows[0]
    assert as_read[1].latency_seconds == pytest.approx(0.120)
    assert floor[1].latency_seconds == pytest.approx(0.020)  # 0.120 − 0.1
    assert floor[1].reason is None
