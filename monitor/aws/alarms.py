"""The CloudWatch alarms that matter, computed from the configuration and applied idempotently.

Per vantage point (the ``Probe`` dimension), on the metrics of :mod:`monitor.exporters.cloudwatch`:

* ``misrouted`` (per path): ``Misrouted`` ≥ 1 in M of N periods (``alarms.misrouted_datapoints``
  of ``alarms.misrouted_evaluation_periods``), so one jittery round pages nobody;
* ``unknown`` (per path): ``Unknown`` ≥ 1 in M of N periods: the path cannot be judged;
* ``stale``: fewer than one ``RoundCompleted`` per period for :data:`STALE_PERIODS` periods, with
  missing data *breaching*: a probe that stopped running alarms instead of going quiet;
* ``unhealthy``: ``UnhealthyRegions`` ≥ 1 in M of N periods: a region cannot be reached directly.

The other alarms treat missing data as not breaching: silence is the stale alarm's business.
Every alarm notifies ``alarms.sns_topic_arn`` (when set) on ALARM and on OK; without it the alarms
change state but notify nobody (:func:`no_actions_warning` says so).

:func:`plan` compares the wanted alarms with what ``DescribeAlarms`` returns; :func:`apply` makes
only the changes the plan lists, so a second run changes nothing. ``deploy/template.yaml`` defines
the same alarms for each regional Lambda probe (``tests/test_template.py`` checks they agree).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.config import Config
from monitor.core.model import Path
from monitor.core.paths import enabled_paths

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import PutMetricAlarmInputTypeDef

__all__ = [
    "ALARM_KINDS",
    "MANAGED_MARKER",
    "NAME_PREFIX",
    "STALE_PERIODS",
    "AlarmChange",
    "AlarmKind",
    "AlarmPlan",
    "AlarmSpec",
    "apply",
    "desired_alarms",
    "existing_alarms",
    "no_actions_warning",
    "plan",
    "topic_region_warning",
]

NAME_PREFIX = "routewatch-"
MANAGED_MARKER = "[managed by routewatch]"
STALE_PERIODS = 3


@dataclass(frozen=True)
class AlarmKind:
    """How one kind of alarm reads its metric; M-of-N kinds take the config's M and N."""

    kind: str
    metric: str
    per_path: bool
    statistic: str
    comparison: str
    threshold: float
    treat_missing_data: str
    m_of_n: bool
    summary: str


ALARM_KINDS: dict[str, AlarmKind] = {k.kind: k for k in (
    AlarmKind("misrouted", "Misrouted", True, "Maximum", "GreaterThanOrEqualToThreshold", 1.0,
              "notBreaching", True, "a worse region than the closest answers the {path} path"),
    AlarmKind("unknown", "Unknown", True, "Maximum", "GreaterThanOrEqualToThreshold", 1.0,
              "notBreaching", True, "the {path} path cannot be judged"),
    AlarmKind("stale", "RoundCompleted", False, "SampleCount", "LessThanThreshold", 1.0,
              "breaching", False, "no probe round has completed"),
    AlarmKind("unhealthy", "UnhealthyRegions", False, "Maximum", "GreaterThanOrEqualToThreshold",
              1.0, "notBreaching", True, "a region cannot be measured healthy"),
)}

_COMPARISON_SYMBOLS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}

# the fields of an alarm that apply compares and sets
_COMPARED = ("AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
             "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "Dimensions",
             "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
             "ComparisonOperator", "TreatMissingData")


