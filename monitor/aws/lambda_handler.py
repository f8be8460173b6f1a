"""The Lambda handler: one probe round from the vantage point of the function's region.

``handler(event, context)`` runs :func:`~monitor.round.run.run_round` for one vantage point, prints
one evidence line per path (:mod:`monitor.exporters.evidence_log`: the verdict and what it rests
on, for Logs Insights) and the round's metrics as CloudWatch Embedded Metric Format on stdout
(flushed in ``finally``, so a failed round still reports ``RoundSuccess=0``), and returns the round
as the document ``check --json`` prints, which is what ``check --remote`` reads back.

Which configuration: ``ROUTEWATCH_CONFIG`` (a path), else ``routewatch.yaml`` bundled next to
the code (``LAMBDA_TASK_ROOT``). Which vantage point, first match wins: the event's
``vantage_point``; ``ROUTEWATCH_VANTAGE_POINT``; the vantage point named after the region
(``AWS_REGION``, else the event's ``region``); the only vantage point whose ``region`` is it.

No boto3 here: the metrics leave as log lines, so cold start pays for no AWS SDK; a bundled
configuration was validated when the package was built (:mod:`monitor.aws.packaged_config`), so
cold start builds no validator either (``tests/unit/test_lambda_handler.py`` holds the import
budget; ``bench/startup.py`` measures it, BENCHMARKS.md records it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from monitor.aws.packaged_config import load_packaged_config
from monitor.config import Config
from monitor.core.attribution import IpRanges, IpRangesError, load_ip_ranges
from monitor.core.report import round_document
from monitor.exporters.cloudwatch import Datapoint, EmfEmitter, round_datapoints
from monitor.exporters.evidence_log import write_round_evidence
from monitor.round.run import run_round
from probes.errors import RoutewatchError

__all__ = ["VantageNotFound", "choose_vantage", "handler"]

log = logging.getLogger(__name__)

CONFIG_ENV = "ROUTEWATCH_CONFIG"
VANTAGE_ENV = "ROUTEWATCH_VANTAGE_POINT"
BUNDLED_CONFIG = "routewatch.yaml"

# kept across warm invocations of the same container
_configs: dict[str, tuple[float, Config]] = {}
_ip_ranges: dict[str, IpRanges | None] = {}


class VantageNotFound(RoutewatchError, LookupError):
    """No vantage point of the configuration belongs to this function."""


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    root = environ.get("LAMBDA_TASK_ROOT") or str(Path(__file__).resolve().parent.parent)
    return Path(root) / BUNDLED_CONFIG


def _load(path: Path) -> Config:
    key = str(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = -1.0  # load_config reports the missing file
    cached = _configs.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    loaded = load_packaged_config(path)  # validated when the package was built, if it was
    for warning in loaded.warnings:
        log.warning("config: %s", warning)
    _configs[key] = (mtime, loaded.config)
    return loaded.config


def _ranges(config: Config) -> IpRanges | None:
    settings = config.ip_ranges
    if settings.file is None and settings.url is None:
        return None
    if settings.url is not None and settings.cache_dir is None:
        # the only writable place in a Lambda
        settings = replace(settings, cache_dir=Path("/tmp/routewatch"))
    key = f"{settings.file}|{settings.url}"
    if key not in _ip_ranges:
        try:
            _ip_ranges[key] = load_ip_ranges(settings)
        except IpRangesError as exc:  # attribution falls back to ALB addresses; not fatal
            log.warning("ip_ranges: %s", exc)
            return None
    return _ip_ranges[key]


def choose_vantage(config: Config, *, requested: str | None, region: str | None) -> str:
    """The vantage point this invocation probes from (see the module docstring)."""
    names = config.vantage_points
    if requested:
        if requested not in names:
            raise VantageNotFound(f"vantage point {requested!r} is not configured "
                                  f"(configured: {', '.join(names)})")
        return requested
    if region in names:
        return region
    matches = [name for name, vantage in names.items() if region and vantage.region == region]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise VantageNotFound(f"several vantage points run in {region} ({', '.join(matches)}); "
                              f"name one in the event or in {VANTAGE_ENV}")
    raise VantageNotFound(f"no vantage point for region {region!r}: name one after the region, "
                          f"set its region, or set {VANTAGE_ENV}")


def _event_str(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"event.{key} must be a string, not {type(value).__name__}")
    return value


def handler(event: Mapping[str, Any] | None, context: Any) -> dict[str, Any]:
    """Run one round; print EMF; return the round document."""
    event = event if isinstance(event, Mapping) else {}
    emitter = EmfEmitter()
    probe: str | None = None
    finished = False
    try:
        config = _load(config_path())
        emitter.namespace = config.cloudwatch.namespace
        # in AWS the function's own region wins; the event's serves in-process runs (the lab)
        region = os.environ.get("AWS_REGION") or _event_str(event, "region")
        probe = choose_vantage(
            config,
            requested=_event_str(event, "vantage_point") or os.environ.get(VANTAGE_ENV),
            region=region,
        )
        result = asyncio.run(run_round(config, vantage_points=[probe],
                                       ip_ranges=_ranges(config)))
        emitter.add(round_datapoints(result, config.regions))
        finished = True
        for vantage in result.vantage_points:
            write_round_evidence(vantage)
        document = round_document(result)
        document["region"] = region
        return document
    finally:
        if not finished and probe is not None:
            emitter.add([Datapoint("RoundSuccess", 0.0, (("Probe", probe),), time.time())])
        emitter.flush()
