"""``routewatch alarms plan|apply``: the CloudWatch alarms of the long-running mode.

The alarms go to the region the metrics go to (``--region``, else ``cloudwatch.region``, else
the AWS default region). Regional Lambda probes get the same alarms from ``deploy/template.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from monitor.aws.alarms import (
    AlarmPlan,
    desired_alarms,
    existing_alarms,
    no_actions_warning,
    plan,
    topic_region_warning,
)
from monitor.aws.alarms import apply as apply_plan
from monitor.cli.output import fail, fail_config
from monitor.config import ConfigError, load_config

__all__ = ["alarms"]


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--config", "config_file", required=True,
                     type=click.Path(dir_okay=False), help="Configuration file."),
        click.option("--region", help="Region of the alarms (default: cloudwatch.region, "
                                      "then the AWS default region)."),
        click.option("--vantage", "vantage_points", multiple=True, metavar="NAME",
                     help="Only the alarms of these vantage points (repeatable)."),
        click.option("--prune", is_flag=True,
                     help="Also delete routewatch alarms the configuration no longer asks for."),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL",
                     help="CloudWatch endpoint, e.g. a moto server."),
    )):
        command = option(command)
    return command


def _plan(config_file: str, region: str | None, vantage_points: tuple[str, ...], prune: bool,
          endpoint_url: str | None) -> tuple[Any, AlarmPlan, str | None]:
    from monitor.aws.clients import AwsError, AwsSdkMissing, cloudwatch_client

    try:
        config = load_config(config_file).config
    except ConfigError as exc:
        fail_config(exc)
    unknown = [v for v in vantage_points if v not in config.vantage_points]
    if unknown:
        fail(f"unknown vantage point(s): {', '.join(unknown)}")
    silent = no_actions_warning(config)
    if silent:
        click.echo(f"warning: {silent}", err=True)
    target = region or config.cloudwatch.region
    hint = "" if target else " (give --region or set cloudwatch.region)"
    try:
        client = cloudwatch_client(target, endpoint_url=endpoint_url)
        target = client.meta.region_name
        warning = topic_region_warning(config, target)
        if warning:
            click.echo(f"warning: {warning}", err=True)
        desired = desired_alarms(config, vantage_points=list(vantage_points) or None)
        return client, plan(desired, existing_alarms(client, target), prune=prune), target
    except AwsError as exc:
        fail(str(exc) if isinstance(exc, AwsSdkMissing) else f"{exc}{hint}")


@click.group("alarms")
def alarms() -> None:
    """Plan or apply the CloudWatch alarms (misrouted, unknown, stale, unhealthy regions)."""


@alarms.command("plan")
@_options
def plan_command(config_file: str, region: str | None, vantage_points: tuple[str, ...],
                 prune: bool, endpoint_url: str | None) -> None:
    """Show what apply would create, update or delete; change nothing."""
    _, alarm_plan, target = _plan(config_file, region, vantage_points, prune, endpoint_url)
    click.echo(f"alarms in {target}:")
    for change in alarm_plan.changes:
        click.echo(f"  {change.describe()}")
        if change.spec is not None:
            click.echo(f"      {change.spec.rule()}")
    click.echo(alarm_plan.summary())


@alarms.command("apply")
@_options
def apply_command(config_file: str, region: str | None, vantage_points: tuple[str, ...],
                  prune: bool, endpoint_url: str | None) -> None:
    """Create or update the alarms so they match the configuration (idempotent)."""
    from monitor.aws.clients import AwsError

    client, alarm_plan, target = _plan(config_file, region, vantage_points, prune, endpoint_url)
    click.echo(f"alarms in {target}:")
    for change in alarm_plan.pending:
        click.echo(f"  {change.describe()}")
    try:
        apply_plan(client, alarm_plan, target)
    except AwsError as exc:
        fail(str(exc))
    click.echo(alarm_plan.summary() if not alarm_plan.pending
               else "applied: " + alarm_plan.summary())
