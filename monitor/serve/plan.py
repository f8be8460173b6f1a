"""When each vantage point's rounds run: pure functions of the settings and a given ``now``.

A vantage point's job runs on an interval with jitter (at most half the interval:
:func:`effective_jitter`), one round at a time (a slow round makes the next one be skipped, never
overlap), a backlog of missed runs coalesced into one run, and a misfire grace time. The first
rounds run at start, spread out (bursts distort the timings); after a reload that changes the
``serve`` settings, the vantage points kept run again one interval later, spread the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.config import ServeSettings
from probes.records import record

__all__ = [
    "MAX_JITTER_FRACTION",
    "MAX_START_SPACING_S",
    "JobPlan",
    "Replan",
    "effective_jitter",
    "plan_jobs",
    "plan_reload",
]

MAX_JITTER_FRACTION = 0.5
"""The jitter is clamped to this fraction of the interval: APScheduler adds it to every fire time,
so a longer jitter stretches the real interval past what ``/healthz`` and the stale alert (both
3 intervals) allow; at half, two rounds are at most 1.5 intervals apart."""

MAX_START_SPACING_S = 1.0
"""Vantage points' first rounds start this far apart at most (less when the interval is short)."""


def effective_jitter(serve: ServeSettings) -> float:
    """The jitter the scheduler really uses: ``serve.jitter_s``, at most half the interval."""
    return min(serve.jitter_s, serve.interval_s * MAX_JITTER_FRACTION)


@record
class JobPlan:
    """One vantage point's job: when its first round runs and how the later ones follow."""

    vantage: str
    first_run: datetime
    interval_s: float
    jitter_s: float
    misfire_grace_s: int
    max_instances: int = 1
    coalesce: bool = True


@record
class Replan:
    """What a reload changes: jobs to remove, to add, and to reschedule with new settings."""

    removed: tuple[str, ...] = ()
    added: tuple[JobPlan, ...] = ()
    rescheduled: tuple[JobPlan, ...] = ()


def _plan(serve: ServeSettings, names: Sequence[str], start: datetime,
          spacing: float) -> tuple[JobPlan, ...]:
    return tuple(
        JobPlan(vantage=name, first_run=start + timedelta(seconds=index * spacing),
                interval_s=serve.interval_s, jitter_s=effective_jitter(serve),
                misfire_grace_s=max(1, round(serve.misfire_grace_s)))
        for index, name in enumerate(names))


def plan_jobs(serve: ServeSettings, names: Sequence[str], now: datetime) -> tuple[JobPlan, ...]:
    """The jobs of ``names`` started at ``now``: the first round at once, the next spread out."""
    if not names:
        return ()
    return _plan(serve, names, now, min(serve.interval_s / len(names), MAX_START_SPACING_S))


def plan_reload(old: ServeSettings, old_names: Sequence[str], new: ServeSettings,
                new_names: Sequence[str], now: datetime) -> Replan:
    """What changes when the configuration is reloaded at ``now``."""
    removed = tuple(n for n in old_names if n not in new_names)
    added = [n for n in new_names if n not in old_names]
    rescheduled: tuple[JobPlan, ...] = ()
    if old != new:
        kept = [n for n in new_names if n in old_names]
        rescheduled = _plan(new, kept, now + timedelta(seconds=new.interval_s),
                            min(MAX_START_SPACING_S, new.interval_s))
    return Replan(removed, plan_jobs(new, added, now), rescheduled)
