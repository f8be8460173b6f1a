"""*Routing overview (CloudWatch)*: the Grafana dashboard over the metrics the Lambda probes emit
as EMF, for teams without Prometheus.

Every query names a metric of :data:`monitor.exporters.cloudwatch.CLOUDWATCH_METRICS` with
exactly that metric's dimensions (``Probe`` from the variable, the others ``*``), in the
namespace the configuration defaults to. The Lambda emits less than ``/metrics`` exports: no
HTTP phases, no CDN POP, cache or Server-Timing, no data-path locality and no authoritative DNS
lookup time, so this dashboard has no panels for them. Template variables: ``datasource`` (any
CloudWatch), ``region`` (where the probes' metrics are: each Lambda publishes in its own region),
``probe``, ``service`` and ``alarm_prefix`` (the alarms whose state changes are annotated).

Every row but *Services* reads the series without a ``Service`` dimension (with several services,
every service's values together); *Services* reads the per-service series a configuration with
several ``services`` also publishes (empty with the singular ``service:``).
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config import CloudWatchSettings
from monitor.dashboards._layout import (
    Grid,
    PanelDoc,
    Target,
    assemble,
    datasource_ref,
    multi_variable,
    state_timeline,
    thresholds,
    timeseries_panel,
    value_mappings,
)
from monitor.dashboards._sdk import (
    bargauge,
    builder,
    cloudwatch_model,
    cloudwatch_query,
    common,
    common_builder,
    model,
    statetimeline,
)
from monitor.exporters.cloudwatch import CLOUDWATCH_METRICS, service_dimensions

__all__ = ["NAMESPACE", "UID", "metric_query", "routing_overview"]

UID = "routewatch-routing-cloudwatch"
NAMESPACE = CloudWatchSettings().namespace
_DS = datasource_ref("cloudwatch")
_VARIABLE_QUERY_REF = "CloudWatchVariableQueryEditor-VariableQuery"  # what Grafana's editor saves

# CloudWatch dynamic labels, resolved by GetMetricData for every series a search returns
_PROBE = "${PROP('Dim.Probe')}"
_PATH = "${PROP('Dim.Path')}"
_SERVICE = "${PROP('Dim.Service')}"
_REGION = "${PROP('Dim.Region')}"

_LATENCY_STEPS_MS = ((40.0, "yellow"), (100.0, "orange"), (200.0, "red"))


def metric_query(name: str, statistic: str, label: str, ref: str = "A", *,
                 per_service: bool = False) -> Target:
    """A search for one EMF metric with exactly its dimensions (``per_service``: those of its
    per-service series), in the selected region."""
    spec = CLOUDWATCH_METRICS[name]
    selected = {"Probe": "$probe", "Service": "$service"}
    dimensions: dict[str, str | list[str]] = {
        dimension: selected.get(dimension, "*")
        for dimension in (service_dimensions(spec) if per_service else spec.dimensions)}
    return (cloudwatch_query.MetricsQuery().ref_id(ref).datasource(_DS)
            .query_mode(cloudwatch_model.QueryMode.METRICS)
            .metric_query_type(cloudwatch_model.MetricQueryType.SEARCH)
            .metric_editor_mode(cloudwatch_model.MetricEditorMode.BUILDER)
            .region("$region").namespace(NAMESPACE).metric_name(spec.name)
            .dimensions(dimensions).match_exact(True).statistic(statistic).period("")
            .label(label).expression("").id(""))


def _yes_as(text: str, colour: str) -> list[model.DynamicConfigValue]:
    mappings = value_mappings({0: ("no", "transparent"), 1: (text, colour)})
    return [model.DynamicConfigValue(id_val="mappings", value=mappings)]


# --- routing -------------------------------------------------------------------------------------

VERDICTS = PanelDoc(
    "Routing verdicts per probe and path",
    "From the Lambda probes' EMF: per probe and path, whether the round's verdict was failover, "
    "misrouted or unknown (Failover, Misrouted, Unknown: 1 when it was, else 0; a path with "
    "none of them was ok). These are single-round verdicts: the alarms ask M of N periods.",
    "routewatchroutingmisrouted", "none")

SERVED_EXPECTED = PanelDoc(
    "Served and expected region",
    "ServedRegion and ExpectedRegion: which region answered each probe's path, and which "
    "region measured closest from there. A misrouted path shows two different regions.",
    "routewatchroutingmisrouted", "none")

PENALTY = PanelDoc(
    "Routing penalty",
    "RoutingPenalty: how much slower the served region is than the closest healthy one, per "
    "probe and path (milliseconds).",
    "routewatchroutingmisrouted", "ms")

_VERDICT_METRICS = {
    "Failover": ("failover", "yellow"),
    "Misrouted": ("misrouted", "red"),
    "Unknown": ("unknown", "purple"),
}


def _verdicts(names: Sequence[str], label: str, *,
              per_service: bool = False) -> statetimeline.Panel:
    """The verdict metrics ``names`` (of :data:`_VERDICT_METRICS`) as coloured strips, one query
    each, ``label`` before the verdict's name."""
    refs = [chr(ord("A") + i) for i in range(len(names))]
    panel = state_timeline(
        [metric_query(name, "Maximum", f"{label} · {_VERDICT_METRICS[name][0]}", ref,
                      per_service=per_service) for ref, name in zip(refs, names, strict=True)],
        {0: ("no", "transparent")})
    for ref, name in zip(refs, names, strict=True):
        panel = panel.override_by_query(ref, _yes_as(*_VERDICT_METRICS[name]))
    return panel


