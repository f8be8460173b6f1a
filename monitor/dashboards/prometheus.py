"""*Routing overview*: the Grafana dashboard over routewatch's Prometheus metrics.

Every query is built from :data:`monitor.metrics.METRICS` by :func:`series`, which refuses a
metric or label the definitions do not have. Template variables: ``datasource`` (any Prometheus),
``probe`` (vantage points), ``service`` (the configuration's services; ``default`` for the
singular ``service:``) and ``region``; Grafana's own ``$__rate_interval`` and ``$__range`` size
the windows. Every per-round series is shown per vantage point and service.
"""

from __future__ import annotations

from monitor.core.model import RoutingState
from monitor.dashboards._layout import (
    Grid,
    PanelDoc,
    assemble,
    datasource_ref,
    legend,
    multi_variable,
    state_timeline,
    thresholds,
    timeseries_panel,
    tooltip,
    value_mappings,
)
from monitor.dashboards._sdk import (
    barchart,
    bargauge,
    builder,
    common,
    common_builder,
    model,
    prometheus_model,
    prometheus_query,
    stat,
    statetimeline,
    table,
    timeseries,
)
from monitor.metrics import HTTP_PHASES, metric

__all__ = [
    "REGION_VARIABLE",
    "SERVICE_VARIABLE",
    "STATE_CODES",
    "UID",
    "VANTAGE_VARIABLE",
    "routing_overview",
    "series",
    "state_code",
]

UID = "routewatch-routing"
VANTAGE_VARIABLE = "probe"  # named after the label it selects
REGION_VARIABLE = "region"
SERVICE_VARIABLE = "service"
_DS = datasource_ref("prometheus")

STATE_CODES: dict[RoutingState, int] = {state: code for code, state in enumerate(RoutingState)}
"""Each routing state as the number a state timeline colours (Prometheus values are numbers)."""

_STATE_COLOURS = {RoutingState.OK: "green", RoutingState.FAILOVER: "yellow",
                  RoutingState.MISROUTED: "red", RoutingState.UNKNOWN: "purple"}
_STATE_TEXT = {code: (state.value, _STATE_COLOURS[state]) for state, code in STATE_CODES.items()}

# latency colours: same metro, same continent, across an ocean, the other side of the world
_LATENCY_STEPS = ((0.04, "yellow"), (0.1, "orange"), (0.2, "red"))


def series(name: str, *, by_region: bool = False, **exact: str) -> str:
    """A selector of a defined metric for the selected vantage points and services (and
    regions), plus exact label matches; a label the metric does not have is an error, not an
    empty panel."""
    spec = metric(name)
    matchers = {VANTAGE_VARIABLE: f'=~"${VANTAGE_VARIABLE}"'}
    if SERVICE_VARIABLE in spec.labels:
        matchers[SERVICE_VARIABLE] = f'=~"${SERVICE_VARIABLE}"'
    if by_region:
        matchers[REGION_VARIABLE] = f'=~"${REGION_VARIABLE}"'
    matchers.update({label: f'="{value}"' for label, value in exact.items()})
    unknown = set(matchers) - set(spec.labels)
    if unknown:
        raise ValueError(f"{spec.name} has no label {', '.join(sorted(unknown))}")
    return spec.name + "{" + ", ".join(label + m for label, m in matchers.items()) + "}"


def state_code() -> str:
    """One series per vantage point, service and path whose value is the stable state's code."""
    return " + ".join(
        f"max by (probe, service, path) ({series('routing_state', state=state.value)}) * {code}"
        for state, code in STATE_CODES.items() if code)


def _query(expr: str, ref: str = "A", legend: str | None = None, *,
           instant: bool = False, table: bool = False) -> prometheus_query.Dataquery:
    """A query over the dashboard's range, or only its latest value (``instant``), as series or
    as one table row per series (``table``, for transformations; implies instant)."""
    query = prometheus_query.Dataquery().expr(expr).ref_id(ref).datasource(_DS)
    if legend is not None:
        query = query.legend_format(legend)
    if instant or table:
        query = query.instant()
    if table:
        query = query.format(prometheus_model.PromQueryFormat.TABLE)
    return query


def _over_time(name: str, legend: str, *, by_region: bool = False) -> timeseries.Panel:
    """A metric of the selected vantage points (and regions) as lines over time."""
    return timeseries_panel(_query(series(name, by_region=by_region), legend=legend))


