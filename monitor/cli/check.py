"""``routewatch check``: one round, a table for people or ``--json`` for machines.

Exit codes: 0 every path ok (failover warns; ``--strict`` makes it 1), 1 a path is misrouted or
unknown, 2 the check could not run (bad configuration or usage), 3 nothing could be measured (no
region answered from any vantage point). Errors become their code in :mod:`monitor.cli.errors`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.aws.clients import AwsError
from monitor.aws.remote import (
    Invoker,
    RegionFailure,
    boto3_invoker,
    failure_document,
    failure_lines,
    remote_exit_code,
    run_remote,
    stderr_progress,
)
from monitor.cli.options import (
    config_options,
    config_source,
    json_option,
    plan_services,
    plan_vantage_points,
    service_option,
    vantage_option,
)
from monitor.cli.output import EXIT_NOTHING_MEASURED, fail
from monitor.cli.render import console_for_stdout, failover_warnings, render_round
from monitor.config import Config, local_vantage_points
from monitor.core.attribution import IpRanges, IpRangesError, load_ip_ranges
from monitor.core.model import RoundResult
from monitor.core.report import round_document
from monitor.domain.text import printable
from monitor.round.run import run_round

__all__ = ["check", "execute_round"]


def ip_ranges_or_warn(config: Config) -> IpRanges | None:
    """AWS ip-ranges are fallback evidence: when they cannot be had, say so and go on."""
    try:
        return load_ip_ranges(config.ip_ranges)
    except IpRangesError as exc:
        click.echo(f"warning: ip_ranges: {exc} (attributing by header and ALB addresses only)",
                   err=True)
        return None


def execute_round(config: Config, *, vantage_points: tuple[str, ...] = (),
                  services: tuple[str, ...] | None = None,
                  show_progress: bool = True) -> RoundResult:
    """Run one round with a progress bar on stderr (when it is a terminal)."""
    return asyncio.run(round_with_progress(
        config, plan_vantage_points(config, vantage_points), services=services,
        show_progress=show_progress))


async def round_with_progress(config: Config, names: list[str], *,
                              services: tuple[str, ...] | None = None,
                              show_progress: bool = True) -> RoundResult:
    """One round from ``names`` (for ``services``, checked by :func:`plan_services`; None: every
    one), as a coroutine (so remote invokes can run beside it)."""
    ip_ranges = ip_ranges_or_warn(config)
    console = Console(stderr=True)
    if not show_progress or not console.is_terminal:
        return await run_round(config, vantage_points=names, services=services,
                               ip_ranges=ip_ranges)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        tasks = {name: progress.add_task(f"probing from {name}", total=None) for name in names}

        def advance(vantage: str, done: int, planned: int) -> None:
            progress.update(tasks[vantage], completed=done, total=planned)

        return await run_round(config, vantage_points=names, services=services,
                               ip_ranges=ip_ranges, progress=advance)


@click.command("check")
@config_options()
@vantage_option
@service_option
@json_option
@click.option("--strict", is_flag=True, help="Treat failover as a problem (exit 1).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the JSON document to this file.")
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the routing page (self-contained HTML) to this file.")
@click.option("--remote", is_flag=True,
              help="Also invoke the probe deployed in every configured region (Lambda, "
                   "alarms.function_name) and merge their rounds with the local one.")
@click.option("--remote-timeout", type=click.FloatRange(1, 900), default=30.0, show_default=True,
              help="Seconds to wait for each regional probe.")
@click.option("--endpoint-url", hidden=True, help="AWS endpoint (tests: a moto server).")
def check(config_file: str | None, lab: str | None, vantage_points: tuple[str, ...],
          services: tuple[str, ...], as_json: bool, strict: bool, output: Path | None,
          html: Path | None, remote: bool, remote_timeout: float, endpoint_url: str | None) -> None:
    """Run one probe round and judge every path of every service (exit 0 ok, 1 routing problem
    in any service, 2 could not run, 3 nothing measured)."""
    failures: list[RegionFailure] = []
    for option, target in (("--output", output), ("--html", html)):
        if target is not None and not target.parent.is_dir():
            fail(f"{option} {target}: directory {target.parent} does not exist")
    with config_source(config_file, lab) as source:
        loaded = source.loaded
        config = loaded.config
        for warning in loaded.warnings:
            click.echo(f"warning: {warning}", err=True)
        chosen = plan_services(config, services)  # unknown: exit 2 before anything is probed
        if remote:
            try:
                invoker = boto3_invoker(config.alarms.function_name, endpoint_url=endpoint_url)
            except AwsError as exc:
                fail(str(exc))
            result, failures = asyncio.run(_remote_round(config, vantage_points, chosen,
                                                         remote_timeout, invoker, quiet=as_json))
        else:
            result = execute_round(config, vantage_points=vantage_points, services=chosen,
                                   show_progress=not as_json)
    document = round_document(result, strict=strict)
    code = remote_exit_code(result, failures, strict=strict)
    if remote:
        document["remote_failures"] = failure_document(failures)
        document["exit_code"] = code
    if as_json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_round(result, console_for_stdout())
        for line in failure_lines(failures):
            click.secho(f"remote {line}", fg="red", err=True)
    for warning in failover_warnings(result):
        click.secho(warning, fg="yellow", err=True)
    if output is not None:
        try:
            output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"--output {output}: cannot write: {exc.strerror}")
    if html is not None:
        from monitor.page import render_page

        try:
            html.write_text(render_page(document, now=time.time()), encoding="utf-8")
        except OSError as exc:
            fail(f"--html {html}: cannot write: {exc.strerror}")
    if code == EXIT_NOTHING_MEASURED:
        click.echo("error: no region could be measured from any vantage point", err=True)
    else:  # a service nothing of which could be measured, beside others that could
        for item in document["services"]:
            if item["exit_code"] == EXIT_NOTHING_MEASURED:
                click.echo(f"error: service {printable(item['name'])}: no region could be "
                           f"measured from any vantage point (alone it exits "
                           f"{EXIT_NOTHING_MEASURED})", err=True)
    raise SystemExit(code)


async def _remote_round(config: Config, vantage_points: tuple[str, ...],
                        services: tuple[str, ...] | None, timeout_s: float, invoker: Invoker, *,
                        quiet: bool) -> tuple[RoundResult, list[RegionFailure]]:
    """The local round (vantage points that run nowhere else) beside every regional probe; a
    regional round replaces the local vantage point of the same name."""
    local_names = (plan_vantage_points(config, vantage_points) if vantage_points
                   else local_vantage_points(config, os.environ.get("AWS_REGION")))
    local = (round_with_progress(config, local_names, services=services,
                                 show_progress=not quiet)
             if local_names else None)
    result, failures = await run_remote(config, local, timeout_s, invoker=invoker,
                                        progress=None if quiet else stderr_progress)
    if services:  # a regional probe judges every service: keep the ones asked for
        result = dataclasses.replace(result, vantage_points=tuple(
            v for v in result.vantage_points if v.service in services))
    return result, failures
