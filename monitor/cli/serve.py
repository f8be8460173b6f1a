"""``routewatch serve``: rounds on a schedule, Prometheus ``/metrics`` and ``/healthz``.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 when it cannot start (bad configuration,
address in use, unreadable ip-ranges, CloudWatch enabled without boto3 or a usable region).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

import click
from prometheus_client import CollectorRegistry, ProcessCollector
from pydantic import ValidationError

from monitor.cli.options import config_options, config_source
from monitor.cli.output import fail
from monitor.config import Config, LoadedConfig, ServeSettings
from monitor.config.loader import validation_problems
from monitor.config.validation import validate_section
from monitor.core.attribution import IpRangesError, load_ip_ranges
from monitor.core.model import RoundResult, VantageRound
from monitor.domain.text import printable
from monitor.exporters.prometheus import Exposition, MetricsServer, health_report
from monitor.metrics import SnapshotStore
from monitor.page.live import LivePage
from monitor.serve.scheduler import RoundExporter, RoundScheduler, probed_here

__all__ = ["JsonLogFormatter", "TextLogFormatter", "configure_logging", "serve"]

log = logging.getLogger("monitor.serve")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


class TextLogFormatter(logging.Formatter):
    """``time LEVEL logger: message`` on one line: whatever a message quotes from the network
    (a region name, a header, an error) is escaped (:func:`~monitor.domain.text.printable`), so
    it can neither forge a log line nor reach the terminal as control characters; a traceback's
    lines are indented under the record they belong to."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(stack_info)


def _indented(text: str) -> str:
    return "\n".join("    " + printable(line) for line in text.splitlines())


QUIET_LOGGERS = ("apscheduler", "httpx", "httpcore")
"""They log every job run and every request at INFO; their warnings (skipped runs) are kept."""

SECRET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
"""At DEBUG they log request headers and credentials (access key id, session token): WARNING
whatever ``--log-level`` says."""


def configure_logging(log_format: str, level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else TextLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for secret in SECRET_LOGGERS:
        logging.getLogger(secret).setLevel(logging.WARNING)


def _lab_details(world: Any) -> dict[str, Any]:
    """Whatever the lab handle says about how to reach it (e.g. its fault control endpoint)."""
    details = {}
    for name in ("control_address", "dns_address"):
        value = getattr(world, name, None)
        if value is not None:
            details[name] = str(value)
    return details


def _override(loaded: LoadedConfig, serve_settings: dict[str, float]) -> LoadedConfig:
    """The configuration with command-line overrides of its ``serve`` settings, validated."""
    if not serve_settings:
        return loaded
    config = loaded.config
    try:
        settings = validate_section(ServeSettings, {**asdict(config.serve), **serve_settings})
    except ValidationError as exc:
        fail("invalid serve settings: " + "; ".join(
            str(problem) for problem in validation_problems({}, exc, ("serve",))))
    return replace(loaded, config=replace(config, serve=settings))


@click.command("serve")
@config_options(config_help="Configuration file (SIGHUP reloads it).",
                lab_help="Serve against a lab scenario (built-in name or file), started for the "
                         "duration.")
@click.option("--listen", metavar="ADDRESS:PORT",
              help="Where /metrics and /healthz listen (default: serve.listen, 127.0.0.1:9465).")
@click.option("--interval", type=click.FloatRange(min=1), metavar="SECONDS",
              help="Override serve.interval_s (seconds between a vantage point's rounds).")
@click.option("--jitter", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Override serve.jitter_s (random delay added to each round's start; at "
                   "most half the interval is used).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object per line, one per round per vantage point.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def serve(config_file: str | None, lab: str | None, listen: str | None, interval: float | None,
          jitter: float | None, log_format: str, log_level: str) -> None:
    """Probe on a schedule and serve Prometheus metrics until SIGTERM or SIGINT."""
    configure_logging(log_format, log_level)
    with config_source(config_file, lab) as source:
        first, load = source.loaded, source.reload
        if source.lab is not None:
            log.info("lab world %r is up; its configuration is %s", lab, source.lab.config_path,
                     extra={"fields": {"event": "lab", "config_path": str(source.lab.config_path),
                                       **_lab_details(source.lab)}})
        overrides = {key: value for key, value in (("interval_s", interval), ("jitter_s", jitter))
                     if value is not None}
        loaded = _override(first, overrides)

        def reload() -> LoadedConfig:
            return _override(load(), overrides)

        for warning in loaded.warnings:
            log.warning("configuration: %s", warning)
        config = loaded.config
        if not probed_here(config):
            fail("every vantage point runs in an AWS region (its `region` is set): serve probes "
                 "only vantage points that run here; run it there, or drop `region`")
        store = SnapshotStore(config)
        exporters, close_exporters = _round_exporters(config, store)  # no SDK: fail before serving
        try:
            ip_ranges = load_ip_ranges(config.ip_ranges)
        except IpRangesError as exc:
            fail(f"ip_ranges: {exc}")
        process = CollectorRegistry()
        ProcessCollector(registry=process)
        exposition = Exposition(store.current, process=process)  # rendered once per snapshot
        address = listen or config.serve.listen
        try:
            server = MetricsServer(CollectorRegistry(),
                                   lambda: health_report(store.current(), time.time()),
                                   address, page=LivePage(store.current).body,
                                   exposition=exposition)
            server.start()
        except (ValueError, OSError) as exc:
            fail(f"cannot listen on {address}: {exc}")
        log.info("serving %s/ (routing page), %s/metrics and %s/healthz", server.url,
                 server.url, server.url,
                 extra={"fields": {"event": "listening", "url": server.url}})
        scheduler = RoundScheduler(loaded, store, reload=reload, ip_ranges=ip_ranges,
                                   exporters=exporters)
        try:
            asyncio.run(scheduler.run())
        finally:
            server.stop()
            close_exporters()


def _round_exporters(config: Config, store: SnapshotStore | None = None,
                     ) -> tuple[list[RoundExporter], Callable[[], None]]:
    """Exporters beside Prometheus: CloudWatch PutMetricData when ``cloudwatch.enabled`` (its
    failures are counted into ``store``, so ``/metrics`` shows them)."""
    if not config.cloudwatch.enabled:
        return [], lambda: None
    from monitor.aws.clients import AwsError
    from monitor.exporters.cloudwatch import CloudWatchPublisher

    try:
        publisher = CloudWatchPublisher.from_settings(config.cloudwatch, config.regions,
                                                      counters=store.count if store else None)
    except AwsError as exc:  # no boto3, or no usable region: stop now, not at every round
        fail(str(exc))
    publisher.start()
    log.info("sending rounds to CloudWatch namespace %s", config.cloudwatch.namespace)

    def export(result: VantageRound) -> None:
        publisher.export(RoundResult((result,), result.started_at, result.duration_seconds))

    return [export], publisher.close