def _states(name: str, legend: str, texts: dict[int, tuple[str, str]], *,
            by_region: bool = False) -> statetimeline.Panel:
    """A 0/1 metric of the selected vantage points (and regions) as named, coloured strips."""
    return state_timeline([_query(series(name, by_region=by_region), legend=legend)], texts)


def _by_label(expr: str, label: str, source: str) -> str:
    """The series of ``expr`` with the value of label ``source`` copied into ``label``."""
    return f'label_replace({expr}, "{label}", "$1", "{source}", "(.+)")'


def _transform(kind: str, **options: object) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=kind, options=options)


# --- routing -------------------------------------------------------------------------------------

ROUTING_STATE = PanelDoc(
    "Routing state per vantage point and path",
    "The stable routing state of every path (dns, origin, cdn) from every vantage point: ok "
    "(the closest healthy region answered, or one within the tolerance), failover (the closest "
    "region is down and the best healthy one answered), misrouted (a slower region answered "
    "beyond the tolerance) or unknown (could not tell). A state flips only after "
    "serve.hysteresis_rounds rounds agree.",
    "routewatchroutingmisrouted", "none")

SERVED_EXPECTED = PanelDoc(
    "Served vs expected region",
    "Per vantage point and path: the region that answered (served), the closest healthy region "
    "measured from there (expected), the stable state and the penalty (how much slower the "
    "served region is). Served and expected differ on a misrouted path; an empty served cell "
    "means the answer could not be attributed to a region.",
    "routewatchroutingmisrouted", "s")

PENALTY = PanelDoc(
    "Routing penalty",
    "How much slower the served region is than the expected one, per vantage point and path: "
    "the extra round trip every request from there pays. Present only while a path is not "
    "plainly ok; absent when unknown.",
    "routewatchroutingmisrouted", "s")


def _routing(grid: Grid) -> None:
    grid.row("Routing")
    grid.add(state_timeline([_query(state_code(), legend="{{probe}} · {{service}} · {{path}}")],
                            _STATE_TEXT),
             ROUTING_STATE, width=24, height=8)

    served = _by_label(f"{series('served_region')} == 1", "served", "region")
    expected = _by_label(f"{series('expected_region')} == 1", "expected", "region")
    state_override = [
        model.DynamicConfigValue(id_val="unit", value="none"),
        model.DynamicConfigValue(id_val="mappings", value=value_mappings(_STATE_TEXT)),
        model.DynamicConfigValue(id_val="custom.cellOptions",
                                 value=common.TableColoredBackgroundCellOptions()),
    ]
    grid.add(
        table.Panel()
        .with_target(_query(f"max by (probe, service, path, served) ({served})", "A",
                            table=True))
        .with_target(_query(f"max by (probe, service, path, expected) ({expected})", "B",
                            table=True))
        .with_target(_query(
            f"max by (probe, service, path) ({series('routing_penalty_seconds')})", "C",
            table=True))
        .with_target(_query(state_code(), "D", table=True))
        .with_transformation(_transform("merge"))
        .with_transformation(_transform(
            "organize",
            excludeByName={"Time": True, "Value #A": True, "Value #B": True},
            renameByName={"Value #C": "penalty", "Value #D": "state"},
            indexByName={"probe": 0, "service": 1, "path": 2, "state": 3, "served": 4,
                         "expected": 5, "penalty": 6}))
        .override_by_name("state", state_override)
        .sort_by([common_builder.TableSortByFieldState().display_name("probe")]),
        SERVED_EXPECTED, width=12, height=8)

    grid.add(_over_time("routing_penalty_seconds", "{{probe}} · {{service}} · {{path}}"),
             PENALTY, width=12, height=8)


# --- latency -------------------------------------------------------------------------------------

LATENCY_MATRIX = PanelDoc(
    "Latency matrix: vantage point × region",
    "The latest measured round trip from each vantage point (rows) to each region (columns), "
    "every region measured directly. Each row names its closest region: the region that should "
    "answer that vantage point's dns and origin paths. A region missing from a row did not "
    "answer the vantage point's baseline.",
    "latency-matrix", "s")

REGION_LATENCY = PanelDoc(
    "Round trip to each region over time",
    "The baseline round trip from each vantage point to each region (the minimum over the "
    "round's samples). Lines that cross mean the closest region changed.",
    "latency-matrix", "s")

REGION_HEALTH = PanelDoc(
    "Region health per vantage point",
    "Whether each region answered each vantage point's baseline measurement. A region down "
    "from one vantage point is a network problem there; down from all of them, the region is "
    "down.",
    "routewatchregionunhealthy", "none")


