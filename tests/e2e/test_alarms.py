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
    AlarmConfigError,
    alarm_period,
    alarm_scope,
    apply,
    desired_alarms,
    existing_alarms,
    no_actions_warning,
    plan,
    round_gap_s,
    topic_region_warning,
)
from monitor.aws.clients import cloudwatch_client
from monitor.cli import main
from monitor.cli.alarms import EXIT_CHANGES_PENDING
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
cloudwatch: {{enabled: true, region: eu-west-1}}
alarms:
  sns_topic_arn: {TOPIC}
  misrouted_datapoints: 3
  misrouted_evaluation_periods: 5
serve: {{interval_s: 60, jitter_s: 0}}
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


def with_serve(text: str, serve: str, period: str | None = None) -> str:
    """CONFIG_TEXT with other serve settings and, if given, an explicit alarms.period_s."""
    text = text.replace("serve: {interval_s: 60, jitter_s: 0}", f"serve: {serve}")
    if period is not None:
        text = text.replace("  misrouted_evaluation_periods: 5\n",
                            f"  misrouted_evaluation_periods: 5\n  period_s: {period}\n")
    return text


@pytest.mark.parametrize(("serve", "period"), [
    ("{interval_s: 60, jitter_s: 5}", 120),     # a round every 60-65 s: a 60 s period can be empty
    ("{interval_s: 60, jitter_s: 0}", 60),
    ("{interval_s: 300, jitter_s: 5}", 360),    # the case: 60 s periods were mostly empty
    ("{interval_s: 30, jitter_s: 5}", 60),
    ("{interval_s: 10, jitter_s: 2}", 60),      # a 15 s deadline may skip a run: 22 s
    ("{interval_s: 3600, jitter_s: 30}", 3660),
])
def test_the_period_holds_a_round_and_is_whole_minutes(serve: str, period: int) -> None:
    specs = desired_alarms(config(with_serve(CONFIG_TEXT, serve)))
    assert {s.period_s for s in specs} == {period}
    stale = next(s for s in specs if s.kind == "stale")
    assert stale.rule().endswith(f"in 3 of 3 periods of {period} s; missing data: breaching; "
                                 f"notify: {TOPIC} on ALARM and OK")


def test_the_period_follows_the_longest_gap_between_rounds() -> None:
    cfg = config(with_serve(CONFIG_TEXT, "{interval_s: 300, jitter_s: 5}"))
    assert round_gap_s(cfg) == 305
    assert alarm_period(cfg) == 360


@pytest.mark.parametrize(("serve", "period", "message"), [
    ("{interval_s: 300, jitter_s: 5}", "60",
     "alarms.period_s 60 s is shorter than the longest gap between two rounds (305 s: "
     "serve.interval_s 300 s + serve.jitter_s 5 s): periods without a round would make the "
     "stale alarm fire on a running probe and the misrouted alarms miss real problems. Use at "
     "least 360, or leave alarms.period_s out to derive it"),
    ("{interval_s: 10, jitter_s: 0}", "30",
     "alarms.period_s 30: routewatch's metrics have one-minute resolution, so an alarm period "
     "must be a multiple of 60 s (at least 60 s here)"),
])
def test_a_period_that_cannot_be_right_is_refused(serve: str, period: str, message: str) -> None:
    with pytest.raises(AlarmConfigError) as caught:
        desired_alarms(config(with_serve(CONFIG_TEXT, serve, period)))
    assert str(caught.value) == message


def test_an_evaluation_longer_than_cloudwatch_allows_is_refused() -> None:
    text = with_serve(CONFIG_TEXT, "{interval_s: 21600, jitter_s: 0}").replace(
        "misrouted_evaluation_periods: 5", "misrouted_evaluation_periods: 30")
    with pytest.raises(AlarmConfigError, match=r"^alarm period 21600 s × 30 evaluation periods "
                                               r"is 648000 s, more than CloudWatch's 604800 s"):
        desired_alarms(config(text))


def test_a_longer_explicit_period_is_kept() -> None:
    text = with_serve(CONFIG_TEXT, "{interval_s: 60, jitter_s: 5}", "300")
    assert {s.period_s for s in desired_alarms(config(text))} == {300}


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


