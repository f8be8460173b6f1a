"""What keeps a 20 × 30 round cheap: the stall index answers exactly what a scan over every
stall answers, the lab's lateness is fetched incrementally, and the lab's cost figures add up."""

from __future__ import annotations

import random

import pytest

from monitor.lab import LabStats
from monitor.lab._proxy import LATENESS_BUCKET_S, LatenessLog
from monitor.round.lag import END_MARGIN_S, Span, Stall, StallIndex, StallLog, max_stall


class _Lab(StallLog):
    remote = True


def _reference(span: Span, stalls: list[tuple[float, float]], moments: tuple[float, ...]) -> float:
    """The definition, by scanning every stall."""
    return max((min(ran, span.end) - max(due, span.start) for due, ran in stalls
                if any(due - END_MARGIN_S <= m <= ran + END_MARGIN_S for m in moments)),
               default=0.0) if stalls else 0.0


@pytest.mark.parametrize("seed", range(20))
def test_the_stall_index_answers_what_a_scan_of_every_stall_answers(seed: int) -> None:
    rng = random.Random(seed)
    local, lab = StallLog(), _Lab()
    local_stalls: list[tuple[float, float]] = []
    lab_stalls: list[tuple[float, float]] = []
    now = 0.0
    for _ in range(400):  # many short stalls, some long ones, nested and overlapping
        now += rng.expovariate(200)
        due = now - rng.choice([rng.uniform(0.0005, 0.004), rng.uniform(0.01, 0.3)])
        local.add(Stall(due, now))
        local_stalls.append((due, now))
        sent = now + rng.uniform(0, 0.001)
        late_due = sent - rng.choice([rng.uniform(0.0005, 0.003), rng.uniform(0.005, 0.15)])
        lab.add(Stall(late_due, sent))
        lab_stalls.append((late_due, sent))
    index = StallIndex([local, lab])
    for _ in range(300):
        start = rng.uniform(-0.1, now)
        span = Span(start, start + rng.uniform(0.001, 0.4))
        middle = (span.start + span.end) / 2
        expected = max(_reference(span, local_stalls, (span.end,)),
                       _reference(span, lab_stalls, (span.start, middle, span.end)))
        assert index.disturbance(span) == pytest.approx(expected, abs=1e-12)


class _Growing:
    """A remote source whose stall list grows in place (as the lab's does)."""

    remote = True

    def __init__(self) -> None:
        self.late: list[tuple[float, float]] = []

    async def collect(self) -> None:
        return None

    def stalls(self) -> list[tuple[float, float]]:
        return self.late


@pytest.mark.parametrize("seed", range(10))
def test_an_index_extended_as_stalls_come_answers_as_one_built_at_once(seed: int) -> None:
    rng = random.Random(seed)
    lab, local = _Growing(), StallLog()
    shuffled = StallLog()  # logged out of the order they ended: still exact
    now = 0.0
    for _ in range(30):
        for _ in range(rng.randrange(1, 30)):
            now += rng.expovariate(300)
            lab.late.append((now - rng.uniform(0.0005, 0.08), now))
            local.add(Stall(now - rng.uniform(0.0005, 0.02), now + rng.uniform(0, 0.001)))
        for _ in range(5):
            start = rng.uniform(0, now)
            span = Span(start, start + rng.uniform(0.001, 0.3))
            middle = (span.start + span.end) / 2
            expected = max(
                _reference(span, list(lab.late), (span.start, middle, span.end)),
                _reference(span, list(local.stalls()), (span.end,)))
            assert StallIndex([lab, local]).disturbance(span) == pytest.approx(expected)
    stalls = list(local.stalls())
    rng.shuffle(stalls)
    for stall in stalls:
        shuffled.add(stall)
    span = Span(now / 2, now / 2 + 0.2)
    assert StallIndex([shuffled]).disturbance(span) == pytest.approx(
        StallIndex([local]).disturbance(span))


def test_the_stall_index_sees_stalls_added_since_it_was_last_built() -> None:
    log = StallLog()
    log.add(Stall(1.0, 1.01))
    span = Span(1.05, 1.1)
    assert StallIndex([log]).disturbance(span) == 0.0
    log.add(Stall(1.08, 1.1))
    assert StallIndex([log]).disturbance(span) == pytest.approx(0.02)


def test_the_longest_stall_ended_within_a_window() -> None:
    log = StallLog()
    for due, ran in ((1.0, 1.2), (2.0, 2.01), (2.5, 2.6), (3.0, 3.001)):
        log.add(Stall(due, ran))
    assert max_stall([log], 1.5, 2.9) == pytest.approx(0.1)
    assert max_stall([log], 3.5, 4.0) == 0.0
    lab = _Lab()
    lab.add(Stall(2.0, 2.3))
    assert max_stall([log, lab], 1.5, 2.9) == pytest.approx(0.3)


def test_the_lab_lateness_is_read_from_a_cursor() -> None:
    log = LatenessLog()
    log.note(1.0, 1.0001)  # on time: counted in the histogram only
    log.note(2.0, 2.05)
    cursor = log.recorded
    assert log.after(0) == [(2.0, 2.05)]
    assert log.after(cursor) == []
    log.note(3.0, 3.002)
    assert log.after(cursor) == [(3.0, 3.002)]
    assert log.recorded == cursor + 1
    assert sum(log.histogram) == 3


def test_lab_stats_give_an_intervals_cost_and_lateness_quantiles() -> None:
    bucket = LATENESS_BUCKET_S
    earlier = LabStats(1.0, bucket, (5, 0, 0, 0))
    later = LabStats(1.5, bucket, (95, 3, 1, 1))
    interval = later.since(earlier)
    assert interval.cpu_seconds == pytest.approx(0.5)
    assert interval.deliveries == 95
    assert interval.lateness_quantile(0.5) == pytest.approx(bucket)
    assert interval.lateness_quantile(0.99) == pytest.approx(4 * bucket)
    assert LabStats(0.0, bucket, (0, 0)).lateness_quantile(0.5) is None