def _latency_matrix_expr() -> str:
    """Every measured cell, labelled with the vantage point and its closest region."""
    closest = _by_label(
        f"bottomk by (instance, probe, service) (1, {series('region_latency_seconds')})",
        "closest", "region")
    cells = (f"{series('region_latency_seconds', by_region=True)} "
             f"* on (instance, probe, service) group_left (closest) (0 * {closest} + 1)")
    named = f'label_join({cells}, "row", " · ", "probe", "service")'
    named = f'label_replace({named}, "row", "$1", "row", "(.+) · default")'  # one service
    return f'label_join({named}, "vantage", " · closest ", "row", "closest")'


def _latency(grid: Grid) -> None:
    grid.row("Latency")
    grid.add(
        table.Panel().with_target(_query(_latency_matrix_expr(), table=True))
        .with_transformation(_transform("groupingToMatrix", columnField="region",
                                        rowField="vantage", valueField="Value"))
        .thresholds(thresholds("green", *_LATENCY_STEPS))
        .cell_options(common.TableColoredBackgroundCellOptions())
        .override_by_name("vantage\\region", [model.DynamicConfigValue(
            id_val="custom.cellOptions", value=common.TableAutoCellOptions())])
        .decimals(3),
        LATENCY_MATRIX, width=10, height=8)
    grid.add(_over_time("region_latency_seconds", "{{probe}} · {{service}} → {{region}}",
                        by_region=True),
             REGION_LATENCY, width=14, height=8)
    grid.add(_states("region_healthy", "{{probe}} · {{service}} → {{region}}",
                     {1: ("answers", "green"), 0: ("no answer", "red")}, by_region=True),
             REGION_HEALTH, width=24, height=7)


# --- dns and http --------------------------------------------------------------------------------

DNS_LOOKUPS = PanelDoc(
    "DNS lookup time by resolver",
    "How long the origin name lookup took from each vantage point: through its recursive "
    "resolver, and directly at the zone's authoritative servers with the vantage point's "
    "client subnet (ECS).",
    "dns-lookup-times", "s")

HTTP_PHASE_BARS = PanelDoc(
    "HTTP phases per path",
    "The latest origin and CDN request of each vantage point split into its phases: resolve, "
    "connect, tls, processing (request sent to first byte) and transfer. A long tls or "
    "processing phase on the origin path with a short connect points at a far region.",
    "http-phases", "s")

PATH_LATENCY = PanelDoc(
    "Time to first byte per path",
    "Request sent to first response byte on the origin and CDN paths, per vantage point.",
    "http-phases", "s")


def _dns_http(grid: Grid) -> None:
    grid.row("DNS and HTTP")
    grid.add(_over_time("dns_lookup_seconds", "{{probe}} · {{service}} · {{resolver}}"),
             DNS_LOOKUPS, width=8, height=8)
    request = (f'label_join({series("http_phase_seconds")}, "request", " · ", "probe", '
               f'"service", "path")')
    phase_order = {"request\\phase": 0} | {phase: i + 1 for i, phase in enumerate(HTTP_PHASES)}
    grid.add(
        barchart.Panel().with_target(_query(request, table=True))
        .with_transformation(_transform("groupingToMatrix", columnField="phase",
                                        rowField="request", valueField="Value"))
        .with_transformation(_transform("organize", indexByName=phase_order))
        .orientation(common.VizOrientation.HORIZONTAL).stacking(common.StackingMode.NORMAL)
        .show_value(common.VisibilityMode.NEVER).legend(legend()).tooltip(tooltip()),
        HTTP_PHASE_BARS, width=8, height=8)
    grid.add(_over_time("path_latency_seconds", "{{probe}} · {{service}} · {{path}}"),
             PATH_LATENCY, width=8, height=8)


# --- cdn -----------------------------------------------------------------------------------------

CDN_POP = PanelDoc(
    "CloudFront POP per vantage point",
    "Which CloudFront edge location (POP) answered each vantage point, over time. A POP far "
    "from the vantage point means the CDN's own DNS routing sends it elsewhere; the cdn path's "
    "expected region is the one closest to the POP.",
    "cdn-edge-pop-cache-and-server-timing", "none")

CACHE_HIT = PanelDoc(
    "CDN cache hit ratio",
    "Share of rounds in the selected time range in which the edge answered from its cache. "
    "repeat (the same URL again) should be near 100 %: the edge caches. first (the "
    "cache-busted request) should be 0 %: a hit there means the probe never reached the origin "
    "and the cdn verdict rests on a cached answer.",
    "cdn-edge-pop-cache-and-server-timing", "percentunit")

