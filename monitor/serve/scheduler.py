"""Continuous rounds for ``routewatch serve``: one APScheduler job per vantage point.

Each vantage point's job runs :func:`~monitor.round.run.run_round` for that vantage point alone, on
an interval with jitter (at most half the interval: :func:`effective_jitter`), ``max_instances=1``
(a slow round makes the next one be skipped, never overlap), ``coalesce`` (a backlog of missed runs
becomes one run) and a misfire grace time. A slow, failed or crashing round of one vantage point
never stops the others: every round is bounded by the round deadline (plus a margin), and whatever
it ends with is published to the :class:`~monitor.metrics.SnapshotStore` as that vantage point's
latest round.

Signals (installed by :meth:`RoundScheduler.run`): SIGTERM and SIGINT stop cleanly, letting
in-flight rounds finish until their deadline and cancelling them then (a second signal cancels
at once); SIGHUP reloads the configuration, validating it first and keeping the old one, with a
logged reason, when the new one is bad.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, ConfigError, LoadedConfig, ServeSettings, local_vantage_points
from monitor.core.attribution import IpRanges, IpRangesError, load_ip_ranges
from monitor.core.model import DnsLookups, ErrorRecord, VantageRound
from monitor.domain.reasons import Reason
from monitor.exporters.evidence_log import log_round_evidence
from monitor.metrics import SnapshotStore, VantageSnapshot
from monitor.round.run import run_round

__all__ = [
    "DEADLINE_MARGIN_S",
    "MAX_JITTER_FRACTION",
    "ConfigLoader",
    "RoundRunner",
    "RoundScheduler",
    "effective_jitter",
    "failed_round",
    "round_log_fields",
]

log = logging.getLogger(__name__)
round_log = logging.getLogger("monitor.rounds")

DEADLINE_MARGIN_S = 2.0
"""run_round enforces the round deadline itself; this margin is the scheduler's own backstop."""

MAX_JITTER_FRACTION = 0.5
"""The jitter is clamped to this fraction of the interval: APScheduler adds it to every fire time,
so a longer jitter stretches the real interval past what ``/healthz`` and the stale alert (both
3 intervals) allow; at half, two rounds are at most 1.5 intervals apart."""


def effective_jitter(serve: ServeSettings) -> float:
    """The jitter the scheduler really uses: ``serve.jitter_s``, at most half the interval."""
    return min(serve.jitter_s, serve.interval_s * MAX_JITTER_FRACTION)


RoundRunner = Callable[[Config, str], Awaitable[VantageRound]]
"""Runs one vantage point's round: ``await runner(config, vantage_point_name)``."""

ConfigLoader = Callable[[], LoadedConfig]
"""Loads and validates the configuration again (SIGHUP); raises ConfigError when it is bad."""


def failed_round(name: str, started_at: float, duration: float, reason: Reason,
                 message: str) -> VantageRound:
    """The round a vantage point publishes when its round could not produce one."""
    return VantageRound(name, started_at, duration, (), (),
                        (ErrorRecord("round", reason, message),), DnsLookups(), False)


def round_log_fields(result: VantageRound, entry: VantageSnapshot | None) -> dict[str, Any]:
    """The structured log record of one vantage point's round (one JSON line in json mode)."""
    paths = []
    for path_result in result.paths:
        verdict = path_result.verdict
        stable = entry.routing.get(path_result.path) if entry else None
        paths.append({
            "path": path_result.path.value,
            "state": verdict.state.value,
            "stable_state": stable.stable.value if stable else None,
            "streak": stable.streak if stable else None,
            "served_region": verdict.served_region,
            "expected_region": verdict.expected_region,
            "penalty_seconds": verdict.penalty_seconds,
            "reason": verdict.reason,
        })
    return {
        "event": "round",
        "vantage": result.vantage,
        "success": result.success,
        "started_at": datetime.fromtimestamp(result.started_at, UTC).isoformat(
            timespec="milliseconds"),
        "duration_seconds": round(result.duration_seconds, 6),
        "paths": paths,
        "regions": {r.region: r.latency_seconds if r.healthy else None for r in result.regions},
        "errors": [{"path": e.path, "reason": e.reason, "message": e.message}
                   for e in result.errors],
        "round": entry.rounds_total if entry else None,
    }


