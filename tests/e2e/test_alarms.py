"""The alarms: what the configuration asks for, and plan/apply idempotently against moto server.

moto stores and describes alarms but never evaluates them; that alarms fire on the right data is
argued from their definitions (metric, statistic, M of N, missing-data treatment) checked here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from e2e.moto_server import MotoServer, moto_server  # noqa: F401 - the fixture

from monitor.aws.alarms import (
    MANAGED_MARKER,
    STALE_PERIODS,
    apply,
    desired_alarms,
    existing_alarms,
    no_actions_warning,
    plan,
    topic_region_warning,
)
from monitor.aws.clients import cloudwatch_client
from monitor.cli import main
from monitor.config import Config, parse_config

TOPIC = "arn:aws:sns:eu-west-1:123456789012:routewatch-alerts"
CONFIG_TEXT = f"""
service: {{origin_name: global-alb.example.com, cdn_name: app.example.com}}
regions:
  eu-west-1: {{addresses: [192.0.2.10]}}
  us-east-1: {{addresses: [192.0.2.20]}}
vantage_points:
  eu-west-1: {{resolver: 192.0.2.53, region: eu-west-1}}
  laptop: {{resolver: 192.0.2.53}}
cloudwatch: {{region: eu-west-1}}
alarms:
  sns_topic_arn: {TOPIC}
  misrouted_datapoints: 3
  misrouted_evaluation_periods: 5
  period_s: 60
