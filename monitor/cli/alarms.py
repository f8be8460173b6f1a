"""``routewatch alarms plan|apply``: the CloudWatch alarms of the long-running mode.

The alarms are made in one region (``--region``, else ``cloudwatch.region``), and only for the
vantage points whose metrics land there (:func:`monitor.aws.alarms.alarm_scope`): those ``serve``
sends there, and a regional probe of that region when named with ``--vantage``. Regional Lambda
probes get their alarms from their stack (``deploy/template.yaml``) in their own region.

Exit codes of ``plan``, for a CI gate (like ``terraform plan -detailed-exitcode``, but 2 is
already routewatch's error code)::

    0  the alarms match the configuration
    4  changes are pending: apply would create, update or delete alarms
    2  could not plan: bad configuration, alarms that could not be right, an AWS error

1 (the check's "routing problem", and what Python exits with when it crashes) and 3 (the check's
"nothing could be measured") are never used here, so a gate cannot mistake one for drift.
``apply`` exits 0 once the alarms match (changed or not), 2 on an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from monitor.aws.alarms import (
    AlarmConfigError,
    AlarmPlan,
    AlarmScope,
    alarm_period,
    alarm_scope,
    desired_alarms,
    existing_alarms,
    no_actions_warning,
    plan,
    round_gap_s,
    topic_region_warning,
)
from monitor.aws.alarms import apply as apply_plan
from monitor.cli.options import plan_services
from monitor.cli.output import fail, fail_config
from monitor.config import ConfigError, load_config

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

__all__ = ["EXIT_CHANGES_PENDING", "alarms"]

EXIT_CHANGES_PENDING = 4
"""``alarms plan``: apply would change something (0: nothing to change, 2: error)."""


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--config", "config_file", required=True,
                     type=click.Path(dir_okay=False), help="Configuration file."),
        click.option("--region", help="Region of the alarms (default: cloudwatch.region, where "
                                      "serve sends its metrics)."),
        click.option("--vantage", "vantage_points", multiple=True, metavar="NAME",
                     help="Only the alarms of these vantage points (repeatable); a regional "
                          "probe only in its own region."),
        click.option("--service", "services", multiple=True, metavar="NAME",
                     help="Only the alarms of these services (repeatable); --prune still keeps "
                          "every configured service's."),
        click.option("--prune", is_flag=True,
                     help="Also delete routewatch alarms that no configured vantage point owns "
                          "in this region."),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL",
                     help="CloudWatch endpoint, e.g. a moto server."),
    )):
        command = option(command)
    return command


def _plan(config_file: str, region: str | None, vantage_points: tuple[str, ...],
          services: tuple[str, ...], prune: bool,
          endpoint_url: str | None) -> tuple[CloudWatchClient, AlarmPlan, AlarmScope]:
    from monitor.aws.clients import AwsError, cloudwatch_client, require_sdk

    try:
        require_sdk("cloudwatch")  # say so before planning anything
    except AwsError as exc:
        fail(str(exc))
    try:
        config = load_config(config_file).config
    except ConfigError as exc:
        fail_config(exc)
    unknown = [v for v in vantage_points if v not in config.vantage_points]
    if unknown:
        fail(f"unknown vantage point(s): {', '.join(unknown)}")
    chosen = plan_services(config, services)
    target = region or config.cloudwatch.region
    if target is None:
        fail("cloudwatch.region is not set, so where serve sends its metrics is not known: set "
             "it, or give --region (the alarms must be in the region the metrics land in)")
    try:
        scope = alarm_scope(config, target, list(vantage_points) or None)
        desired = desired_alarms(config, vantage_points=scope.planned,
                                 services=chosen)
        owned = {spec.name for spec in desired_alarms(config, vantage_points=scope.owned)}
        period = alarm_period(config)
    except AlarmConfigError as exc:
        fail(str(exc))
    try:
        client = cloudwatch_client(target, endpoint_url=endpoint_url)
    except AwsError as exc:  # no SDK, a bad region or endpoint: say only that
        fail(str(exc))
    for line in scope.describe():
        click.echo(line)
    if scope.planned:
        click.echo(f"  period {period} s: whole minutes, at least the longest gap between two "
                   f"rounds ({round_gap_s(config):g} s), so every period holds a round")
    assumed = (f"cloudwatch.region is not set: serve sends its metrics to its host's default "
               f"region, and these alarms assume that is {target}"
               if config.cloudwatch.region is None and any(
                   config.vantage_points[name].region is None for name in scope.planned)
               else None)
    for warning in (assumed, no_actions_warning(config), topic_region_warning(config, target)):
        if warning:
            click.echo(f"warning: {warning}", err=True)
    try:
        return client, plan(desired, existing_alarms(client, target), prune=prune,
                            keep=owned), scope
    except AwsError as exc:
        fail(str(exc))


@click.group("alarms")
def alarms() -> None:
    """Plan or apply the CloudWatch alarms (misrouted, unknown, stale, unhealthy regions)."""


@alarms.command("plan")
@_options
def plan_command(config_file: str, region: str | None, vantage_points: tuple[str, ...],
                 services: tuple[str, ...],
                 prune: bool, endpoint_url: str | None) -> None:
    """Show what apply would create, update or delete; change nothing.

    Exit code 0: no changes; 4: changes pending; 2: error.
    """
    _, alarm_plan, _ = _plan(config_file, region, vantage_points, services, prune,
                             endpoint_url)
    for change in alarm_plan.changes:
        click.echo(f"  {change.describe()}")
        if change.spec is not None:
            click.echo(f"      {change.spec.rule()}")
    click.echo(alarm_plan.summary())
    if alarm_plan.pending:
        raise SystemExit(EXIT_CHANGES_PENDING)


@alarms.command("apply")
@_options
def apply_command(config_file: str, region: str | None, vantage_points: tuple[str, ...],
                  services: tuple[str, ...],
                  prune: bool, endpoint_url: str | None) -> None:
    """Create or update the alarms so they match the configuration (idempotent)."""
    from monitor.aws.clients import AwsError

    client, alarm_plan, scope = _plan(config_file, region, vantage_points, services, prune,
                                      endpoint_url)
    for change in alarm_plan.pending:
        click.echo(f"  {change.describe()}")
    try:
        apply_plan(client, alarm_plan, scope.region)
    except AwsError as exc:
        fail(str(exc))
    click.echo(alarm_plan.summary() if not alarm_plan.pending
               else "applied: " + alarm_plan.summary())