def _routing(grid: Grid) -> None:
    grid.row("Routing")
    grid.add(_verdicts(tuple(_VERDICT_METRICS), f"{_PROBE} · {_PATH}"), VERDICTS,
             width=24, height=9)
    grid.add(state_timeline(
        [metric_query("ServedRegion", "Maximum", f"{_PROBE} · {_PATH} · served by {_REGION}", "A"),
         metric_query("ExpectedRegion", "Maximum", f"{_PROBE} · {_PATH} · closest {_REGION}",
                      "B")],
        {1: ("yes", "blue"), 0: ("no", "transparent")}),
        SERVED_EXPECTED, width=12, height=9)
    grid.add(timeseries_panel(metric_query("RoutingPenalty", "Maximum", f"{_PROBE} · {_PATH}")),
             PENALTY, width=12, height=9)


# --- latency -------------------------------------------------------------------------------------

LATENCY_LATEST = PanelDoc(
    "Round trip to each region (latest)",
    "RegionLatency, the latest value per probe and region: the probe's row of the latency "
    "matrix. The shortest bar of a probe is the region that should answer it.",
    "latency-matrix", "ms")

LATENCY_OVER_TIME = PanelDoc(
    "Round trip to each region over time",
    "RegionLatency per probe and region (the minimum over the round's samples).",
    "latency-matrix", "ms")

REGION_HEALTH = PanelDoc(
    "Region health per probe",
    "RegionHealthy: whether each region answered each probe's baseline measurement.",
    "routewatchregionunhealthy", "none")


