"""One vantage point's round as ``serve`` runs it: bounded by the round deadline, and a round
whatever happens (a stuck or crashing round becomes a failed one)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from monitor.config import Config
from monitor.core.model import DnsLookups, ErrorRecord, VantageRound
from monitor.domain.reasons import Reason

__all__ = ["DEADLINE_MARGIN_S", "RoundRunner", "bounded_round", "failed_round"]

log = logging.getLogger(__name__)

DEADLINE_MARGIN_S = 2.0
"""run_round enforces the round deadline itself; this margin is the scheduler's own backstop."""

RoundRunner = Callable[[Config, str], Awaitable[VantageRound]]
"""Runs one vantage point's round: ``await runner(config, vantage_point_name)``."""


def failed_round(name: str, started_at: float, duration: float, reason: Reason,
                 message: str) -> VantageRound:
    """The round a vantage point publishes when its round could not produce one."""
    return VantageRound(name, started_at, duration, (), (),
                        (ErrorRecord("round", reason, message),), DnsLookups(), False)


async def bounded_round(runner: RoundRunner, config: Config, name: str) -> VantageRound:
    """``runner``'s round, or a failed one when it outlives the deadline or crashes."""
    started_at, started = time.time(), time.perf_counter()
    try:
        async with asyncio.timeout(config.probe.round_deadline_s + DEADLINE_MARGIN_S):
            return await runner(config, name)
    except TimeoutError:
        return failed_round(name, started_at, time.perf_counter() - started, Reason.DEADLINE,
                            f"round did not end within {config.probe.round_deadline_s} s")
    except Exception as exc:  # one broken round must not stop the others or later rounds
        log.exception("%s: round crashed", name)
        return failed_round(name, started_at, time.perf_counter() - started,
                            Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