@dataclass(frozen=True)
class AlarmSpec:
    """One wanted alarm, as PutMetricAlarm will receive it."""

    name: str
    kind: str
    probe: str
    path: str | None
    description: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str
    actions: tuple[str, ...] = ()

    def rule(self) -> str:
        """When the alarm fires and whom it tells, in one line (for ``alarms plan``)."""
        dimensions = " ".join(f"{n}={v}" for n, v in self.dimensions)
        comparison = _COMPARISON_SYMBOLS.get(self.comparison, self.comparison)
        notify = (", ".join(self.actions) + " on ALARM and OK") if self.actions \
            else "nobody (no actions)"
        return (f"{self.statistic}({self.namespace}/{self.metric} {dimensions}) "
                f"{comparison} {self.threshold:g} in {self.datapoints_to_alarm} of "
                f"{self.evaluation_periods} periods of {self.period_s} s; "
                f"missing data: {self.treat_missing_data}; notify: {notify}")

    def put_request(self) -> PutMetricAlarmInputTypeDef:
        request: PutMetricAlarmInputTypeDef = {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "ActionsEnabled": True,
            "OKActions": list(self.actions),
            "AlarmActions": list(self.actions),
            "InsufficientDataActions": [],
            "MetricName": self.metric,
            "Namespace": self.namespace,
            "Statistic": self.statistic,  # type: ignore[typeddict-item]
            "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
            "Period": self.period_s,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints_to_alarm,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,  # type: ignore[typeddict-item]
            "TreatMissingData": self.treat_missing_data,
        }
        return request


def _period(seconds: int) -> int:
    """CloudWatch accepts 10, 20, 30 or a multiple of 60 seconds (rounded up to one)."""
    for allowed in (10, 20, 30):
        if seconds <= allowed:
            return allowed
    return -(-seconds // 60) * 60


def desired_alarms(config: Config, *, vantage_points: Sequence[str] | None = None,
                   paths: Iterable[Path] | None = None) -> list[AlarmSpec]:
    """Every alarm the configuration asks for, in a stable order."""
    settings = config.alarms
    names = list(vantage_points) if vantage_points is not None else list(config.vantage_points)
    if paths is None:
        paths = enabled_paths(config)
    path_list = list(paths)
    actions = (settings.sns_topic_arn,) if settings.sns_topic_arn else ()
    period = _period(settings.period_s)
    n = settings.misrouted_evaluation_periods
    m = min(settings.misrouted_datapoints, n)
    specs: list[AlarmSpec] = []
    for probe in names:
        for kind in ALARM_KINDS.values():
            for path in (path_list if kind.per_path else [None]):
                label = f"{probe}-{path.value}-{kind.kind}" if path else f"{probe}-{kind.kind}"
                dims: tuple[tuple[str, str], ...] = (("Probe", probe),)
                if path is not None:
                    dims += (("Path", path.value),)
                evaluation, datapoints = (n, m) if kind.m_of_n else (STALE_PERIODS,
                                                                     STALE_PERIODS)
                what = kind.summary.format(path=path.value if path else "")
                specs.append(AlarmSpec(
                    name=f"{NAME_PREFIX}{label}",
                    kind=kind.kind,
                    probe=probe,
                    path=path.value if path else None,
                    description=f"routewatch probe {probe}: {what} "
                                f"({datapoints} of {evaluation} periods of {period} s). "
                                f"{MANAGED_MARKER}",
                    namespace=config.cloudwatch.namespace,
                    metric=kind.metric,
                    dimensions=dims,
                    statistic=kind.statistic,
                    period_s=period,
                    evaluation_periods=evaluation,
                    datapoints_to_alarm=datapoints,
                    threshold=kind.threshold,
                    comparison=kind.comparison,
                    treat_missing_data=kind.treat_missing_data,
                    actions=actions,
                ))
    return specs


# --- plan and apply ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmChange:
    action: str  # create | update | delete | unchanged
    name: str
    fields: tuple[str, ...] = ()
    spec: AlarmSpec | None = None

    def describe(self) -> str:
        symbol = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}[self.action]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{symbol} {self.action:<9} {self.name}{detail}"


@dataclass(frozen=True)
class AlarmPlan:
    changes: tuple[AlarmChange, ...] = field(default=())

    @property
    def pending(self) -> list[AlarmChange]:
        return [c for c in self.changes if c.action != "unchanged"]

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0, "unchanged": 0}
        for change in self.changes:
            out[change.action] += 1
        return out

    def summary(self) -> str:
        counts = self.counts()
        if not self.pending:
            return f"no changes: {counts['unchanged']} alarms up to date"
        return ", ".join(f"{n} to {a}" for a, n in counts.items() if n and a != "unchanged") + \
            f", {counts['unchanged']} unchanged"