def _latency(grid: Grid) -> None:
    grid.row("Latency")
    latest = (common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    grid.add(
        bargauge.Panel().with_target(metric_query("RegionLatency", "Minimum",
                                                  f"{_PROBE} → {_REGION}"))
        .reduce_options(latest).orientation(common.VizOrientation.HORIZONTAL).min(0)
        .thresholds(thresholds("green", *_LATENCY_STEPS_MS)),
        LATENCY_LATEST, width=10, height=8)
    grid.add(timeseries_panel(metric_query("RegionLatency", "Minimum", f"{_PROBE} → {_REGION}")),
             LATENCY_OVER_TIME, width=14, height=8)
    grid.add(state_timeline(
        [metric_query("RegionHealthy", "Minimum", f"{_PROBE} → {_REGION}")],
        {1: ("answers", "green"), 0: ("no answer", "red")}),
        REGION_HEALTH, width=24, height=7)


# --- paths and the probe itself ------------------------------------------------------------------

PATH_LATENCY = PanelDoc(
    "Path latency",
    "PathLatency per probe and path: the DNS lookup through the probe's resolver on the dns "
    "path, request sent to first byte on the origin and cdn paths (milliseconds).",
    "dns-lookup-times", "ms")

ROUNDS = PanelDoc(
    "Rounds completed",
    "RoundCompleted, counted per period: one per Lambda invocation. Periods without one are "
    "what the stale alarm counts.",
    "routewatchprobestale", "short")

ROUND_SUCCESS = PanelDoc(
    "Round success",
    "RoundSuccess: whether each round completed and judged every path.",
    "routewatchroutingunknown", "none")

ROUND_DURATION = PanelDoc(
    "Round duration",
    "RoundDuration: wall time of each round (milliseconds).",
    "routewatchprobestale", "ms")

PROBLEMS = PanelDoc(
    "Probe errors and unhealthy regions",
    "ProbeErrors (errors recorded in the round) and UnhealthyRegions (configured regions that "
    "did not answer the baseline), per probe.",
    "routewatchregionunhealthy", "short")


def _probe(grid: Grid) -> None:
    grid.row("Paths and probes")
    grid.add(timeseries_panel(metric_query("PathLatency", "Average", f"{_PROBE} · {_PATH}")),
             PATH_LATENCY, width=24, height=8)
    grid.add(timeseries_panel(metric_query("RoundCompleted", "SampleCount", _PROBE))
             .draw_style(common.GraphDrawStyle.BARS), ROUNDS, width=6, height=7)
    grid.add(state_timeline([metric_query("RoundSuccess", "Minimum", _PROBE)],
                            {1: ("complete", "green"), 0: ("failed", "red")}),
             ROUND_SUCCESS, width=6, height=7)
    grid.add(timeseries_panel(metric_query("RoundDuration", "Maximum", _PROBE)),
             ROUND_DURATION, width=6, height=7)
    grid.add(timeseries_panel(
        metric_query("ProbeErrors", "Sum", f"{_PROBE} · errors", "A"),
        metric_query("UnhealthyRegions", "Maximum", f"{_PROBE} · unhealthy regions", "B")),
        PROBLEMS, width=6, height=7)


# --- services ------------------------------------------------------------------------------------

SERVICE_VERDICTS = PanelDoc(
    "Routing verdicts per probe, service and path",
    "With several services: per probe, service and path, whether the round's verdict was "
    "misrouted or unknown (1 when it was, else 0), from the series with the Service dimension, "
    "which the per-service alarms (routewatch alarms) read. Empty with the singular service.",
    "routewatchroutingmisrouted", "none")

SERVICE_PENALTY = PanelDoc(
    "Routing penalty per service",
    "With several services: RoutingPenalty per probe, service and path (milliseconds).",
    "routewatchroutingmisrouted", "ms")


def _services(grid: Grid) -> None:
    grid.row("Services")
    grid.add(_verdicts(("Misrouted", "Unknown"), f"{_PROBE} · {_SERVICE} · {_PATH}",
                       per_service=True), SERVICE_VERDICTS, width=14, height=9)
    grid.add(timeseries_panel(metric_query("RoutingPenalty", "Maximum",
                                           f"{_PROBE} · {_SERVICE} · {_PATH}",
                                           per_service=True)),
             SERVICE_PENALTY, width=10, height=9)


# --- the dashboard -------------------------------------------------------------------------------


def _alarm_changes(metric: str) -> builder.AnnotationQuery:
    """State changes of the routewatch alarms on ``metric`` (names starting with the prefix)."""
    kind = CLOUDWATCH_METRICS[metric].name
    query = (cloudwatch_query.AnnotationQuery().query_mode(cloudwatch_model.QueryMode.ANNOTATIONS)
             .prefix_matching(True).alarm_name_prefix("$alarm_prefix").action_prefix("")
             .region("$region").namespace(NAMESPACE).metric_name(kind).statistic("Maximum")
             .dimensions({}).match_exact(False).period("").ref_id("Anno"))
    return (builder.AnnotationQuery().name(f"{kind} alarms").datasource(_DS).enable(True)
            .icon_color("red" if kind == "Misrouted" else "purple").target(query))


def _variables() -> list[builder.QueryVariable | builder.DatasourceVariable
                         | builder.TextBoxVariable]:
    regions: dict[str, object] = {
        "queryType": "regions", "refId": _VARIABLE_QUERY_REF, "region": "", "namespace": "",
        "metricName": "", "dimensionKey": "", "dimensionFilters": {}}
    probes: dict[str, object] = {
        "queryType": "dimensionValues", "refId": _VARIABLE_QUERY_REF, "region": "$region",
        "namespace": NAMESPACE, "metricName": CLOUDWATCH_METRICS["RoundCompleted"].name,
        "dimensionKey": "Probe", "dimensionFilters": {}}
    services: dict[str, object] = {**probes, "dimensionKey": "Service"}
    return [
        builder.DatasourceVariable("datasource").label("CloudWatch").type("cloudwatch"),
        builder.QueryVariable("region").label("Region").datasource(_DS).query(regions)
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD),
        multi_variable("probe", "Probe", _DS, probes, "*"),
        multi_variable("service", "Service", _DS, services, "*"),
        builder.TextBoxVariable("alarm_prefix").label("Alarm name prefix")
        .default_value("routewatch-"),
    ]


def routing_overview() -> builder.Dashboard:
    """The *Routing overview (CloudWatch)* dashboard."""
    return assemble(
        builder.Dashboard("routewatch · Routing overview (CloudWatch)").uid(UID)
        .description("Which region answers each Lambda probe, which should, and what it costs "
                     f"(EMF metrics in namespace {NAMESPACE}).")
        .tags(["routewatch", "routing", "cloudwatch"])
        .refresh("5m").time("now-24h", "now")
        .annotation(_alarm_changes("Misrouted")).annotation(_alarm_changes("Unknown")),
        _DS, _variables(), (_routing, _latency, _probe, _services))
