"""One vantage point's round as ``serve`` runs it (every service's, on one pacer): bounded by the
round deadline, and a round per service whatever happens (a stuck or crashing round becomes a
failed one for each service)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from monitor.config import DEFAULT_SERVICE, Config
from monitor.core.model import DnsLookups, ErrorRecord, VantageRound
from monitor.domain.reasons import Reason

__all__ = ["DEADLINE_MARGIN_S", "RoundRunner", "bounded_round", "failed_round"]

log = logging.getLogger(__name__)

DEADLINE_MARGIN_S = 2.0
"""run_round enforces the round deadline itself; this margin is the scheduler's own backstop."""

RoundRunner = Callable[[Config, str], Awaitable[VantageRound | Sequence[VantageRound]]]
"""Runs one vantage point's round: ``await runner(config, vantage_point_name)`` → its round
for each service (one round alone: the configuration's one service)."""


def failed_round(name: str, started_at: float, duration: float, reason: Reason,
                 message: str, service: str = DEFAULT_SERVICE) -> VantageRound:
    """The round a vantage point publishes when its round could not produce one."""
    return VantageRound(name, started_at, duration, (), (),
                        (ErrorRecord("round", reason, message),), DnsLookups(), False,
                        service=service)


async def bounded_round(runner: RoundRunner, config: Config,
                        name: str) -> tuple[VantageRound, ...]:
    """``runner``'s rounds, or a failed one per service when it outlives the deadline or
    crashes."""
    started_at, started = time.time(), time.perf_counter()
    try:
        async with asyncio.timeout(config.probe.round_deadline_s + DEADLINE_MARGIN_S):
            found = await runner(config, name)
        return (found,) if isinstance(found, VantageRound) else tuple(found)
    except TimeoutError:
        reason, message = (Reason.DEADLINE,
                           f"round did not end within {config.probe.round_deadline_s} s")
    except Exception as exc:  # one broken round must not stop the others or later rounds
        log.exception("%s: round crashed", name)
        reason, message = Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"
    return tuple(failed_round(name, started_at, time.perf_counter() - started, reason, message,
                              service) for service in config.service_names)
