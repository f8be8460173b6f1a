"""SIGHUP: load the configuration again, validating it first; a bad one is logged with its
reason and changes nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from monitor.config import Config, ConfigError, LoadedConfig
from monitor.core.attribution import IpRanges, IpRangesError, load_ip_ranges
from probes.records import record

__all__ = ["ConfigLoader", "Reloaded", "load_again", "log_reloaded"]

log = logging.getLogger(__name__)

ConfigLoader = Callable[[], LoadedConfig]
"""Loads and validates the configuration again (SIGHUP); raises ConfigError when it is bad."""


@record
class Reloaded:
    """A new configuration that passed validation, with its IP ranges loaded."""

    loaded: LoadedConfig
    ip_ranges: IpRanges | None


async def load_again(reload: ConfigLoader, *,
                     on_failure: Callable[[], object]) -> Reloaded | None:
    """The new configuration, or None (the reason logged) when it or its IP ranges are bad;
    ``on_failure`` runs before the failure is logged, so whoever reads the log line (a test, an
    operator) finds ``/metrics`` already saying so."""
    try:
        loaded = await asyncio.to_thread(reload)
        ip_ranges = await asyncio.to_thread(load_ip_ranges, loaded.config.ip_ranges)
    except ConfigError as exc:
        on_failure()
        problems = "; ".join(str(p) for p in exc.problems)
        log.error("configuration reload failed, keeping the previous configuration: "
                  "%s: %s", exc.source, problems,
                  extra={"fields": {"event": "reload", "ok": False, "source": exc.source,
                                    "problems": [str(p) for p in exc.problems]}})
        return None
    except IpRangesError as exc:
        on_failure()
        log.error("configuration reload failed, keeping the previous configuration: "
                  "ip_ranges: %s", exc,
                  extra={"fields": {"event": "reload", "ok": False,
                                    "problems": [f"ip_ranges: {exc}"]}})
        return None
    for warning in loaded.warnings:
        log.warning("configuration: %s", warning)
    return Reloaded(loaded, ip_ranges)


def log_reloaded(old: Config, new: LoadedConfig, probed: list[str]) -> None:
    """What a successful reload changed that the operator must know."""
    config = new.config
    if config.serve.listen != old.serve.listen:
        log.warning("serve.listen changed to %s: restart routewatch to listen there",
                    config.serve.listen)
    if not probed:
        log.warning("no vantage point of the new configuration runs here (all have a "
                    "region other than this machine's AWS_REGION): nothing is probed")
    log.info("configuration reloaded from %s (%d regions, %d vantage points)",
             new.source, len(config.regions), len(config.vantage_points),
             extra={"fields": {"event": "reload", "ok": True, "source": new.source}})
