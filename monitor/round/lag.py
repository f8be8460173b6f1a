"""Measurement trust: how late the event loop (and, in the lab, the lab) ran while samples were in
flight.

A sample's timed phase (request sent → first byte) is a span of loop time. Anything that keeps the
loop from running when the reply arrives (a CPU-hog process taking the core, a blocking call, a
garbage collection, our own TLS work) adds to what the sample reads until it ends, and nothing in
the sample itself shows it. :class:`LagMonitor` is a task
that asks to wake every :data:`TICK_S` and records every wake-up later than :data:`RECORD_S` as a
*stall* (due → ran, monotonic seconds). A sample's *disturbance* is how much of its phase the
stall in progress at the phase's end covers (:func:`disturbance`), over every :class:`LagSource`
of the round (the loop's own monitor; in the lab, also
the lab's lateness in delivering delayed bytes). A sample disturbed by more than
:data:`DISTURBED_S` is not used; a region with fewer than :data:`MIN_CLEAN_SAMPLES` clean samples
is not judged on timing (``measurement_disturbed``).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple, Protocol
from weakref import WeakKeyDictionary

from probes.records import record

__all__ = [
    "DISTURBED_S",
    "END_MARGIN_S",
    "MIN_CLEAN_SAMPLES",
    "RECORD_S",
    "TICK_S",
    "LagMonitor",
    "LagSource",
    "Span",
    "Stall",
    "StallIndex",
    "StallLog",
    "disturbance",
    "shared_lag_monitor",
]

TICK_S = 0.002
"""How often the lag monitor asks to wake (a stall shorter than this may go unseen)."""
RECORD_S = 0.0005
"""A wake-up later than this is recorded as a stall (below it: ordinary scheduling noise)."""
DISTURBED_S = 0.003
"""A sample whose span stalls cover for longer than this is not trusted (the lab's accuracy
bound is 3 ms + 10 %)."""
MIN_CLEAN_SAMPLES = 1
"""A region needs this many clean samples to be judged on timing. The estimate is the minimum,
and noise only ever adds time, so one clean sample is an honest upper bound."""
END_MARGIN_S = 0.002
"""How far before a phase's end a stall may end and still count as in progress at it."""
_KEEP = 20_000  # stalls kept per log (a bounded memory; the oldest go first)


class Stall(NamedTuple):
    """The loop (or the lab) should have run at ``due`` and ran at ``ran`` (monotonic seconds:
    one clock for every process of the machine, so the lab's stalls line up with ours)."""

    due: float
    ran: float

    @property
    def seconds(self) -> float:
        return self.ran - self.due


@record
class Span:
    """One sample's span of loop time (monotonic seconds)."""

    start: float
    end: float


class LagSource(Protocol):
    """Something that knows when measurements were disturbed (see the module docstring).
    ``remote``: a stall of the far end (the lab), which delays a sample whenever it falls inside
    the sample's phase, not only at its end."""

    @property
    def remote(self) -> bool: ...

    async def collect(self) -> None:
        """Fetch what happened so far (before judging); a no-op for in-process sources."""

    def stalls(self) -> Iterable[tuple[float, float]]:
        """Every stall known, as (due, ran) in monotonic seconds."""
        ...


class StallLog:
    """A bounded record of stalls, in the order they ended."""

    remote = False

    def __init__(self) -> None:
        self._stalls: deque[Stall] = deque(maxlen=_KEEP)
        self.staircase = _Staircase()  # kept up to date as stalls come, for StallIndex

    def add(self, stall: Stall) -> None:
        self._stalls.append(stall)
        if not self.staircase.extend((stall,)):  # logged out of order: build it when asked
            self.staircase = _Staircase.of(self._stalls)
        self.staircase.bound(_KEEP)

    def stalls(self) -> Iterable[Stall]:
        return tuple(self._stalls)

    def longest_between(self, start: float, end: float) -> float:
        """The longest stall that ended within [start, end] (newest first: they are logged
        in the order they ended)."""
        worst = 0.0
        for due, ran in reversed(self._stalls):  # bounded by _KEEP
            if ran < start:
                break
            if ran <= end:
                worst = max(worst, ran - due)
        return worst

    async def collect(self) -> None:
        return None


