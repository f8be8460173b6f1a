"""deploy/iam/*.json allow exactly the AWS API actions each command calls: no more, no fewer.

The calls are recorded, not listed by hand: every botocore API call goes through
``BaseClient._make_api_call``, which a recorder wraps while each command runs for real, against
``moto_server`` on 127.0.0.1 and, for the probing parts, a lab world. (moto has no Route 53
``TestDNSAnswer``: the call is still made, and recorded, before moto answers that it does not
implement it.) A scan of monitor/'s source then checks that every AWS client method the code calls
was exercised by one of these commands, so a new call site cannot slip past the policies; and
cfn-lint checks each policy's action names and shape as an ``AWS::IAM::ManagedPolicy``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.client import BaseClient
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from click.testing import CliRunner
from conftest import LabWorld
from e2e.moto_server import MotoServer, moto_server  # noqa: F401 - the fixture
from rounds import sample_round

from monitor.aws.alarms import apply, desired_alarms, plan
from monitor.aws.clients import cloudwatch_client, lambda_client, route53_client
from monitor.cli import main
from monitor.cli.serve import _round_exporters
from monitor.config import parse_config
from monitor.metrics import SnapshotStore

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "deploy" / "iam"

# IAM names an action after its API operation, except where it does not
IAM_ACTION = {("lambda", "Invoke"): "lambda:InvokeFunction"}

ALARMS_CONFIG = """
service: {origin_name: global-alb.example.com}
regions: {eu-west-1: {addresses: [192.0.2.10]}, us-east-1: {addresses: [192.0.2.20]}}
vantage_points:
  laptop: {resolver: 192.0.2.53}
  retired: {resolver: 192.0.2.53}
