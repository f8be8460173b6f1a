"""``deploy/dashboard.yaml``: one ``AWS::CloudWatch::Dashboard`` in the home region whose widgets
read the EMF metrics of every probe region.

CloudFormation has no loop, so a widget per probe region is made with ``Fn::Join`` over the
``ProbeRegions`` parameter: a widget whose JSON holds the region once, as ``"region"``, is the
text before the region and the text after it, and joining the regions with *after + "," +
before* as the delimiter repeats it once per region. That is why each widget names its region
only there (its series are labelled with the ``Probe`` dimension, which is the region's name for
a probe deployed with ``deploy/template.yaml``'s defaults) and why the namespace and period are
fixed when the template is generated: a ``Fn::Join`` delimiter cannot hold a reference. Each row
of widgets is headed by the list of regions, left to right.

Metrics are found with ``SEARCH`` over the exact dimension set each metric is emitted with
(:data:`~monitor.exporters.cloudwatch.CLOUDWATCH_METRICS`), so every probe publishing in a region
shows up without naming it. ``AlarmArns`` (optional) fills an alarm status widget.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from monitor.config import CloudWatchSettings
from monitor.dashboards._layout import RUNBOOK_URL
from monitor.exporters.cloudwatch import CLOUDWATCH_METRICS
from probes.records import record

__all__ = ["PERIOD_S", "ROWS", "Search", "WidgetRow", "dashboard_template"]

PERIOD_S = 60
_WIDTH = 8  # three probe regions side by side; more wrap to the next line
_REGION = "@@probe-region@@"
_REGION_LIST = "@@probe-regions@@"
_ALARMS = "@@alarm-arns@@"

_REGIONS = {"Fn::Split": [",", {"Ref": "ProbeRegions"}]}
_FILLERS: dict[str, Any] = {
    _REGION_LIST: {"Fn::Join": [" · ", _REGIONS]},
    _ALARMS: {"Fn::Join": ['","', {"Fn::Split": [",", {"Ref": "AlarmArns"}]}]},
}

_ARN = r"arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:[0-9]{12}:alarm:[^,\"\\]+"
_ALARM_ARNS_PATTERN = f"^({_ARN}(,{_ARN})*)?$"

_PROBE, _PATH, _REGION_DIM = "${PROP('Dim.Probe')}", "${PROP('Dim.Path')}", "${PROP('Dim.Region')}"


@record
class Search:
    """One EMF metric, found by a search over exactly the dimensions it is emitted with."""

    metric: str
    statistic: str
    label: str

    def expression(self, namespace: str) -> str:
        spec = CLOUDWATCH_METRICS[self.metric]
        schema = ",".join((namespace, *spec.dimensions))
        return (f"SEARCH('{{{schema}}} MetricName=\"{spec.name}\"', '{self.statistic}', "
                f"{PERIOD_S})")


@record
class WidgetRow:
    """A row of widgets, one per probe region, each showing these searches."""

    title: str
    searches: tuple[Search, ...]
    view: str = "timeSeries"


ROWS: tuple[WidgetRow, ...] = (
    WidgetRow("Routing verdicts (1 = the round judged the path so)", (
        Search("Misrouted", "Maximum", f"misrouted {_PROBE} {_PATH}"),
        Search("Unknown", "Maximum", f"unknown {_PROBE} {_PATH}"),
        Search("Failover", "Maximum", f"failover {_PROBE} {_PATH}"))),
    WidgetRow("Served and expected region", (
        Search("ServedRegion", "Maximum", f"{_PROBE} {_PATH} served by {_REGION_DIM}"),
        Search("ExpectedRegion", "Maximum", f"{_PROBE} {_PATH} closest {_REGION_DIM}"))),
    WidgetRow("Routing penalty (ms)", (
        Search("RoutingPenalty", "Maximum", f"{_PROBE} {_PATH}"),)),
    WidgetRow("Round trip to each region (ms, latest)", (
        Search("RegionLatency", "Minimum", f"{_PROBE} → {_REGION_DIM}"),), view="bar"),
    WidgetRow("Region health (1 = answers the probe)", (
        Search("RegionHealthy", "Minimum", f"{_PROBE} → {_REGION_DIM}"),)),
    WidgetRow("Path latency (ms): dns lookup, origin and cdn first byte", (
        Search("PathLatency", "Average", f"{_PROBE} {_PATH}"),)),
    WidgetRow("Rounds, errors and unhealthy regions", (
        Search("RoundCompleted", "SampleCount", f"rounds {_PROBE}"),
        Search("RoundSuccess", "Minimum", f"success {_PROBE}"),
        Search("ProbeErrors", "Sum", f"errors {_PROBE}"),
        Search("UnhealthyRegions", "Maximum", f"unhealthy regions {_PROBE}"))),
    WidgetRow("Round duration (ms)", (
        Search("RoundDuration", "Maximum", _PROBE),)),
)
"""Every row of per-region widgets, in order."""


def _text(markdown: str, height: int) -> dict[str, Any]:
    return {"type": "text", "width": 24, "height": height, "properties": {"markdown": markdown}}


def _metric_widget(row: WidgetRow, namespace: str) -> dict[str, Any]:
    metrics = [[{"expression": search.expression(namespace), "id": f"e{i}",
                 "label": search.label}] for i, search in enumerate(row.searches, 1)]
    return {"type": "metric", "width": _WIDTH, "height": 6, "properties": {
        "region": _REGION, "title": row.title, "view": row.view, "stacked": False,
        "period": PERIOD_S, "metrics": metrics, "yAxis": {"left": {"min": 0}}}}


def _alarm_widget() -> dict[str, Any]:
    return {"type": "alarm", "width": 24, "height": 4, "properties": {
        "title": "routewatch alarms in every probe region", "alarms": [_ALARMS],
        "sortBy": "stateUpdatedTimestamp"}}


def _json(widget: dict[str, Any]) -> str:
    return json.dumps(widget, ensure_ascii=False, separators=(",", ":"))


def _filled(text: str) -> list[Any]:
    """``text`` with each region-list or alarm placeholder replaced by the joined parameter."""
    parts: list[Any] = [text]
    for placeholder, filler in _FILLERS.items():
        split: list[Any] = []
        for part in parts:
            if isinstance(part, str) and placeholder in part:
                pieces = part.split(placeholder)
                for piece in pieces[:-1]:
                    split += [piece, filler]
                split.append(pieces[-1])
            else:
                split.append(part)
        parts = split
    return parts


def _per_region(text: str) -> list[Any]:
    """A widget repeated for every probe region (see the module docstring)."""
    before, after = text.split(_REGION)  # exactly one region per widget, or this fails
    if any(placeholder in before + after for placeholder in _FILLERS):
        raise ValueError("a per-region widget holds no other placeholder")
    return [before, {"Fn::Join": [after + "," + before, _REGIONS]}, after]


def _joined(parts: Sequence[Any]) -> list[Any]:
    """Adjacent strings merged, so the template reads in as few pieces as possible."""
    out: list[Any] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif part != "":
            out.append(part)
    return out


def _body(namespace: str) -> dict[str, Any]:
    intro = _text(
        "# routewatch: routing from every probe region\n"
        f"Probe regions: {_REGION_LIST}. Metrics: namespace `{namespace}`, the EMF each "
        "regional probe prints; each widget reads one region (rows run left to right in the "
        f"order above). What to do when something is red: [the runbook]({RUNBOOK_URL}).", 2)
    parts: list[Any] = ['{"widgets":[', *_filled(_json(intro))]
    alarms = {"Fn::Join": ["", _joined([",", *_filled(_json(_alarm_widget()))])]}
    parts.append({"Fn::If": ["HasAlarms", alarms, ""]})
    for row in ROWS:
        parts += [",", *_filled(_json(_text(f"### {row.title}: {_REGION_LIST}", 1)))]
        parts += [",", *_per_region(_json(_metric_widget(row, namespace)))]
    parts.append("]}")
    return {"Fn::Join": ["", _joined(parts)]}


def dashboard_template(namespace: str | None = None) -> str:
    """The CloudFormation template of the CloudWatch dashboard, as YAML text."""
    namespace = namespace or CloudWatchSettings().namespace
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "routewatch: a CloudWatch dashboard in the home region showing the "
                       "routing metrics of every regional probe (deploy/template.yaml), and "
                       "their alarms.",
        "Parameters": {
            "DashboardName": {
                "Type": "String", "Default": "routewatch",
                "AllowedPattern": "^[A-Za-z0-9_-]{1,255}$",
                "Description": "Name of the dashboard."},
            "ProbeRegions": {
                "Type": "String",
                "AllowedPattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+(,[a-z]{2}(-[a-z]+)+-[0-9]+)*$",
                "Description": "The regions with a routewatch probe, comma-separated "
                               "(us-east-1,eu-west-1): one widget per region in every row."},
            "AlarmArns": {
                "Type": "String", "Default": "",
                "AllowedPattern": _ALARM_ARNS_PATTERN,
                "Description": "ARNs of the alarms to show, comma-separated, in any region "
                               "(the probe stacks' alarms; see deploy/README.md); empty: no "
                               "alarm widget."},
        },
        "Conditions": {"HasAlarms": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmArns"}, ""]}]}},
        "Resources": {"Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
            "DashboardName": {"Ref": "DashboardName"},
            "DashboardBody": _body(namespace)}}},
        "Outputs": {"DashboardUrl": {
            "Description": "The dashboard in the CloudWatch console",
            "Value": {"Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home"
                                 "?region=${AWS::Region}#dashboards/dashboard/${Dashboard}"}}},
    }
    header = ("# Generated by `routewatch dashboards build` from "
              "monitor/dashboards/cloudformation.py: edit that, not this.\n"
              "# Deploy in the home region:\n"
              "#   aws cloudformation deploy --template-file deploy/dashboard.yaml "
              "--stack-name routewatch-dashboard \\\n"
              "#     --parameter-overrides ProbeRegions=us-east-1,eu-west-1 AlarmArns=<arn,arn>\n")
    # one line per piece of the body (never folded inside its JSON), and no YAML aliases
    return header + yaml.dump(template, Dumper=_NoAliases, sort_keys=False, width=1 << 20,
                              allow_unicode=True)


class _NoAliases(yaml.SafeDumper):
    """A dumper that writes a repeated node in full each time (templates avoid YAML aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