class StallIndex:
    """Every stall of some sources, sorted by when it ended, for many :meth:`disturbance` queries
    (a 20 × 30 round asks ~1,800 times over ~20,000 stalls: a scan each time would be a stall)."""

    def __init__(self, sources: Iterable[LagSource]) -> None:
        sources = list(sources)
        self._local = _Sorted(s for s in sources if not s.remote)
        self._remote = _Sorted(s for s in sources if s.remote)

    def disturbance(self, span: Span) -> float:
        """How much of ``span`` (a sample's timed phase) one stall covers, at most, counting only
        stalls in progress at a moment the sample needed the stalled party to act.

        Our own loop had to act as the phase ended (read the reply): a stall that ended before
        the reply arrived delayed nothing the phase reads; one the reply arrived during delayed
        its reading until it ended. The lab (a ``remote`` source) had to act as the request
        arrived, at its middle (pass the request on, answer it) and as it ended (send the
        reply); between those the sample's bytes wait in the lab's delay queue, where a stall
        does not touch them. Moments are matched within :data:`END_MARGIN_S` (a late wake-up
        and the work it held up run in the same loop iteration, in either order)."""
        local = self._local.covering(span, (span.end,))
        middle = (span.start + span.end) / 2
        return max(local, self._remote.covering(span, (span.start, middle, span.end)))


class _Sorted:
    """Stalls as a staircase: a stall lying within another (starting no earlier, ending no
    later) is dropped, since whatever moment it is in progress at, the one around it is too,
    and it covers at least as much of any span. The rest start and end in the same order, so
    the stalls in progress at a moment are one contiguous run, found by bisection: a query costs
    what it finds, not every stall near it (a 20 × 30 round asks ~5,000 times)."""

    def __init__(self, sources: Iterable[LagSource]) -> None:
        staircases = [_staircase(source) for source in sources]
        if len(staircases) == 1:  # lists shared with the source's staircase: read only here
            self._due, self._ran = staircases[0].due, staircases[0].ran
        else:
            merged = _Staircase.of(sorted(
                ((due, ran) for st in staircases for due, ran in zip(st.due, st.ran,
                                                                      strict=True)),
                key=lambda stall: (stall[1], -stall[0])))
            self._due, self._ran = merged.due, merged.ran

    def covering(self, span: Span, moments: tuple[float, ...]) -> float:
        """The longest part of ``span`` covered by a stall in progress at one of ``moments``."""
        worst = 0.0
        for moment in moments:
            first = bisect.bisect_left(self._ran, moment - END_MARGIN_S)
            last = bisect.bisect_right(self._due, moment + END_MARGIN_S)
            for index in range(first, last):  # each one is in progress at the moment
                worst = max(worst, min(self._ran[index], span.end)
                            - max(self._due[index], span.start))
        return worst


class _Staircase:
    """Stalls, less those lying within another (starting no earlier, ending no later): the rest
    start and end in the same order. Built as stalls come in the order they ended, in constant
    time each (a stall coming now ends last, so it can only swallow the newest ones kept)."""

    __slots__ = ("base", "due", "ran", "seen")

    def __init__(self) -> None:
        self.due: list[float] = []
        self.ran: list[float] = []
        self.seen = 0  # stalls of ``base`` taken in
        self.base: object = None  # the sequence they were taken from, for extending it

    @classmethod
    def of(cls, stalls: Iterable[tuple[float, float]]) -> _Staircase:
        built = cls()
        if not built.extend(stalls):  # not in the order they ended: sort them first
            built = cls()
            built.extend(sorted(stalls, key=lambda stall: (stall[1], -stall[0])))
        return built

    def extend(self, stalls: Iterable[tuple[float, float]]) -> bool:
        """Take in stalls in the order they ended; False (the rest not taken) at one that ended
        before the newest kept."""
        due, ran = self.due, self.ran
        for start, end in stalls:
            if ran and end < ran[-1]:
                return False
            self.seen += 1
            while due and due[-1] >= start:  # within this one
                due.pop()
                ran.pop()
            if ran and ran[-1] >= end:  # this one is within the newest kept
                continue
            due.append(start)
            ran.append(end)
        return True

    def bound(self, keep: int) -> None:
        if len(self.due) > 2 * keep:  # the oldest go first, in halves (amortised)
            del self.due[:-keep], self.ran[:-keep]