SERVER_TIMING = PanelDoc(
    "CloudFront Server-Timing",
    "What the edge reports about its own work (Server-Timing): upstream dns, connect and first "
    "byte (fbl) towards the origin region, and the downstream first byte. A long upstream fbl "
    "with a short one measured directly from the vantage point means the edge reaches a far "
    "region.",
    "cdn-edge-pop-cache-and-server-timing", "s")


def _cdn(grid: Grid) -> None:
    grid.row("CDN")
    grid.add(state_timeline([_query(f"{series('cdn_pop')} == 1",
                                    legend="{{probe}} · {{service}} · {{pop}}")],
                            {1: ("serving", "blue")}),
             CDN_POP, width=8, height=8)
    ratio = (f"avg by (probe, service, request) "
             f"(avg_over_time({series('cdn_cache_hit')}[$__range]))")
    first_hit_is_bad = [model.DynamicConfigValue(
        id_val="thresholds", value=thresholds("green", (0.01, "red")).build())]
    grid.add(
        bargauge.Panel().with_target(_query(ratio,
                                            legend="{{probe}} · {{service}} · {{request}}",
                                            instant=True))
        .min(0).max(1).thresholds(thresholds("red", (0.5, "yellow"), (0.9, "green")))
        .override_by_regexp(".* · first$", first_hit_is_bad)
        .orientation(common.VizOrientation.HORIZONTAL),
        CACHE_HIT, width=6, height=8)
    grid.add(_over_time("cdn_upstream_seconds", "{{probe}} · {{service}} · {{phase}}"),
             SERVER_TIMING, width=10, height=8)


# --- TLS ---------------------------------------------------------------------------------------

CERT_EXPIRY = PanelDoc(
    "Certificate expiry",
    "Time left until the earliest-expiring certificate (leaf or intermediate) each region "
    "presents, per service, path and region, the soonest over the selected vantage points. "
    "Orange under 14 days (RoutewatchTlsCertificateExpiry), red under 3 "
    "(RoutewatchTlsCertificateExpiryCritical). ACM renews 60 days ahead: a short one is a "
    "stuck renewal or an imported certificate.",
    "routewatchtlscertificateexpiry", "s")

TLS_VERSION = PanelDoc(
    "TLS version",
    "The TLS version each region negotiated, per vantage point, service, path and region. "
    "TLSv1.2 costs two round trips per new connection where TLSv1.3 costs one.",
    "routewatchtlscertificateexpiry", "none")


def _tls(grid: Grid) -> None:
    grid.row("TLS")
    left = (f"min by (service, path, region) "
            f"({series('tls_cert_expiry_timestamp_seconds', by_region=True)}) - time()")
    grid.add(
        table.Panel()
        .with_target(_query(left, table=True))
        .with_transformation(_transform(
            "organize", excludeByName={"Time": True}, renameByName={"Value": "expires in"},
            indexByName={"service": 0, "path": 1, "region": 2, "expires in": 3}))
        .thresholds(thresholds("red", (3 * 86400, "orange"), (14 * 86400, "green")))
        .override_by_name("expires in", [model.DynamicConfigValue(
            id_val="custom.cellOptions", value=common.TableColoredBackgroundCellOptions())])
        .sort_by([common_builder.TableSortByFieldState().display_name("expires in")]),
        CERT_EXPIRY, width=12, height=8)
    versions = f"max by (probe, service, path, region, version) " \
               f"({series('tls_version_info', by_region=True)})"
    grid.add(
        table.Panel()
        .with_target(_query(versions, table=True))
        .with_transformation(_transform(
            "organize", excludeByName={"Time": True, "Value": True},
            indexByName={"probe": 0, "service": 1, "path": 2, "region": 3, "version": 4}))
        .sort_by([common_builder.TableSortByFieldState().display_name("probe")]),
        TLS_VERSION, width=12, height=8)


# --- data path -----------------------------------------------------------------------------------

DATA_LOCALITY = PanelDoc(
    "Data path locality",
    "Whether the region serving each vantage point read its user data (DynamoDB) in its own "
    "region, as the app reports in its health JSON. remote: every request pays a cross-region "
    "round trip for data even when the routing is right.",
    "routewatchdatapathnotregionlocal", "none")

DATA_READ = PanelDoc(
    "Data read time",
    "The app's own DynamoDB read time as it reports it in the health JSON, per vantage point "
    "and path.",
    "routewatchdatapathnotregionlocal", "s")