"""


def config(text: str = CONFIG_TEXT) -> Config:
    return parse_config(text).config


def test_the_alarms_that_matter_per_vantage_point() -> None:
    specs = {s.name: s for s in desired_alarms(config())}
    per_probe = 3 * 2 + 2  # misrouted and unknown per path (dns, origin, cdn), stale, unhealthy
    assert len(specs) == 2 * per_probe
    misrouted = specs["routewatch-laptop-origin-misrouted"]
    assert (misrouted.metric, misrouted.statistic, misrouted.comparison, misrouted.threshold) == (
        "Misrouted", "Maximum", "GreaterThanOrEqualToThreshold", 1.0)
    assert (misrouted.datapoints_to_alarm, misrouted.evaluation_periods) == (3, 5)
    assert misrouted.dimensions == (("Probe", "laptop"), ("Path", "origin"))
    assert misrouted.treat_missing_data == "notBreaching"
    assert misrouted.actions == (TOPIC,)
    stale = specs["routewatch-eu-west-1-stale"]
    assert (stale.metric, stale.statistic, stale.comparison) == (
        "RoundCompleted", "SampleCount", "LessThanThreshold")
    assert stale.treat_missing_data == "breaching"
    assert stale.evaluation_periods == stale.datapoints_to_alarm == STALE_PERIODS
    unhealthy = specs["routewatch-eu-west-1-unhealthy"]
    assert unhealthy.metric == "UnhealthyRegions"
    unknown = specs["routewatch-eu-west-1-dns-unknown"]
    assert unknown.metric == "Unknown"
    assert all(MANAGED_MARKER in s.description for s in specs.values())


def test_no_cdn_name_means_no_cdn_alarms_and_no_topic_means_no_actions() -> None:
    text = CONFIG_TEXT.replace(", cdn_name: app.example.com", "").replace(
        f"  sns_topic_arn: {TOPIC}\n", "")
    specs = desired_alarms(config(text))
    assert not [s for s in specs if s.path == "cdn"]
    assert all(s.actions == () for s in specs)
    assert all(s.put_request()["AlarmActions"] == [] for s in specs)


def test_periods_are_ones_cloudwatch_accepts() -> None:
    for asked, used in ((10, 10), (25, 30), (45, 60), (61, 120), (300, 300)):
        text = CONFIG_TEXT.replace("period_s: 60", f"period_s: {asked}")
        assert {s.period_s for s in desired_alarms(config(text))} == {used}


def test_a_topic_in_another_region_is_flagged() -> None:
    assert topic_region_warning(config(), "eu-west-1") is None
    warning = topic_region_warning(config(), "us-east-1")
    assert warning is not None
    assert "eu-west-1" in warning


@pytest.mark.e2e
def test_apply_is_idempotent_against_moto(moto_server: MotoServer) -> None:  # noqa: F811
    moto_server.reset()
    client = cloudwatch_client("eu-west-1", endpoint_url=moto_server.endpoint_url)
    desired = desired_alarms(config())

    first = plan(desired, existing_alarms(client, "eu-west-1"))
    assert first.counts()["create"] == len(desired)
    apply(client, first, "eu-west-1")

    described = existing_alarms(client, "eu-west-1")
    assert set(described) == {s.name for s in desired}
    stale = described["routewatch-eu-west-1-stale"]
    assert stale["TreatMissingData"] == "breaching"
    assert stale["Statistic"] == "SampleCount"
    misrouted = described["routewatch-laptop-dns-misrouted"]
    assert (misrouted["DatapointsToAlarm"], misrouted["EvaluationPeriods"]) == (3, 5)
    assert misrouted["AlarmActions"] == [TOPIC] == misrouted["OKActions"]

    second = plan(desired, existing_alarms(client, "eu-west-1"))
    assert second.pending == []
    assert second.summary() == f"no changes: {len(desired)} alarms up to date"

    changed = desired_alarms(config(CONFIG_TEXT.replace("misrouted_datapoints: 3",
                                                        "misrouted_datapoints: 2")))
    third = plan(changed, existing_alarms(client, "eu-west-1"))
    updates = [c for c in third.pending if c.action == "update"]
    assert len(updates) == 2 * (3 * 2 + 1)  # every M-of-N alarm, nothing else
    assert all("DatapointsToAlarm" in c.fields for c in updates)
    apply(client, third, "eu-west-1")
    assert plan(changed, existing_alarms(client, "eu-west-1")).pending == []


@pytest.mark.e2e
def test_prune_deletes_only_our_alarms_no_longer_wanted(
        moto_server: MotoServer) -> None:  # noqa: F811
    moto_server.reset()
    client = cloudwatch_client("eu-west-1", endpoint_url=moto_server.endpoint_url)
    apply(client, plan(desired_alarms(config()), {}), "eu-west-1")
    client.put_metric_alarm(AlarmName="routewatch-someone-elses", MetricName="X",
                            Namespace="Other", Statistic="Maximum", Period=60,
                            EvaluationPeriods=1, Threshold=1,
                            ComparisonOperator="GreaterThanThreshold")
    only_eu = desired_alarms(config(), vantage_points=["eu-west-1"])
    pruned = plan(only_eu, existing_alarms(client, "eu-west-1"), prune=True)
    deleted = {c.name for c in pruned.pending if c.action == "delete"}
    assert deleted == {s.name for s in desired_alarms(config(), vantage_points=["laptop"])}
    apply(client, pruned, "eu-west-1")
    remaining = set(existing_alarms(client, "eu-west-1"))
    assert remaining == {s.name for s in only_eu} | {"routewatch-someone-elses"}


@pytest.mark.e2e
def test_cli_plan_then_apply_twice(moto_server: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    moto_server.reset()
    file = tmp_path / "routewatch.yaml"
    file.write_text(CONFIG_TEXT, encoding="utf-8")
    args = ["--config", str(file), "--endpoint-url", moto_server.endpoint_url]
    runner = CliRunner()

    planned = runner.invoke(main, ["alarms", "plan", *args])
    assert planned.exit_code == 0, planned.output
    assert "+ create    routewatch-laptop-cdn-misrouted\n      Maximum(RouteWatch/Misrouted " \
        "Probe=laptop Path=cdn) >= 1 in 3 of 5 periods of 60 s; missing data: notBreaching; " \
        f"notify: {TOPIC} on ALARM and OK\n" in planned.stdout
    assert planned.stderr == ""
    assert "16 to create, 0 unchanged" in planned.output

    applied = runner.invoke(main, ["alarms", "apply", *args])
    assert applied.exit_code == 0, applied.output
    assert "applied: 16 to create, 0 unchanged" in applied.output

    again = runner.invoke(main, ["alarms", "apply", *args])
    assert again.exit_code == 0, again.output
    assert "no changes: 16 alarms up to date" in again.output
    assert "alarms in eu-west-1" in again.output


def test_cli_reports_an_unreachable_endpoint_with_where(tmp_path: Path) -> None:
    file = tmp_path / "routewatch.yaml"
    file.write_text(CONFIG_TEXT, encoding="utf-8")
    result = CliRunner().invoke(main, ["alarms", "plan", "--config", str(file),
                                       "--endpoint-url", "http://127.0.0.1:9"],
                                env={"AWS_ACCESS_KEY_ID": "testing",
                                     "AWS_SECRET_ACCESS_KEY": "testing",
                                     "AWS_MAX_ATTEMPTS": "1"})
    assert result.exit_code == 2
    assert "cloudwatch.DescribeAlarms in eu-west-1: cannot reach the endpoint" in result.output


def test_each_alarm_says_its_metric_threshold_m_of_n_missing_data_and_actions() -> None:
    specs = {s.name: s for s in desired_alarms(config())}
    assert specs["routewatch-laptop-origin-misrouted"].rule() == (
        "Maximum(RouteWatch/Misrouted Probe=laptop Path=origin) >= 1 in 3 of 5 periods of 60 s; "
        f"missing data: notBreaching; notify: {TOPIC} on ALARM and OK")
    assert specs["routewatch-laptop-stale"].rule() == (
        "SampleCount(RouteWatch/RoundCompleted Probe=laptop) < 1 in 3 of 3 periods of 60 s; "
        f"missing data: breaching; notify: {TOPIC} on ALARM and OK")
    silent = desired_alarms(config(CONFIG_TEXT.replace(f"  sns_topic_arn: {TOPIC}\n", "")))
    assert silent[0].rule().endswith("notify: nobody (no actions)")


def test_no_topic_is_warned_about() -> None:
    assert no_actions_warning(config()) is None
    warning = no_actions_warning(config(CONFIG_TEXT.replace(f"  sns_topic_arn: {TOPIC}\n", "")))
    assert warning is not None
    assert "alarms.sns_topic_arn is not set" in warning
    assert "no actions" in warning


def _cli(tmp_path: Path, text: str, *args: str) -> Result:
    file = tmp_path / "routewatch.yaml"
    file.write_text(text, encoding="utf-8")
    return CliRunner().invoke(main, ["alarms", *args, "--config", str(file)],
                              env={"AWS_ACCESS_KEY_ID": "testing",
                                   "AWS_SECRET_ACCESS_KEY": "testing",
                                   "AWS_MAX_ATTEMPTS": "1"})


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_cli_warns_on_stderr_that_alarms_without_a_topic_notify_nobody(
        tmp_path: Path, command: str) -> None:
    text = CONFIG_TEXT.replace(f"  sns_topic_arn: {TOPIC}\n", "")
    result = _cli(tmp_path, text, command, "--endpoint-url", "http://127.0.0.1:9")
    assert "warning: alarms.sns_topic_arn is not set: the alarms will have no actions" \
        in result.stderr
    assert "sns_topic_arn: arn:aws:sns:" in result.stderr
    assert "warning" not in result.stdout
    with_topic = _cli(tmp_path, CONFIG_TEXT, command, "--endpoint-url", "http://127.0.0.1:9")
    assert "sns_topic_arn is not set" not in with_topic.stderr


def test_cli_an_endpoint_that_is_not_a_url_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    result = _cli(tmp_path, CONFIG_TEXT, "plan", "--endpoint-url", "notaurl")
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == (
        "error: cloudwatch.create_client in eu-west-1: 'notaurl' is not an endpoint URL "
        "(give a full URL such as http://127.0.0.1:5000)")


def test_cli_a_region_that_is_not_an_aws_region_is_a_clear_error_with_exit_2(
        tmp_path: Path) -> None:
    result = _cli(tmp_path, CONFIG_TEXT, "plan", "--region", "mars-1",
                  "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "error: cloudwatch.create_client in mars-1: 'mars-1' is not an AWS region name such as "
        "eu-west-1")
