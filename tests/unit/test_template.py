"""deploy/template.yaml: cfn-lint passes, the role's actions are exactly the minimal set, the
runtime is allowed, and its alarms are the ones monitor/aws/alarms.py defines.

cfn-lint validates a SAM template against SAM's own schemas, which are loose (any Runtime string
passes, and IAM action names are not checked there). So the function and its schedule are also
rewritten into the plain CloudFormation resources SAM generates for them and linted again, which
checks the runtime, architecture, logging config and IAM action names against CloudFormation's
schemas. moto skips AWS::CloudWatch::Alarm, so nothing here deploys; this is what is checked.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from cfnlint.decode.decode import decode_str

from monitor.aws.alarms import ALARM_KINDS, STALE_PERIODS, desired_alarms
from monitor.config import AlarmSettings, CloudWatchSettings, parse_config

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"
ALLOWED_RUNTIMES = {"python3.12", "python3.13"}
PROBE_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, problems = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not problems, problems
    assert decoded is not None
    plain: dict[str, Any] = json.loads(json.dumps(decoded))
    return plain


def lint_text(text: str) -> list[str]:
    matches = lint(text, config=ManualArgs(regions=["us-east-1", "eu-west-1", "ap-south-1"]))
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]


def test_cfn_lint_passes_on_the_sam_template() -> None:
    assert lint_text(TEMPLATE.read_text(encoding="utf-8")) == []


def desugar(template: dict[str, Any]) -> dict[str, Any]:
    """The function and its schedule as the plain resources SAM turns them into."""
    plain = json.loads(json.dumps(template))
    del plain["Transform"]
    resources = plain["Resources"]
    function = resources["ProbeFunction"]["Properties"]
    events = function.pop("Events")
    function.pop("CodeUri")
    function["Code"] = {"S3Bucket": "deploy-bucket", "S3Key": "routewatch-lambda.zip"}
    resources["ProbeFunction"]["Type"] = "AWS::Lambda::Function"
    for name, event in events.items():
        assert event["Type"] == "Schedule"
        props = event["Properties"]
        resources[f"ProbeFunction{name}"] = {"Type": "AWS::Events::Rule", "Properties": {
            "Description": props["Description"], "ScheduleExpression": props["Schedule"],
            "State": "ENABLED" if props.get("Enabled", True) else "DISABLED",
            "Targets": [{"Arn": {"Fn::GetAtt": ["ProbeFunction", "Arn"]},
                         "Id": f"ProbeFunction{name}Target", "Input": props["Input"]}]}}
        resources[f"ProbeFunction{name}Permission"] = {
            "Type": "AWS::Lambda::Permission", "Properties": {
                "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "ProbeFunction"},
                "Principal": "events.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": [f"ProbeFunction{name}", "Arn"]}}}
    return plain


def test_cfn_lint_passes_on_the_plain_cloudformation(template: dict[str, Any]) -> None:
    assert lint_text(json.dumps(desugar(template))) == []


def test_the_desugared_lint_would_catch_a_bad_runtime_or_action(
        template: dict[str, Any]) -> None:
    broken = desugar(template)
    broken["Resources"]["ProbeFunction"]["Properties"]["Runtime"] = "python3.99"
    statement = broken["Resources"]["ProbeRole"]["Properties"]["Policies"][0][
        "PolicyDocument"]["Statement"][0]
    statement["Action"] = ["logs:PutLogEventz"]
    found = " ".join(lint_text(json.dumps(broken)))
    assert "python3.99" in found
    assert "putlogeventz" in found


def test_runtime_and_architecture(template: dict[str, Any]) -> None:
    function = template["Resources"]["ProbeFunction"]
    assert function["Type"] == "AWS::Serverless::Function"
    props = function["Properties"]
    assert props["Runtime"] in ALLOWED_RUNTIMES
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "monitor.aws.lambda_handler.handler"
    assert props["CodeUri"] == "../build/routewatch-lambda.zip"
    spec = importlib.util.spec_from_file_location("build_lambda_zip",
                                                  ROOT / "deploy" / "build_lambda_zip.py")
    assert spec is not None
    assert spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert props["Runtime"] == f"python{build.PYTHON_VERSION}"  # the zip is built for it
    assert build.PLATFORM.endswith("aarch64")


def test_the_role_allows_exactly_the_minimal_actions(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    roles = {n: r for n, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert list(roles) == ["ProbeRole"]
    role = roles["ProbeRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    actions: set[str] = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Resource"] == {"Fn::GetAtt": ["ProbeLogGroup", "Arn"]}
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    assert actions == PROBE_ACTIONS
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    function = resources["ProbeFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["ProbeRole", "Arn"]}
    assert "Policies" not in function  # SAM would add a second role's worth of permissions
    assert not [r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"]


def test_schedule_log_group_and_parameters(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    [event] = resources["ProbeFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {
        "Fn::FindInMap": ["Schedule", {"Ref": "ScheduleMinutes"}, "Expression"]}
    group = resources["ProbeLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${FunctionName}"}
    assert resources["ProbeFunction"]["Properties"]["LoggingConfig"]["LogGroup"] == {
        "Ref": "ProbeLogGroup"}
    parameters = template["Parameters"]
    assert {"ConfigFile", "AlarmTopicArn", "VantagePoint", "FunctionName"} <= set(parameters)
    assert parameters["FunctionName"]["Default"] == AlarmSettings().function_name
    for minutes, row in template["Mappings"]["Schedule"].items():
        unit = "minute" if minutes == "1" else "minutes"
        assert row == {"Expression": f"rate({minutes} {unit})", "PeriodSeconds": 60 * int(minutes)}


def test_the_alarms_are_those_of_monitor_alarms(template: dict[str, Any]) -> None:
    """With the template's defaults, each alarm matches desired_alarms() for the same probe."""
    config = parse_config("""
service: {origin_name: global-alb.example.com, cdn_name: app.example.com}
regions: {eu-west-1: {addresses: [192.0.2.10]}}
vantage_points: {eu-west-1: {resolver: 192.0.2.53, region: eu-west-1}}
""").config
    parameters = template["Parameters"]
    defaults = {"MisroutedEvaluationPeriods": parameters["MisroutedEvaluationPeriods"]["Default"],
                "MisroutedDatapoints": parameters["MisroutedDatapoints"]["Default"]}
    assert defaults == {"MisroutedEvaluationPeriods": AlarmSettings().misrouted_evaluation_periods,
                        "MisroutedDatapoints": AlarmSettings().misrouted_datapoints}
    # the stack's rounds come from its schedule, aligned to the minute like CloudWatch's periods
    period = template["Mappings"]["Schedule"][parameters["ScheduleMinutes"]["Default"]][
        "PeriodSeconds"]
    wanted = {spec.name.removeprefix("routewatch-eu-west-1-"): spec
              for spec in desired_alarms(config, period_s=period)}
    probe = {"Fn::If": ["ProbeNamedAfterRegion", {"Ref": "AWS::Region"},
                        {"Ref": "VantagePoint"}]}
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        suffix = props["AlarmName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        found[suffix] = props
    assert set(found) == set(wanted)

    def value(item: Any) -> Any:
        """A property with the template's parameter defaults filled in."""
        if isinstance(item, dict) and "Ref" in item and item["Ref"] in defaults:
            return defaults[item["Ref"]]
        if isinstance(item, dict) and "Fn::FindInMap" in item:
            return period
        return item

    for suffix, props in found.items():
        spec = wanted[suffix]
        kind = ALARM_KINDS[spec.kind]
        assert props["Namespace"] == CloudWatchSettings().namespace == spec.namespace
        assert props["MetricName"] == spec.metric
        assert props["Statistic"] == spec.statistic
        assert props["ComparisonOperator"] == spec.comparison
        assert float(props["Threshold"]) == spec.threshold
        assert props["TreatMissingData"] == spec.treat_missing_data
        assert value(props["Period"]) == spec.period_s
        assert value(props["EvaluationPeriods"]) == spec.evaluation_periods
        assert value(props["DatapointsToAlarm"]) == spec.datapoints_to_alarm
        if not kind.m_of_n:
            assert props["EvaluationPeriods"] == STALE_PERIODS
        dims = [(d["Name"], d["Value"]) for d in props["Dimensions"]]
        assert dims == [("Probe", probe)] + ([("Path", spec.path)] if spec.path else [])
        topic = {"Fn::If": ["HasTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
        assert props["AlarmActions"] == topic == props["OKActions"]


def test_the_summary_alarm_is_any_of_the_stack_alarms_and_notifies_nobody(
        template: dict[str, Any]) -> None:
    resources = template["Resources"]
    alarms = {name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    [summary] = [r["Properties"] for r in resources.values()
                 if r["Type"] == "AWS::CloudWatch::CompositeAlarm"]
    rule = summary["AlarmRule"]["Fn::Sub"]
    terms = [term.strip() for term in rule.split(" OR ")]
    assert sorted(terms) == sorted(f'ALARM("${{{name}}}")' for name in alarms)
    assert summary["ActionsEnabled"] is False
    assert "AlarmActions" not in summary
    assert template["Outputs"]["SummaryAlarmArn"]["Value"] == {
        "Fn::GetAtt": ["SummaryAlarm", "Arn"]}
