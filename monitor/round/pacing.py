"""Spread check starts over the round, closed-loop.

Measured here: 100 fresh-connection checks started at once in one asyncio loop read a 20 ms round
trip as +22–31 ms (replies sit unread while the loop does TLS handshakes); started 10 ms apart they
read +1 ms. Every check of a round takes a start slot from one shared :class:`Pacer`.

The gap is planned to fit the round's deadline (:func:`plan_round`: ``probe.pace_ms`` when the
round fits at that rate, narrower when it does not, never below :data:`MIN_GAP_S`; a plan that
cannot fit says so up front). The pacer then closes the loop: it widens the gap (up to
:data:`MAX_BACKOFF` times) while the loop runs late, narrows it back when the loop is on time, and
holds starts while :data:`MAX_IN_FLIGHT` baseline samples are in flight. It backs off only into
the plan's slack: the starts still to come always fit before the planned end (a machine too busy
for that shows as disturbed samples, not as unmeasured cells).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from monitor.core.model import RoundPlan
from monitor.round.lag import DISTURBED_S, LagMonitor

__all__ = ["MAX_BACKOFF", "MAX_IN_FLIGHT", "MIN_GAP_S", "Pacer", "RoundPlan", "plan_round"]

MIN_GAP_S = 0.002
"""The narrowest planned gap between starts (about one TLS handshake of CPU)."""
MAX_BACKOFF = 8.0
MAX_IN_FLIGHT = 64
DEADLINE_SHARE = 0.8
"""The share of the deadline the starts are planned into (the last samples must land too)."""
_LAG_WINDOW_S = 0.05


def plan_round(checks: int, pace_s: float, deadline_s: float) -> RoundPlan:
    """The gap for ``checks`` starts: ``pace_s`` if they fit in the deadline's share, else the
    gap that fits, not below :data:`MIN_GAP_S` (pure)."""
    budget = deadline_s * DEADLINE_SHARE
    gap = pace_s
    if checks * gap > budget:
        gap = max(MIN_GAP_S, budget / max(1, checks))
    planned = checks * gap
    return RoundPlan(checks, gap, planned, deadline_s, planned <= budget or math.isclose(
        planned, budget))


class Pacer:
    """Hands out start times at least ``gap_s`` apart (wider while ``lag`` shows the loop
    running late), in the order they were asked for."""

    def __init__(self, gap_s: float, *, lag: LagMonitor | None = None,
                 max_in_flight: int = MAX_IN_FLIGHT, checks: int | None = None,
                 budget_s: float | None = None) -> None:
        self.gap_s = gap_s
        self.lag = lag
        self.max_in_flight = max_in_flight
        self.backoff = 1.0
        self._remaining = checks  # starts still to hand out (None: no plan)
        self._budget_s = budget_s
        self._ends_at: float | None = None  # loop time the plan's starts must be done by
        self.in_flight = 0
        self._next = 0.0
        self._lock = asyncio.Lock()
        self._landed = asyncio.Event()

    def _adjust(self) -> None:
        if self.lag is None:
            return
        if self.lag.recent_max(_LAG_WINDOW_S) > DISTURBED_S:
            self.backoff = min(MAX_BACKOFF, self.backoff * 2.0)
        else:
            self.backoff = max(1.0, self.backoff * 0.75)

    async def slot(self) -> None:
        async with self._lock:  # starts go out in the order asked for
            while self.in_flight >= self.max_in_flight:  # each pass waits for one to land
                self._landed.clear()
                await self._landed.wait()
            self._adjust()
            loop = asyncio.get_running_loop()
            now = loop.time()
            start = max(now, self._next)
            self._next = start + self.next_gap(now)
            if start > now:
                await asyncio.sleep(start - now)

    def next_gap(self, now: float) -> float:
        """The planned gap, widened by the backoff only as far as the plan's slack allows: the
        starts still to come must fit before the planned end."""
        wanted = self.gap_s * self.backoff
        if self._remaining is None or self._budget_s is None:
            return wanted
        if self._ends_at is None:
            self._ends_at = now + self._budget_s
        self._remaining = max(0, self._remaining - 1)
        slack = (self._ends_at - now) / max(1, self._remaining)
        return min(wanted, max(self.gap_s, slack))

    @asynccontextmanager
    async def check(self) -> AsyncIterator[None]:
        """A paced start for a check counted in flight until the block ends."""
        await self.slot()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._landed.set()