_STAIRCASES: WeakKeyDictionary[LagSource, tuple[object, _Staircase]] = WeakKeyDictionary()


def _staircase(source: LagSource) -> _Staircase:
    """A source's staircase: a :class:`StallLog` keeps its own; another source's is extended
    while its ``stalls()`` is the same list grown at the end, built again otherwise."""
    if isinstance(source, StallLog):
        return source.staircase
    stalls = source.stalls()
    if not isinstance(stalls, list | tuple):
        stalls = tuple(stalls)
    try:
        cached = _STAIRCASES.get(source)
    except TypeError:  # a source that cannot be weakly referenced is not cached
        return _Staircase.of(stalls)
    if cached is not None:
        last, staircase = cached
        seen = staircase.seen
        if (staircase.base is stalls and len(stalls) >= seen
                and (seen == 0 or stalls[seen - 1] is last)
                and staircase.extend(stalls[seen:])):
            _STAIRCASES[source] = (stalls[-1] if stalls else None, staircase)
            return staircase
    staircase = _Staircase.of(stalls)
    staircase.base = stalls
    staircase.seen = len(stalls)
    _STAIRCASES[source] = (stalls[-1] if stalls else None, staircase)
    return staircase


def disturbance(span: Span, sources: Iterable[LagSource]) -> float:
    """:meth:`StallIndex.disturbance` of one span."""
    return StallIndex(sources).disturbance(span)


def max_stall(sources: Iterable[LagSource], start: float, end: float) -> float:
    """The longest stall of any source that ended within [start, end] (0 when none)."""
    return max((source.longest_between(start, end) if isinstance(source, StallLog)
                else max((ran - due for due, ran in source.stalls() if start <= ran <= end),
                         default=0.0)
                for source in sources), default=0.0)


class LagMonitor(StallLog):
    """The event loop's own lateness: a task waking every :data:`TICK_S`, recording how late.

    Shared by every round running on one loop (:func:`shared_lag_monitor`): ``acquire`` starts
    it, the last ``release`` stops it.
    """

    def __init__(self, tick_s: float = TICK_S) -> None:
        super().__init__()
        self.tick_s = tick_s
        self._task: asyncio.Task[None] | None = None
        self._users = 0
        self.last_s = 0.0

    def acquire(self) -> None:
        self._users += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def release(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._task is not None:
            self._task.cancel()
            self._task = None

    def recent_max(self, window_s: float) -> float:
        """The longest stall that ended in the last ``window_s`` seconds (newest first)."""
        return self.longest_between(time.monotonic() - window_s, math.inf)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:  # cancelled by release()
            due = loop.time() + self.tick_s
            await asyncio.sleep(self.tick_s)
            ran = loop.time()
            self.last_s = max(0.0, ran - due)
            if self.last_s > RECORD_S:
                self.add(Stall(due, ran))


_MONITORS: WeakKeyDictionary[asyncio.AbstractEventLoop, LagMonitor] = WeakKeyDictionary()


def shared_lag_monitor() -> LagMonitor:
    """The running loop's lag monitor (one per loop, so concurrent rounds share it)."""
    loop = asyncio.get_running_loop()
    monitor = _MONITORS.get(loop)
    if monitor is None:
        monitor = _MONITORS[loop] = LagMonitor()
    return monitor