cloudwatch: {region: eu-west-1, enabled: true}
alarms: {sns_topic_arn: "arn:aws:sns:eu-west-1:123456789012:routewatch"}
"""


def iam_action(service: str, operation: str) -> str:
    return IAM_ACTION.get((service, operation), f"{service}:{operation}")


@contextmanager
def recording() -> Iterator[set[str]]:
    """The IAM actions of every AWS API call made inside the block (any thread)."""
    calls: set[str] = set()
    original = BaseClient._make_api_call

    def record(client: BaseClient, operation: str, params: Any) -> Any:
        calls.add(iam_action(client.meta.service_model.service_name, operation))
        return original(client, operation, params)

    BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def lab_config(lab_world: LabWorld, tmp: Path) -> Path:
    """The healthy lab world's configuration, with a hosted zone for dns explain."""
    world = lab_world("healthy")
    document = yaml.safe_load(world.config_path.read_text(encoding="utf-8"))
    document.setdefault("alarms", {})["hosted_zone_id"] = "Z0123456789ABCDEFGHIJ"
    path = tmp / "lab.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def calls_by_command(moto_server: MotoServer, lab_world: LabWorld,  # noqa: F811
                     tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Run every command that talks to AWS once, in the variant that calls the most."""
    moto_server.reset()
    tmp = tmp_path_factory.mktemp("iam")
    endpoint = moto_server.endpoint_url
    alarms_file = tmp / "alarms.yaml"
    alarms_file.write_text(ALARMS_CONFIG, encoding="utf-8")
    # an alarm to prune: a vantage point the configuration no longer has
    before = parse_config(ALARMS_CONFIG).config
    client = cloudwatch_client("eu-west-1", endpoint_url=endpoint)
    apply(client, plan(desired_alarms(before), {}), "eu-west-1")
    alarms_file.write_text(ALARMS_CONFIG.replace("  retired: {resolver: 192.0.2.53}\n", "")
                           .replace("routewatch\"}", "routewatch-2\"}"), encoding="utf-8")
    lab = lab_config(lab_world, tmp)
    calls: dict[str, set[str]] = {}

    def run(name: str, action: Callable[[], Any]) -> None:
        with recording() as seen:
            action()
        calls[name] = seen

    run("alarms plan", lambda: run_cli("alarms", "plan", "--prune", "--config", str(alarms_file),
                                       "--endpoint-url", endpoint))
    applied = []
    run("alarms apply", lambda: applied.append(run_cli(
        "alarms", "apply", "--prune", "--config", str(alarms_file), "--endpoint-url", endpoint)))
    assert "to update" in applied[0].output, applied[0].output
    assert "to delete" in applied[0].output, applied[0].output
    run("dns explain", lambda: run_cli("dns", "explain", "--config", str(lab),
                                       "--endpoint-url", endpoint))
    run("check --remote", lambda: run_cli("check", "--config", str(lab), "--remote", "--json",
                                          "--remote-timeout", "10", "--endpoint-url", endpoint))

    def serve_round() -> None:
        config = parse_config(ALARMS_CONFIG).config
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL", endpoint)
            [export], close = _round_exporters(config, SnapshotStore(config))
            export(sample_round("laptop").vantage_points[0])
            close()

    run("serve", serve_round)
    return calls


COMMANDS = {
    "alarms-plan.json": "alarms plan",
    "alarms-apply.json": "alarms apply",
    "dns-explain.json": "dns explain",
    "check-remote.json": "check --remote",
    "serve-putmetricdata.json": "serve",
}


def policy_actions(name: str) -> set[str]:
    document = json.loads((POLICIES / name).read_text(encoding="utf-8"))
    actions: set[str] = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_every_policy_file_belongs_to_a_command() -> None:
    assert {p.name for p in POLICIES.glob("*.json")} == set(COMMANDS)


@pytest.mark.parametrize(("policy", "command"), list(COMMANDS.items()))
def test_each_policy_allows_exactly_what_its_command_calls(
        calls_by_command: dict[str, set[str]], policy: str, command: str) -> None:
    assert calls_by_command[command], f"{command} made no AWS call"
    assert policy_actions(policy) == calls_by_command[command]


def aws_methods() -> dict[str, str]:
    """Every API method of the clients the code makes (snake_case → IAM action)."""
    clients = (cloudwatch_client("eu-west-1"), lambda_client("eu-west-1", read_timeout_s=1),
               route53_client())
    methods: dict[str, str] = {}
    for client in clients:
        service = client.meta.service_model.service_name
        for method, operation in client.meta.method_to_api_mapping.items():
            methods[method] = iam_action(service, operation)
    return methods


def called_in_source(methods: dict[str, str]) -> dict[str, set[str]]:
    """IAM action → where in monitor/ an AWS client method (or paginator) is called."""
    found: dict[str, set[str]] = {}
    for file in sorted((ROOT / "monitor").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value)
            if name in methods:
                where = f"{file.relative_to(ROOT)}:{node.lineno}"
                found.setdefault(methods[name], set()).add(where)
    return found


def test_every_aws_call_in_the_code_is_one_a_command_made(
        calls_by_command: dict[str, set[str]], moto_server: MotoServer) -> None:  # noqa: F811
    in_source = called_in_source(aws_methods())
    recorded = set().union(*calls_by_command.values())
    assert set(in_source) == recorded, {a: in_source.get(a) for a in set(in_source) ^ recorded}


def test_the_policies_are_valid_iam_for_cloudformation() -> None:
    """cfn-lint knows every IAM action name and the policy grammar (a typo fails here)."""
    resources = {
        name.removesuffix(".json").title().replace("-", ""): {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"PolicyDocument": json.loads((POLICIES / name).read_text("utf-8"))}}
        for name in COMMANDS}
    template = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})
    problems = lint(template, config=ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.message}" for m in problems] == []
    broken = json.loads(template)
    broken["Resources"]["DnsExplain"]["Properties"]["PolicyDocument"]["Statement"][0][
        "Action"] = ["route53:TestDnsAnswerz"]
    assert lint(json.dumps(broken), config=ManualArgs(regions=["us-east-1"]))