# Three vantage points: a laptop probed by serve (metrics to cloudwatch.region us-east-1) and two
# regional Lambda probes, each publishing in its own region.
REGIONAL_TEXT = CONFIG_TEXT.replace(
    "  laptop: {resolver: 192.0.2.53}\n",
    "  laptop: {resolver: 192.0.2.53}\n  us-east-1: {resolver: 192.0.2.53, region: us-east-1}\n",
).replace("cloudwatch: {enabled: true, region: eu-west-1}",
         "cloudwatch: {enabled: true, region: us-east-1}").replace(
    "arn:aws:sns:eu-west-1:", "arn:aws:sns:us-east-1:")


def names_of(cfg: Config, *vantage_points: str) -> set[str]:
    return {s.name for s in desired_alarms(cfg, vantage_points=list(vantage_points))}


def test_only_vantage_points_whose_metrics_land_in_the_region_are_planned() -> None:
    cfg = config(REGIONAL_TEXT)
    home = alarm_scope(cfg, "us-east-1")
    assert home.planned == ("laptop",)  # serve sends laptop's metrics to us-east-1
    assert home.owned == ("laptop", "us-east-1")  # us-east-1's own stack alarms there
    assert dict(home.elsewhere) == {
        "eu-west-1": "a regional probe: its metrics land in eu-west-1 (its stack creates its "
                     "alarms there)",
        "us-east-1": "a regional probe: its stack (deploy/template.yaml) creates its alarms in "
                     "us-east-1; name it with --vantage us-east-1 if serve runs it instead",
    }
    away = alarm_scope(cfg, "eu-west-1")
    assert away.planned == ()
    assert away.owned == ("eu-west-1",)
    assert dict(away.elsewhere)["laptop"] == (
        "serve sends its metrics to cloudwatch.region us-east-1 (plan them with --region "
        "us-east-1)")
    assert alarm_scope(cfg, "eu-west-1", ["eu-west-1"]).planned == ("eu-west-1",)
    with pytest.raises(AlarmConfigError, match=r"^eu-west-1: its metrics do not land in "
                                               r"us-east-1: a regional probe: its metrics land "
                                               r"in eu-west-1"):
        alarm_scope(cfg, "us-east-1", ["eu-west-1"])


def test_serve_without_cloudwatch_gets_no_alarms_that_could_only_see_missing_data() -> None:
    """A vantage point serve runs while ``cloudwatch.enabled`` is false publishes nothing: its
    stale alarm would be in ALARM from the start and its misrouted alarms could never fire."""
    cfg = config(REGIONAL_TEXT.replace("enabled: true, ", ""))
    home = alarm_scope(cfg, "us-east-1")
    assert home.planned == ()
    assert "cloudwatch.enabled is false" in dict(home.elsewhere)["laptop"]
    with pytest.raises(AlarmConfigError, match=r"^laptop: its metrics do not land in us-east-1: "
                                               r"run by serve, which sends no metrics"):
        alarm_scope(cfg, "us-east-1", ["laptop"])
    # the regional probes publish through their Lambda's EMF whatever serve does
    assert alarm_scope(cfg, "us-east-1", ["us-east-1"]).planned == ("us-east-1",)


def cli(moto_server: MotoServer, tmp_path: Path, text: str,  # noqa: F811
        *args: str) -> Result:
    file = tmp_path / "routewatch.yaml"
    file.write_text(text, encoding="utf-8")
    return CliRunner().invoke(main, ["alarms", *args, "--config", str(file),
                                     "--endpoint-url", moto_server.endpoint_url])


def alarm_names(moto_server: MotoServer, region: str) -> set[str]:  # noqa: F811
    client = cloudwatch_client(region, endpoint_url=moto_server.endpoint_url)
    return set(existing_alarms(client, region))