def _normalise(alarm: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _COMPARED:
        value = alarm.get(key)
        if key == "Dimensions":
            value = sorted((d["Name"], d["Value"]) for d in (value or []))
        elif key in ("OKActions", "AlarmActions", "InsufficientDataActions"):
            value = sorted(value or [])
        elif key == "Threshold" and value is not None:
            value = float(value)
        elif key == "ActionsEnabled" and value is None:
            value = True
        elif key == "DatapointsToAlarm" and value is None:
            value = alarm.get("EvaluationPeriods")  # AWS's default: N of N
        elif key == "TreatMissingData" and value is None:
            value = "missing"
        out[key] = value
    return out


def existing_alarms(client: CloudWatchClient, region: str | None) -> dict[str, dict[str, Any]]:
    """The metric alarms whose names carry our prefix, by name."""
    from monitor.aws.clients import aws_errors

    found: dict[str, dict[str, Any]] = {}
    with aws_errors("cloudwatch", "DescribeAlarms", region):
        paginator = client.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNamePrefix=NAME_PREFIX, AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                found[alarm["AlarmName"]] = dict(alarm)
    return found


def plan(desired: Sequence[AlarmSpec], existing: Mapping[str, Mapping[str, Any]], *,
         prune: bool = False) -> AlarmPlan:
    """What apply would change. With ``prune``, our alarms that are no longer wanted (names with
    the prefix and descriptions with the marker) are deleted."""
    changes: list[AlarmChange] = []
    wanted = {spec.name for spec in desired}
    for spec in desired:
        current = existing.get(spec.name)
        if current is None:
            changes.append(AlarmChange("create", spec.name, spec=spec))
            continue
        want = _normalise(dict(spec.put_request()))
        have = _normalise(current)
        differing = tuple(k for k in _COMPARED if want[k] != have[k])
        changes.append(AlarmChange("update" if differing else "unchanged", spec.name,
                                   differing, spec))
    if prune:
        for name, alarm in sorted(existing.items()):
            if name not in wanted and MANAGED_MARKER in str(alarm.get("AlarmDescription", "")):
                changes.append(AlarmChange("delete", name))
    return AlarmPlan(tuple(changes))


def apply(client: CloudWatchClient, alarm_plan: AlarmPlan, region: str | None) -> AlarmPlan:
    """Make the plan's changes; returns the plan for reporting. Raises AwsError on failure."""
    from monitor.aws.clients import aws_errors

    for change in alarm_plan.pending:
        if change.action in ("create", "update"):
            assert change.spec is not None
            with aws_errors("cloudwatch", "PutMetricAlarm", region):
                client.put_metric_alarm(**change.spec.put_request())
    deletions = [c.name for c in alarm_plan.pending if c.action == "delete"]
    for start in range(0, len(deletions), 100):  # DeleteAlarms takes at most 100 names
        with aws_errors("cloudwatch", "DeleteAlarms", region):
            client.delete_alarms(AlarmNames=deletions[start:start + 100])
    return alarm_plan


def no_actions_warning(config: Config) -> str | None:
    """Alarms without an SNS topic change state in the console and tell no one."""
    if config.alarms.sns_topic_arn:
        return None
    return ("alarms.sns_topic_arn is not set: the alarms will have no actions and notify nobody "
            "when they fire. Set it in the configuration, e.g.\n"
            "  alarms:\n"
            "    sns_topic_arn: arn:aws:sns:<alarm region>:<account id>:<topic>\n"
            "(a topic in the alarms' own region)")


def topic_region_warning(config: Config, region: str | None) -> str | None:
    """An SNS topic in another region than its alarms cannot be an alarm action."""
    arn = config.alarms.sns_topic_arn
    if not arn or region is None:
        return None
    parts = arn.split(":")
    if len(parts) >= 6 and parts[2] == "sns" and parts[3] and parts[3] != region:
        return (f"alarms.sns_topic_arn is in {parts[3]} but the alarms are in {region}: "
                f"CloudWatch only notifies a topic in the alarm's own region")
    if len(parts) < 6 or parts[2] != "sns":
        return f"alarms.sns_topic_arn {arn!r} is not an SNS topic ARN"
    return None
