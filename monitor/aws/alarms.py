"""The CloudWatch alarms that matter, computed from the configuration and applied idempotently.

Per vantage point (the ``Probe`` dimension) — and, for a configuration with several ``services``,
per vantage point and service (``Probe`` and ``Service``: each service's own series, so one
service's misroute alarms as that service's) — on the metrics of
:mod:`monitor.exporters.cloudwatch`:

* ``misrouted`` (per path): ``Misrouted`` ≥ 1 in M of N periods (``alarms.misrouted_datapoints``
  of ``alarms.misrouted_evaluation_periods``), so one jittery round pages nobody;
* ``unknown`` (per path): ``Unknown`` ≥ 1 in M of N periods: the path cannot be judged;
* ``stale``: fewer than one ``RoundCompleted`` per period for :data:`STALE_PERIODS` periods, with
  missing data *breaching*: a probe that stopped running alarms instead of going quiet;
* ``unhealthy``: ``UnhealthyRegions`` ≥ 1 in M of N periods: a region cannot be reached directly.

The other alarms treat missing data as not breaching: silence is the stale alarm's business.
Every alarm notifies ``alarms.sns_topic_arn`` (when set) on ALARM and on OK; without it the alarms
change state but notify nobody (:func:`no_actions_warning` says so).

**Where.** An alarm sees only the metrics of its own region, so the alarms of a vantage point are
planned only in the region its metrics land in (:func:`alarm_scope`): a vantage point without a
``region`` is probed by ``routewatch serve``, which sends its metrics to ``cloudwatch.region``; a
vantage point with a ``region`` is a regional probe whose Lambda publishes in that region, and
whose stack (``deploy/template.yaml``) creates its alarms there, with periods from the stack's
schedule. It is planned here only when named (``serve`` on a host in that region runs it), and
only in that region. Nothing else is planned, so no alarm waits for metrics that never come.

**Period** (:func:`alarm_period`): every period must hold at least one round, or the stale alarm
reads the empty periods as a stopped probe and the M-of-N alarms miss real problems. So the period
is the longest gap between two rounds of ``serve`` (interval, plus rounds skipped while one outlasts
the interval, plus jitter), rounded up to whole minutes (the metrics have one-minute resolution);
an explicit ``alarms.period_s`` shorter than that is refused.

:func:`plan` compares the wanted alarms with what ``DescribeAlarms`` returns; :func:`apply` makes
only the changes the plan lists, so a second run changes nothing. Pruning deletes only alarms that
routewatch made (:data:`MANAGED_MARKER`) and that no configured vantage point owns.
``deploy/template.yaml`` defines the same alarms for each regional Lambda probe
(``tests/test_template.py`` checks they agree).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from monitor.config import DEFAULT_SERVICE, Config
from monitor.core.model import Path
from monitor.core.paths import enabled_paths
from probes.errors import RoutewatchError
from probes.records import record

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import PutMetricAlarmInputTypeDef

__all__ = [
    "ALARM_KINDS",
    "MANAGED_MARKER",
    "METRIC_RESOLUTION_S",
    "NAME_PREFIX",
    "STALE_PERIODS",
    "AlarmChange",
    "AlarmConfigError",
    "AlarmKind",
    "AlarmPlan",
    "AlarmScope",
    "AlarmSpec",
    "alarm_period",
    "alarm_scope",
    "apply",
    "desired_alarms",
    "existing_alarms",
    "no_actions_warning",
    "plan",
    "round_gap_s",
    "topic_region_warning",
]

NAME_PREFIX = "routewatch-"
MANAGED_MARKER = "[managed by routewatch]"
STALE_PERIODS = 3
METRIC_RESOLUTION_S = 60
"""Every metric is published at standard (one-minute) resolution, so a period is whole minutes."""
_MAX_EVALUATION_S = 86_400  # CloudWatch: period × N at most one day below one-hour periods
_MAX_EVALUATION_LONG_S = 604_800  # ... and at most seven days with longer periods


class AlarmConfigError(RoutewatchError, ValueError):
    """The configuration asks for alarms that could not be right; the message says what to
    change."""


@record
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


@record
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
    service: str | None = None  # one of several services (None: the configuration's one)

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


def round_gap_s(config: Config) -> float:
    """The longest time between the starts of two rounds of one vantage point under ``serve``:
    the interval, once more for every run skipped while a round outlasts it (a job never overlaps
    itself), plus the jitter (as configured: ``serve`` may use less, never more)."""
    interval = config.serve.interval_s
    skipped = math.floor(config.probe.round_deadline_s / interval)
    return interval * (1 + skipped) + config.serve.jitter_s


def alarm_period(config: Config) -> int:
    """The alarms' period in seconds: whole minutes, at least :func:`round_gap_s`, so that every
    period holds a round. An explicit ``alarms.period_s`` that cannot be right is refused."""
    gap = round_gap_s(config)
    needed = METRIC_RESOLUTION_S * math.ceil(gap / METRIC_RESOLUTION_S)
    why = (f"serve.interval_s {config.serve.interval_s:g} s"
           + (f" (rounds may take up to probe.round_deadline_s "
              f"{config.probe.round_deadline_s:g} s)"
              if config.probe.round_deadline_s >= config.serve.interval_s else "")
           + f" + serve.jitter_s {config.serve.jitter_s:g} s")
    period = needed
    if config.alarms.period_s is not None:
        period = config.alarms.period_s
        if period % METRIC_RESOLUTION_S:
            raise AlarmConfigError(
                f"alarms.period_s {period}: routewatch's metrics have one-minute resolution, so "
                f"an alarm period must be a multiple of 60 s (at least {needed} s here)")
        if period < needed:
            raise AlarmConfigError(
                f"alarms.period_s {period} s is shorter than the longest gap between two rounds "
                f"({gap:g} s: {why}): periods without a round would make the stale alarm fire "
                f"on a running probe and the misrouted alarms miss real problems. Use at least "
                f"{needed}, or leave alarms.period_s out to derive it")
    longest = max(STALE_PERIODS, config.alarms.misrouted_evaluation_periods)
    limit = _MAX_EVALUATION_S if period < 3600 else _MAX_EVALUATION_LONG_S
    if period * longest > limit:
        raise AlarmConfigError(
            f"alarm period {period} s × {longest} evaluation periods is {period * longest} s, "
            f"more than CloudWatch's {limit} s: shorten serve.interval_s ({why}) or "
            f"alarms.misrouted_evaluation_periods")
    return period


def desired_alarms(config: Config, *, vantage_points: Sequence[str] | None = None,
                   paths: Iterable[Path] | None = None,
                   period_s: int | None = None,
                   services: Sequence[str] | None = None) -> list[AlarmSpec]:
    """Every alarm the configuration asks for (of the named ``services``, default all), in a
    stable order. ``period_s`` defaults to :func:`alarm_period` (``serve``'s rounds); a Lambda
    stack passes its schedule's."""
    settings = config.alarms
    names = list(vantage_points) if vantage_points is not None else list(config.vantage_points)
    path_list = list(paths) if paths is not None else None
    actions = (settings.sns_topic_arn,) if settings.sns_topic_arn else ()
    period = alarm_period(config) if period_s is None else period_s
    n = settings.misrouted_evaluation_periods
    m = min(settings.misrouted_datapoints, n)
    # each service as the metrics name it (None: the singular one), with its paths
    per_service = [(None if service == DEFAULT_SERVICE else service,
                    enabled_paths(view) if path_list is None else path_list)
                   for service, view in config.service_views(services or None)]
    specs: list[AlarmSpec] = []
    for probe in names:
        for own, own_paths in per_service:
            for kind in ALARM_KINDS.values():
                for path in (own_paths if kind.per_path else [None]):
                    specs.append(_alarm(config, kind, probe, own, path, period, (n, m),
                                        actions))
    _refuse_name_clashes(specs)
    return specs


def _refuse_name_clashes(specs: Sequence[AlarmSpec]) -> None:
    """Names join vantage point and service with ``-``, which both may contain: ``dub-api`` and
    service ``x``, ``dub`` and service ``api-x`` would share alarms. Refused, not overwritten."""
    owners: dict[str, tuple[str, str | None]] = {}
    for spec in specs:
        owner = (spec.probe, spec.service)
        first = owners.setdefault(spec.name, owner)
        if first != owner:
            raise AlarmConfigError(
                f"alarm {spec.name} would belong to vantage point {first[0]!r} (service "
                f"{first[1]!r}) and to vantage point {owner[0]!r} (service {owner[1]!r}): "
                f"rename one of them")


def _alarm(config: Config, kind: AlarmKind, probe: str, service: str | None, path: Path | None,
           period: int, n_of_m: tuple[int, int], actions: tuple[str, ...]) -> AlarmSpec:
    """One alarm of a vantage point (and of one of several services: ``Service`` dimension and
    name part)."""
    who = probe if service is None else f"{probe}-{service}"
    label = f"{who}-{path.value}-{kind.kind}" if path else f"{who}-{kind.kind}"
    dims: tuple[tuple[str, str], ...] = (("Probe", probe),)
    if service is not None:
        dims += (("Service", service),)
    if path is not None:
        dims += (("Path", path.value),)
    evaluation, datapoints = n_of_m if kind.m_of_n else (STALE_PERIODS, STALE_PERIODS)
    what = kind.summary.format(path=path.value if path else "")
    return AlarmSpec(
        name=f"{NAME_PREFIX}{label}",
        kind=kind.kind,
        probe=probe,
        path=path.value if path else None,
        description=f"routewatch probe {probe}{f' ({service})' if service else ''}: {what} "
                    f"({datapoints} of {evaluation} periods of {period} s). {MANAGED_MARKER}",
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
        service=service,
    )


# --- where ---------------------------------------------------------------------------------------


@record
class AlarmScope:
    """Which vantage points' alarms belong in one region.

    ``planned``: the ones to create or update there; ``owned``: every vantage point whose metrics
    land there (pruning keeps their alarms); ``elsewhere``: the others, each with where its metrics
    land instead."""

    region: str
    planned: tuple[str, ...]
    owned: tuple[str, ...]
    elsewhere: tuple[tuple[str, str], ...] = ()

    def describe(self) -> list[str]:
        """What is planned where, in a few lines (``alarms plan`` prints them)."""
        lines = [f"alarms in {self.region}, for the vantage points whose metrics land there: "
                 + (", ".join(self.planned) or "none")]
        lines += [f"  not here: {name}: {why}" for name, why in self.elsewhere]
        return lines


def alarm_scope(config: Config, region: str,
                requested: Collection[str] | None = None) -> AlarmScope:
    """The vantage points whose alarms belong in ``region`` (see the module docstring).

    ``requested`` (``--vantage``) narrows the plan; naming a vantage point whose metrics land in
    another region raises :class:`AlarmConfigError` saying where they land.
    """
    serve_region = config.cloudwatch.region or region
    owned: list[str] = []
    default: list[str] = []
    elsewhere: dict[str, str] = {}
    for name, vantage in config.vantage_points.items():
        if vantage.region is None:
            if not config.cloudwatch.enabled:
                elsewhere[name] = ("run by serve, which sends no metrics to CloudWatch "
                                   "(cloudwatch.enabled is false): its alarms would only ever "
                                   "see missing data")
            elif serve_region == region:
                owned.append(name)
                default.append(name)
            else:
                elsewhere[name] = (f"serve sends its metrics to cloudwatch.region {serve_region} "
                                   f"(plan them with --region {serve_region})")
        elif vantage.region == region:
            owned.append(name)
            elsewhere[name] = (f"a regional probe: its stack (deploy/template.yaml) creates its "
                               f"alarms in {region}; name it with --vantage {name} if serve runs "
                               f"it instead")
        else:
            elsewhere[name] = (f"a regional probe: its metrics land in {vantage.region} "
                               f"(its stack creates its alarms there)")
    if requested is None:
        planned = default
    else:
        wrong = [name for name in requested if name not in owned]
        if wrong:
            raise AlarmConfigError("; ".join(
                f"{name}: its metrics do not land in {region}: {elsewhere[name]}"
                for name in wrong))
        planned = [name for name in owned if name in requested]
    for name in planned:
        elsewhere.pop(name, None)
    return AlarmScope(region, tuple(planned), tuple(owned), tuple(elsewhere.items()))


# --- plan and apply ------------------------------------------------------------------------------


@record
class AlarmChange:
    action: str  # create | update | delete | unchanged
    name: str
    fields: tuple[str, ...] = ()
    spec: AlarmSpec | None = None

    def describe(self) -> str:
        symbol = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}[self.action]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{symbol} {self.action:<9} {self.name}{detail}"


@record
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
         prune: bool = False, keep: Collection[str] = ()) -> AlarmPlan:
    """What apply would change. With ``prune``, our alarms (names with the prefix, descriptions
    with the marker) that are neither wanted nor in ``keep`` (the alarms configured vantage points
    outside this plan own) are deleted."""
    changes: list[AlarmChange] = []
    wanted = {spec.name for spec in desired} | set(keep)
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
        if change.action in ("create", "update") and change.spec is not None:
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