@pytest.mark.e2e
def test_apply_without_vantage_never_makes_alarms_for_metrics_of_another_region(
        moto_server: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    """Before: every vantage point's alarms were made in cloudwatch.region, so eu-west-1's stale
    alarm (its metrics land in eu-west-1) sat in ALARM in us-east-1 forever."""
    moto_server.reset()
    cfg = config(REGIONAL_TEXT)
    applied = cli(moto_server, tmp_path, REGIONAL_TEXT, "apply")
    assert applied.exit_code == 0, applied.output
    assert alarm_names(moto_server, "us-east-1") == names_of(cfg, "laptop")
    assert alarm_names(moto_server, "eu-west-1") == set()
    assert "not here: eu-west-1: a regional probe: its metrics land in eu-west-1" \
        in applied.output

    named_elsewhere = cli(moto_server, tmp_path, REGIONAL_TEXT, "apply", "--vantage",
                          "eu-west-1")
    assert named_elsewhere.exit_code == 2
    assert named_elsewhere.stderr.splitlines()[-1].startswith(
        "error: eu-west-1: its metrics do not land in us-east-1")
    assert alarm_names(moto_server, "us-east-1") == names_of(cfg, "laptop")

    in_its_region = cli(moto_server, tmp_path, REGIONAL_TEXT, "apply", "--region", "eu-west-1",
                        "--vantage", "eu-west-1")
    assert in_its_region.exit_code == 0, in_its_region.output
    assert alarm_names(moto_server, "eu-west-1") == names_of(cfg, "eu-west-1")


@pytest.mark.e2e
def test_prune_with_vantage_deletes_only_alarms_no_configured_vantage_point_owns(
        moto_server: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    """Before: ``--prune --vantage eu-west-1`` listed laptop's alarms (still configured) too."""
    moto_server.reset()
    cfg = config()
    client = cloudwatch_client("eu-west-1", endpoint_url=moto_server.endpoint_url)
    leftovers = config(CONFIG_TEXT.replace("  laptop: {resolver: 192.0.2.53}\n",
                                           "  laptop: {resolver: 192.0.2.53}\n"
                                           "  retired: {resolver: 192.0.2.53}\n"
                                           "  us-east-1: {resolver: 192.0.2.53, "
                                           "region: us-east-1}\n"))
    # what older versions left here: a removed vantage point's alarms and the alarms of a
    # regional probe of another region (metrics never land here)
    apply(client, plan(desired_alarms(leftovers), {}), "eu-west-1")
    client.put_metric_alarm(AlarmName="routewatch-someone-elses", MetricName="X",
                            Namespace="Other", Statistic="Maximum", Period=60,
                            EvaluationPeriods=1, Threshold=1,
                            ComparisonOperator="GreaterThanThreshold")

    planned = cli(moto_server, tmp_path, CONFIG_TEXT, "plan", "--prune", "--vantage",
                  "eu-west-1")
    assert planned.exit_code == 4, planned.output
    deleted = {line.split()[2] for line in planned.output.splitlines()
               if line.strip().startswith("- delete")}
    assert deleted == names_of(leftovers, "retired", "us-east-1")
    assert not deleted & names_of(cfg, "laptop")

    pruned = cli(moto_server, tmp_path, CONFIG_TEXT, "apply", "--prune", "--vantage",
                 "eu-west-1")
    assert pruned.exit_code == 0, pruned.output
    assert alarm_names(moto_server, "eu-west-1") == (
        names_of(cfg, "eu-west-1", "laptop") | {"routewatch-someone-elses"})


@pytest.mark.e2e
def test_cli_plan_exit_code_says_whether_changes_are_pending(
        moto_server: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    """Before: plan exited 0 with changes pending, so CI could not gate on drift."""
    moto_server.reset()
    args = ["--config", str(tmp_path / "routewatch.yaml"),
            "--endpoint-url", moto_server.endpoint_url]
    (tmp_path / "routewatch.yaml").write_text(CONFIG_TEXT, encoding="utf-8")
    runner = CliRunner()

    planned = runner.invoke(main, ["alarms", "plan", *args])
    assert planned.exit_code == EXIT_CHANGES_PENDING == 4, planned.output
    assert "+ create    routewatch-laptop-cdn-misrouted\n      Maximum(RouteWatch/Misrouted " \
        "Probe=laptop Path=cdn) >= 1 in 3 of 5 periods of 60 s; missing data: notBreaching; " \
        f"notify: {TOPIC} on ALARM and OK\n" in planned.stdout
    assert planned.stderr == ""
    assert planned.stdout.splitlines()[:2] == [
        "alarms in eu-west-1, for the vantage points whose metrics land there: laptop",
        "  not here: eu-west-1: a regional probe: its stack (deploy/template.yaml) creates its "
        "alarms in eu-west-1; name it with --vantage eu-west-1 if serve runs it instead"]
    assert "8 to create, 0 unchanged" in planned.output

    applied = runner.invoke(main, ["alarms", "apply", *args])
    assert applied.exit_code == 0, applied.output
    assert "applied: 8 to create, 0 unchanged" in applied.output

    again = runner.invoke(main, ["alarms", "apply", *args])
    assert again.exit_code == 0, again.output
    assert "no changes: 8 alarms up to date" in again.output
    assert "alarms in eu-west-1" in again.output

    clean = runner.invoke(main, ["alarms", "plan", *args])
    assert clean.exit_code == 0, clean.output

    (tmp_path / "routewatch.yaml").write_text(
        CONFIG_TEXT.replace("misrouted_datapoints: 3", "misrouted_datapoints: 2"),
        encoding="utf-8")
    drifted = runner.invoke(main, ["alarms", "plan", *args])
    assert drifted.exit_code == 4, drifted.output
    assert "7 to update, 1 unchanged" in drifted.output

    (tmp_path / "routewatch.yaml").write_text(
        with_serve(CONFIG_TEXT, "{interval_s: 300, jitter_s: 5}", "60"), encoding="utf-8")
    refused = runner.invoke(main, ["alarms", "plan", *args])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: alarms.period_s 60 s is shorter than the longest "
                                     "gap between two rounds (305 s")


def test_cli_without_a_region_to_put_the_alarms_in_refuses(tmp_path: Path) -> None:
    text = CONFIG_TEXT.replace("cloudwatch: {enabled: true, region: eu-west-1}\n",
                               "cloudwatch: {enabled: true}\n")
    result = _cli(tmp_path, text, "plan", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "error: cloudwatch.region is not set, so where serve sends its metrics is not known: "
        "set it, or give --region (the alarms must be in the region the metrics land in)")
    assumed = _cli(tmp_path, text, "plan", "--region", "eu-west-1",
                   "--endpoint-url", "http://127.0.0.1:9")
    assert ("warning: cloudwatch.region is not set: serve sends its metrics to its host's "
            "default region, and these alarms assume that is eu-west-1") in assumed.stderr


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


def test_the_plan_exit_codes_are_documented_where_ci_authors_look() -> None:
    root = Path(__file__).resolve().parents[2]
    deploy = (root / "deploy" / "README.md").read_text(encoding="utf-8")
    assert f"**{EXIT_CHANGES_PENDING}** when\n`apply` would change something" in deploy
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert f"`plan` exits 0 (no changes), {EXIT_CHANGES_PENDING} (changes\n  pending" in readme
    help_text = CliRunner().invoke(main, ["alarms", "plan", "--help"]).output
    assert f"Exit code 0: no changes; {EXIT_CHANGES_PENDING}: changes pending; 2: error." \
        in help_text


# Two services from the laptop: api (dns, origin, cdn) and app (no CDN, two regions of its own).
SERVICES_TEXT = CONFIG_TEXT.replace(
    "service: {origin_name: global-alb.example.com, cdn_name: app.example.com}\n",
    "services:\n"
    "  api: {origin_name: api-alb.example.com, cdn_name: api.example.com}\n"
    "  app: {origin_name: app-alb.example.com, regions: {eu-west-1: {addresses: [192.0.2.11]}}}\n"
).replace("  eu-west-1: {resolver: 192.0.2.53, region: eu-west-1}\n", "")


def test_each_service_has_its_own_alarms_on_its_own_series() -> None:
    specs = {s.name: s for s in desired_alarms(config(SERVICES_TEXT))}
    assert len(specs) == (3 * 2 + 2) + (2 * 2 + 2)  # api: three paths; app: dns and origin
    api = specs["routewatch-laptop-api-origin-misrouted"]
    assert api.dimensions == (("Probe", "laptop"), ("Service", "api"), ("Path", "origin"))
    assert (api.service, api.probe, api.path) == ("api", "laptop", "origin")
    assert api.description.startswith("routewatch probe laptop (api): a worse region")
    assert specs["routewatch-laptop-app-stale"].dimensions == (("Probe", "laptop"),
                                                               ("Service", "app"))
    assert "routewatch-laptop-app-cdn-misrouted" not in specs
    assert "routewatch-laptop-origin-misrouted" not in specs  # no alarm reads the mixed series


@pytest.mark.e2e
def test_services_alarms_apply_and_prune_against_moto(
        moto_server: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    moto_server.reset()
    applied = cli(moto_server, tmp_path, SERVICES_TEXT, "apply")
    assert applied.exit_code == 0, applied.output
    cfg = config(SERVICES_TEXT)
    assert alarm_names(moto_server, "eu-west-1") == names_of(cfg, "laptop")
    client = cloudwatch_client("eu-west-1", endpoint_url=moto_server.endpoint_url)
    described = existing_alarms(client, "eu-west-1")
    assert described["routewatch-laptop-app-dns-misrouted"]["Dimensions"] == [
        {"Name": "Probe", "Value": "laptop"}, {"Name": "Service", "Value": "app"},
        {"Name": "Path", "Value": "dns"}]
    again = cli(moto_server, tmp_path, SERVICES_TEXT, "plan")
    assert again.exit_code == 0, again.output
    # app retired: its alarms go with --prune, api's stay
    without_app = SERVICES_TEXT.replace(
        "  app: {origin_name: app-alb.example.com, regions: {eu-west-1: {addresses: "
        "[192.0.2.11]}}}\n", "")
    pruned = cli(moto_server, tmp_path, without_app, "apply", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert alarm_names(moto_server, "eu-west-1") == names_of(config(without_app), "laptop")
    assert all("-api-" in name for name in alarm_names(moto_server, "eu-west-1"))


@pytest.mark.e2e
def test_service_narrows_the_plan_and_prune_keeps_the_other_services(
        moto_server: MotoServer, tmp_path: Path) -> None:  # noqa: F811
    """``--service api`` creates only api's alarms; with ``--prune`` app's, still configured,
    are kept, and an unknown service is a one-line error."""
    moto_server.reset()
    cfg = config(SERVICES_TEXT)
    everything = {s.name for s in desired_alarms(cfg, vantage_points=["laptop"])}
    api = {s.name for s in desired_alarms(cfg, vantage_points=["laptop"], services=["api"])}
    assert api
    assert api < everything
    assert all("-api-" in name for name in api)
    applied = cli(moto_server, tmp_path, SERVICES_TEXT, "apply", "--service", "api")
    assert applied.exit_code == 0, applied.output
    assert alarm_names(moto_server, "eu-west-1") == api
    assert cli(moto_server, tmp_path, SERVICES_TEXT, "apply").exit_code == 0
    assert alarm_names(moto_server, "eu-west-1") == everything
    pruned = cli(moto_server, tmp_path, SERVICES_TEXT, "apply", "--service", "api", "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert "delete" not in pruned.output
    assert alarm_names(moto_server, "eu-west-1") == everything
    unknown = cli(moto_server, tmp_path, SERVICES_TEXT, "plan", "--service", "web")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: unknown service(s): web (configured: api, app)"


def test_two_owners_of_one_alarm_name_are_refused() -> None:
    """Vantage point dub-api with service x and dub with service api-x would share the name
    routewatch-dub-api-x-…: refused with both owners named, never one overwriting the other."""
    text = (SERVICES_TEXT.replace("  api: {", "  api-x: {").replace("  app: {", "  x: {")
            .replace("  laptop: {resolver: 192.0.2.53}\n",
                     "  dub: {resolver: 192.0.2.53}\n  dub-api: {resolver: 192.0.2.53}\n"))
    with pytest.raises(AlarmConfigError, match=r"^alarm routewatch-dub-api-x-\S+ would belong to "
                                               r"vantage point 'dub' \(service 'api-x'\) and to "
                                               r"vantage point 'dub-api' \(service 'x'\)"):
        desired_alarms(config(text))