def _data_path(grid: Grid) -> None:
    grid.row("Data path")
    grid.add(_states("data_path_local", "{{probe}} · {{service}} · {{path}}",
                     {1: ("region-local", "green"), 0: ("remote", "red")}),
             DATA_LOCALITY, width=12, height=6)
    grid.add(_over_time("data_read_seconds", "{{probe}} · {{service}} · {{path}}"),
             DATA_READ, width=12, height=6)


# --- the probe itself ----------------------------------------------------------------------------

ROUND_SUCCESS = PanelDoc(
    "Round success",
    "Whether each vantage point's latest round finished within its deadline with every path "
    "judged.",
    "routewatchroutingunknown", "none")

ROUND_DURATION = PanelDoc(
    "Round duration",
    "Wall-clock duration of each vantage point's rounds. Rounds that approach the interval "
    "skip the next one and make the probe stale.",
    "routewatchprobestale", "s")

ROUND_AGE = PanelDoc(
    "Age of the latest round",
    "Seconds since each vantage point last finished a round. Everything shown for a vantage "
    "point is this old; RoutewatchProbeStale fires after 3 intervals (red: 3 minutes at the "
    "default 60 s interval).",
    "routewatchprobestale", "s")

ERRORS = PanelDoc(
    "Probe errors by reason",
    "Errors recorded by the rounds, by where they happened (round, dns, baseline, origin, cdn) "
    "and their typed reason (timeout, dns_servfail, connect_error, ...).",
    "routewatchroutingunknown", "short")


def _probe(grid: Grid) -> None:
    grid.row("Probe")
    grid.add(_states("round_success", "{{probe}} · {{service}}",
                     {1: ("complete", "green"), 0: ("failed", "red")}),
             ROUND_SUCCESS, width=6, height=7)
    grid.add(_over_time("round_duration_seconds", "{{probe}} · {{service}}"),
             ROUND_DURATION, width=6, height=7)
    age = f"time() - {series('last_round_timestamp_seconds')}"
    grid.add(stat.Panel().with_target(_query(age, legend="{{probe}} · {{service}}",
                                             instant=True))
             .thresholds(thresholds("green", (120, "orange"), (180, "red")))
             .graph_mode(common.BigValueGraphMode.NONE),
             ROUND_AGE, width=4, height=7)
    errors = (f"sum by (probe, service, path, reason) "
              f"(increase({series('probe_errors_total')}[$__rate_interval]))")
    grid.add(timeseries_panel(_query(errors,
                                     legend="{{probe}} · {{service}} · {{path}} · {{reason}}"))
             .draw_style(common.GraphDrawStyle.BARS),
             ERRORS, width=8, height=7)


# --- the dashboard -------------------------------------------------------------------------------


def _state_changes() -> builder.AnnotationQuery:
    """An annotation wherever a vantage point's stable routing state changed."""
    changed = (f"({series('routing_state')} == 1) and on (instance, probe, service, path, state) "
               f"(changes({series('routing_state')}[1m]) > 0)")
    return (builder.AnnotationQuery().name("Routing state changes").datasource(_DS)
            .enable(True).icon_color("orange").expr(changed).step("1m")
            .title_format("{{probe}} · {{service}} · {{path}} is now {{state}}")
            .text_format("The stable routing state of {{service}}'s {{path}} from {{probe}} "
                         "changed to {{state}}.")
            .tag_keys("probe,service,path,state"))


def _variables() -> list[builder.QueryVariable | builder.DatasourceVariable]:
    return [
        builder.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        multi_variable(VANTAGE_VARIABLE, "Vantage point", _DS,
                       f"label_values({metric('round_success').name}, probe)", ".*"),
        multi_variable(SERVICE_VARIABLE, "Service", _DS,
                       f"label_values({metric('round_success').name}, service)", ".*"),
        multi_variable(REGION_VARIABLE, "Region", _DS,
                       f"label_values({metric('region_healthy').name}, region)", ".*"),
    ]


def routing_overview() -> builder.Dashboard:
    """The *Routing overview* dashboard (Prometheus)."""
    return assemble(
        builder.Dashboard("routewatch · Routing overview").uid(UID)
        .description("Which region answers each vantage point, which should, and what it costs "
                     "(routewatch's Prometheus metrics).")
        .tags(["routewatch", "routing"])
        .refresh("1m").time("now-6h", "now")
        .annotation(_state_changes()),
        _DS, _variables(), (_routing, _latency, _dns_http, _cdn, _tls, _data_path, _probe))
