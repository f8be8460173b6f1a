"""deploy/dashboard.yaml deployed with CloudFormation (moto_server on 127.0.0.1): moto resolves the
intrinsic functions, and the dashboard body it stores must be valid JSON with one widget per
probe region in every row, each naming its region, and the alarm widget only when alarms are
given. (moto does not render dashboards; what CloudWatch itself accepts beyond the body's
structure is not verified here.)
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto_server import MotoServer, moto_server

from monitor.dashboards.cloudformation import ROWS

__all__ = ["moto_server"]

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "dashboard.yaml"
ALARMS = ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:routewatch-probe-dns-misrouted",
          "arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:routewatch-probe-stale"]


def deployed_body(server: MotoServer, stack: str, **parameters: str) -> dict[str, Any]:
    cloudformation = boto3.client("cloudformation", endpoint_url=server.endpoint_url,
                                  region_name="eu-west-1")
    cloudformation.create_stack(
        StackName=stack, TemplateBody=TEMPLATE.read_text(encoding="utf-8"),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    [status] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    assert status["StackStatus"] == "CREATE_COMPLETE", status
    cloudwatch = boto3.client("cloudwatch", endpoint_url=server.endpoint_url,
                              region_name="eu-west-1")
    body: dict[str, Any] = json.loads(
        cloudwatch.get_dashboard(DashboardName=parameters["DashboardName"])["DashboardBody"])
    return body


def test_three_probe_regions_and_alarms(moto_server: MotoServer) -> None:
    moto_server.reset()
    regions = ["us-east-1", "eu-west-1", "ap-southeast-1"]
    body = deployed_body(moto_server, "routewatch-dashboard", DashboardName="routewatch",
                         ProbeRegions=",".join(regions), AlarmArns=",".join(ALARMS))
    widgets = body["widgets"]
    metric = [w for w in widgets if w["type"] == "metric"]
    assert Counter(w["properties"]["region"] for w in metric) == dict.fromkeys(regions, len(ROWS))
    assert [w["properties"]["title"] for w in metric[::len(regions)]] == [r.title for r in ROWS]
    [alarm] = [w for w in widgets if w["type"] == "alarm"]
    assert alarm["properties"]["alarms"] == ALARMS
    texts = [w["properties"]["markdown"] for w in widgets if w["type"] == "text"]
    assert len(texts) == 1 + len(ROWS)
    assert all("us-east-1 · eu-west-1 · ap-southeast-1" in text for text in texts)
    assert all(w["width"] <= 24 for w in widgets)


def test_one_region_and_no_alarms(moto_server: MotoServer) -> None:
    moto_server.reset()
    body = deployed_body(moto_server, "routewatch-dashboard-one", DashboardName="rw-one",
                         ProbeRegions="eu-west-1")
    kinds = Counter(w["type"] for w in body["widgets"])
    assert kinds == {"text": 1 + len(ROWS), "metric": len(ROWS)}
    assert {w["properties"]["region"] for w in body["widgets"] if w["type"] == "metric"} == {
        "eu-west-1"}
