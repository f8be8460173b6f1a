"""Continuous rounds for ``routewatch serve``: one APScheduler job per vantage point.

Each vantage point's job runs :func:`~monitor.round.run.run_round` for that vantage point alone,
as :mod:`monitor.serve.plan` plans it (first round at start, then on an interval with jitter, one
at a time). A slow, failed or crashing round of one vantage point never stops the others
(:mod:`monitor.serve.rounds`); whatever it ends with is published to the
:class:`~monitor.metrics.SnapshotStore` as that vantage point's latest round, logged
(:mod:`monitor.serve.round_log`) and handed to the other exporters (:mod:`monitor.serve.exports`).

Signals (installed by :meth:`RoundScheduler.run`): SIGTERM and SIGINT stop cleanly, letting
in-flight rounds finish until their deadline and cancelling them then (a second signal cancels
at once); SIGHUP reloads the configuration (:mod:`monitor.serve.reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, LoadedConfig, ServeSettings, local_vantage_points
from monitor.core.attribution import IpRanges
from monitor.core.model import VantageRound
from monitor.exporters.evidence_log import log_round_evidence
from monitor.metrics import SnapshotStore, VantageSnapshot
from monitor.round.run import run_round
from monitor.serve import rounds, signals
from monitor.serve.exports import RoundExporter, export_round
from monitor.serve.plan import JobPlan, effective_jitter, plan_jobs, plan_reload
from monitor.serve.reload import ConfigLoader, load_again, log_reloaded
from monitor.serve.round_log import log_round
from monitor.serve.rounds import RoundRunner

__all__ = ["RoundExporter", "RoundScheduler", "job_arguments", "probed_here"]

log = logging.getLogger(__name__)


def probed_here(config: Config) -> list[str]:
    """The vantage points this process probes: those that run here (no ``region``, or this
    machine's ``AWS_REGION``); a regional probe's numbers must come from its region."""
    return local_vantage_points(config, os.environ.get("AWS_REGION"))


def job_arguments(plan: JobPlan) -> dict[str, Any]:
    """APScheduler's ``add_job``/``modify_job`` arguments for a plan (its trigger included)."""
    return {
        "trigger": IntervalTrigger(seconds=plan.interval_s, start_date=plan.first_run,
                                   jitter=plan.jitter_s or None, timezone=UTC),
        "next_run_time": plan.first_run,
        "max_instances": plan.max_instances,
        "coalesce": plan.coalesce,
        "misfire_grace_time": plan.misfire_grace_s,
    }


class RoundScheduler:
    """Runs every vantage point's rounds until stopped; publishes each into ``store``."""

    def __init__(
        self,
        loaded: LoadedConfig,
        store: SnapshotStore,
        *,
        reload: ConfigLoader | None = None,
        runner: RoundRunner | None = None,
        ip_ranges: IpRanges | None = None,
        exporters: Sequence[RoundExporter] = (),
    ) -> None:
        self._loaded = loaded
        self._exporters = tuple(exporters)
        self._store = store
        self._reload = reload
        self._ip_ranges = ip_ranges
        self._runner: RoundRunner = runner or self._probe
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._plans: dict[str, JobPlan] = {}
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._stopping: asyncio.Event | None = None
        self._stop_requests = 0
        self._clamp_logged: tuple[float, float] | None = None
        self.reloads = 0

    @property
    def config(self) -> Config:
        return self._loaded.config

    @property
    def plans(self) -> dict[str, JobPlan]:
        """The job each vantage point was last given (by start or by a reload)."""
        return dict(self._plans)

    # --- rounds ----------------------------------------------------------------------------------

    async def _probe(self, config: Config, name: str) -> tuple[VantageRound, ...]:
        result = await run_round(config, vantage_points=[name], ip_ranges=self._ip_ranges)
        return result.vantage_points

    async def run_vantage(self, name: str) -> VantageSnapshot | None:
        """One round of one vantage point (every service), whatever happens, published to the
        store; returns the last service's entry."""
        task = asyncio.current_task()
        if task is not None:
            self._running[name] = task
        try:
            results = await rounds.bounded_round(self._runner, self.config, name)
        except asyncio.CancelledError:  # stopping: the job ends here, quietly (no traceback)
            log.info("%s: round cancelled (stopping)", name)
            return None
        finally:
            self._running.pop(name, None)
        entry = None
        for result in results:
            entry = self._store.publish(result)
            log_round(result, entry)
            log_round_evidence(result)
            export_round(self._exporters, result)
        return entry

    # --- jobs ------------------------------------------------------------------------------------

    def _schedule(self, plans: Sequence[JobPlan], *, replace: bool) -> None:
        for plan in plans:
            self._plans[plan.vantage] = plan
            if replace:
                self._scheduler.modify_job(plan.vantage, **job_arguments(plan))
            else:
                self._scheduler.add_job(self.run_vantage, args=[plan.vantage], id=plan.vantage,
                                        name=f"round {plan.vantage}", replace_existing=True,
                                        **job_arguments(plan))

    def _log_jitter_clamp(self, serve: ServeSettings) -> None:
        """Say once per (interval, jitter) setting that the jitter was clamped, not per job."""
        jitter = effective_jitter(serve)
        setting = (serve.interval_s, serve.jitter_s)
        if jitter == serve.jitter_s or setting == self._clamp_logged:
            return
        self._clamp_logged = setting
        # a warning only for a jitter the user chose; the default's clamp is just said
        level = logging.WARNING if serve.jitter_s != ServeSettings().jitter_s else logging.INFO
        log.log(level, "serve.jitter_s %g s is more than half the interval (%g s): using %g s, so "
                    "rounds stay about one interval apart", serve.jitter_s, serve.interval_s,
                    jitter, extra={"fields": {"event": "jitter_clamped",
                                              "jitter_s": serve.jitter_s,
                                              "interval_s": serve.interval_s,
                                              "effective_jitter_s": jitter}})

    def _sync_jobs(self, old: Config, new: Config) -> None:
        change = plan_reload(old.serve, probed_here(old), new.serve, probed_here(new),
                             datetime.now(UTC))
        for name in change.removed:
            self._plans.pop(name, None)
            with contextlib.suppress(Exception):
                self._scheduler.remove_job(name)
        if old.serve != new.serve:
            self._log_jitter_clamp(new.serve)
        self._schedule(change.rescheduled, replace=True)
        self._schedule(change.added, replace=False)
        if change.removed or change.added:
            log.info("vantage points: removed %s, added %s",
                     ", ".join(change.removed) or "none",
                     ", ".join(p.vantage for p in change.added) or "none")

    # --- reload ----------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Load the configuration again; keep the current one (and say why) when it is bad."""
        if self._reload is None:
            log.warning("reload requested, but this configuration cannot be reloaded")
            return False
        reloaded = await load_again(self._reload, on_failure=self._store.reload_failed)
        if reloaded is None:
            return False
        old = self.config
        self._loaded = reloaded.loaded
        self._ip_ranges = reloaded.ip_ranges
        self._store.reconfigure(self.config)
        self._sync_jobs(old, self.config)
        self.reloads += 1
        log_reloaded(old, reloaded.loaded, probed_here(self.config))
        return True

    # --- running ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop scheduling; in-flight rounds may finish until their deadline (again: cancel now)."""
        self._stop_requests += 1
        if self._stopping is not None:
            self._stopping.set()
        if self._stop_requests > 1:
            for task in list(self._running.values()):
                task.cancel()

    async def run(self, *, install_signals: bool = True) -> None:
        """Schedule every vantage point and run until :meth:`request_stop` (or a signal)."""
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requests:
            self._stopping.set()
        installed = (signals.install_signals(loop, stop=self.request_stop, reload=self.reload)
                     if install_signals else [])
        try:
            self._scheduler.start()
            serve = self.config.serve
            self._log_jitter_clamp(serve)
            names = probed_here(self.config)
            self._schedule(plan_jobs(serve, names, datetime.now(UTC)), replace=False)
            log.info("scheduling %d vantage points every %g s (jitter %g s, hysteresis %d "
                     "rounds)", len(names), serve.interval_s, effective_jitter(serve),
                     serve.hysteresis_rounds)
            await self._stopping.wait()
            log.info("stopping: no new rounds; %d in flight", len(self._running))
            self._scheduler.pause()
            await self._drain()
        finally:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            signals.remove_signals(loop, installed)
        log.info("stopped")

    async def _drain(self) -> None:
        """Let in-flight rounds end (each is bounded by its deadline); cancel what remains."""
        running = list(self._running.values())
        if not running:
            return
        limit = self.config.probe.round_deadline_s + rounds.DEADLINE_MARGIN_S
        _, pending = await asyncio.wait(running, timeout=limit)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