def _round_message(result: VantageRound, entry: VantageSnapshot | None) -> str:
    parts = []
    for path_result in result.paths:
        verdict = path_result.verdict
        text = f"{path_result.path} {verdict.state}"
        if verdict.served_region:
            text += f" {verdict.served_region}"
        if verdict.expected_region and verdict.expected_region != verdict.served_region:
            text += f" (expected {verdict.expected_region}"
            text += (f", +{verdict.penalty_seconds * 1000:.1f} ms)"
                     if verdict.penalty_seconds is not None else ")")
        stable = entry.routing.get(path_result.path) if entry else None
        if stable is not None and stable.pending:
            text += f" [stable {stable.stable}, {stable.streak}/{stable.rounds_required}]"
        parts.append(text)
    for error in result.errors:
        if error.path == "round":
            parts.append(f"{error.reason}: {error.message}")
    outcome = "finished" if result.success else "failed"
    return (f"{result.vantage}: round {outcome} in {result.duration_seconds:.2f}s"
            + (": " + ", ".join(parts) if parts else ""))


RoundExporter = Callable[[VantageRound], object]
"""Called with every published round (e.g. CloudWatch PutMetricData); must not block."""


def probed_here(config: Config) -> list[str]:
    """The vantage points this process probes: those that run here (no ``region``, or this
    machine's ``AWS_REGION``); a regional probe's numbers must come from its region."""
    return local_vantage_points(config, os.environ.get("AWS_REGION"))


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
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._stopping: asyncio.Event | None = None
        self._stop_requests = 0
        self._clamp_logged: tuple[float, float] | None = None
        self.reloads = 0

    @property
    def config(self) -> Config:
        return self._loaded.config

    # --- rounds ----------------------------------------------------------------------------------

    async def _probe(self, config: Config, name: str) -> VantageRound:
        result = await run_round(config, vantage_points=[name], ip_ranges=self._ip_ranges)
        return result.vantage_points[0]

    async def run_vantage(self, name: str) -> VantageSnapshot | None:
        """One round of one vantage point, whatever happens, published to the store."""
        config = self.config
        task = asyncio.current_task()
        if task is not None:
            self._running[name] = task
        started_at, started = time.time(), time.perf_counter()
        try:
            async with asyncio.timeout(config.probe.round_deadline_s + DEADLINE_MARGIN_S):
                result = await self._runner(config, name)
        except TimeoutError:
            result = failed_round(name, started_at, time.perf_counter() - started, Reason.DEADLINE,
                                  f"round did not end within {config.probe.round_deadline_s} s")
        except Exception as exc:  # one broken round must not stop the others or later rounds
            log.exception("%s: round crashed", name)
            result = failed_round(name, started_at, time.perf_counter() - started,
                                  Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            self._running.pop(name, None)
        entry = self._store.publish(result)
        round_log.info(_round_message(result, entry),
                       extra={"fields": round_log_fields(result, entry)})
        log_round_evidence(result)
        for export in self._exporters:
            try:
                export(result)
            except Exception:  # an exporter's failure must not stop rounds or other exporters
                log.exception("%s: exporter %r failed", name, export)
        return entry

    # --- jobs ------------------------------------------------------------------------------------

    def _job_options(self, config: Config) -> dict[str, Any]:
        serve = config.serve
        return {
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": max(1, round(serve.misfire_grace_s)),
        }

    def _trigger(self, config: Config, start: datetime) -> IntervalTrigger:
        serve = config.serve
        return IntervalTrigger(seconds=serve.interval_s, start_date=start,
                               jitter=effective_jitter(serve) or None, timezone=UTC)

    def _log_jitter_clamp(self, serve: ServeSettings) -> None:
        """Say once per (interval, jitter) setting that the jitter was clamped, not per job."""
        jitter = effective_jitter(serve)
        setting = (serve.interval_s, serve.jitter_s)
        if jitter == serve.jitter_s or setting == self._clamp_logged:
            return
        self._clamp_logged = setting
        log.warning("serve.jitter_s %g s is more than half the interval (%g s): using %g s, so "
                    "rounds stay about one interval apart", serve.jitter_s, serve.interval_s,
                    jitter, extra={"fields": {"event": "jitter_clamped",
                                              "jitter_s": serve.jitter_s,
                                              "interval_s": serve.interval_s,
                                              "effective_jitter_s": jitter}})

    def _add_jobs(self, config: Config, names: list[str]) -> None:
        """Start the vantage points' first rounds spread out: bursts distort the timings."""
        if not names:
            return
        spacing = min(config.serve.interval_s / len(names), 1.0)
        now = datetime.now(UTC)
        for index, name in enumerate(names):
            self._scheduler.add_job(
                self.run_vantage, self._trigger(config, now + timedelta(seconds=index * spacing)),
                args=[name], id=name, name=f"round {name}", replace_existing=True,
                **self._job_options(config),
            )

    def _sync_jobs(self, old: Config, new: Config) -> None:
        old_names, new_names = probed_here(old), probed_here(new)
        removed = [n for n in old_names if n not in new_names]
        added = [n for n in new_names if n not in old_names]
        for name in removed:
            with contextlib.suppress(Exception):
                self._scheduler.remove_job(name)
        if old.serve != new.serve:
            self._log_jitter_clamp(new.serve)
            kept = [n for n in new_names if n in old_names]
            for index, name in enumerate(kept):
                start = datetime.now(UTC) + timedelta(seconds=new.serve.interval_s
                                                      + index * min(1.0, new.serve.interval_s))
                self._scheduler.modify_job(name, trigger=self._trigger(new, start),
                                           next_run_time=start, **self._job_options(new))
        self._add_jobs(new, added)
        if removed or added:
            log.info("vantage points: removed %s, added %s",
                     ", ".join(removed) or "none", ", ".join(added) or "none")

    # --- reload ----------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Load the configuration again; keep the current one (and say why) when it is bad."""
        if self._reload is None:
            log.warning("reload requested, but this configuration cannot be reloaded")
            return False
        try:
            loaded = await asyncio.to_thread(self._reload)
            ip_ranges = await asyncio.to_thread(load_ip_ranges, loaded.config.ip_ranges)
        except ConfigError as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            log.error("configuration reload failed, keeping the previous configuration: "
                      "%s: %s", exc.source, problems,
                      extra={"fields": {"event": "reload", "ok": False, "source": exc.source,
                                        "problems": [str(p) for p in exc.problems]}})
            self._store.reload_failed()
            return False
        except IpRangesError as exc:
            log.error("configuration reload failed, keeping the previous configuration: "
                      "ip_ranges: %s", exc,
                      extra={"fields": {"event": "reload", "ok": False,
                                        "problems": [f"ip_ranges: {exc}"]}})
            self._store.reload_failed()
            return False
        old = self.config
        new = loaded.config
        for warning in loaded.warnings:
            log.warning("configuration: %s", warning)
        if new.serve.listen != old.serve.listen:
            log.warning("serve.listen changed to %s: restart routewatch to listen there",
                        new.serve.listen)
        self._loaded = loaded
        self._ip_ranges = ip_ranges
        self._store.reconfigure(new)
        self._sync_jobs(old, new)
        if not probed_here(new):
            log.warning("no vantage point of the new configuration runs here (all have a "
                        "region other than this machine's AWS_REGION): nothing is probed")
        self.reloads += 1
        log.info("configuration reloaded from %s (%d regions, %d vantage points)",
                 loaded.source, len(new.regions), len(new.vantage_points),
                 extra={"fields": {"event": "reload", "ok": True, "source": loaded.source}})
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

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        installed = []
        handlers: dict[signal.Signals, Callable[[], Any]] = {
            signal.SIGTERM: self.request_stop,
            signal.SIGINT: self.request_stop,
            signal.SIGHUP: lambda: loop.create_task(self.reload()),
        }
        for signum, handler in handlers.items():
            try:
                loop.add_signal_handler(signum, handler)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            installed.append(signum)
        return installed

    async def run(self, *, install_signals: bool = True) -> None:
        """Schedule every vantage point and run until :meth:`request_stop` (or a signal)."""
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requests:
            self._stopping.set()
        installed = self._install_signals(loop) if install_signals else []
        try:
            self._scheduler.start()
            serve = self.config.serve
            self._log_jitter_clamp(serve)
            self._add_jobs(self.config, probed_here(self.config))
            log.info("scheduling %d vantage points every %g s (jitter %g s, hysteresis %d "
                     "rounds)", len(probed_here(self.config)), serve.interval_s,
                     effective_jitter(serve), serve.hysteresis_rounds)
            await self._stopping.wait()
            log.info("stopping: no new rounds; %d in flight", len(self._running))
            self._scheduler.pause()
            await self._drain()
        finally:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            for signum in installed:
                loop.remove_signal_handler(signum)
        log.info("stopped")

    async def _drain(self) -> None:
        """Let in-flight rounds end (each is bounded by its deadline); cancel what remains."""
        running = list(self._running.values())
        if not running:
            return
        limit = self.config.probe.round_deadline_s + DEADLINE_MARGIN_S
        _, pending = await asyncio.wait(running, timeout=limit)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
