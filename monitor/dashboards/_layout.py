"""What every Grafana panel of routewatch has: an id, a place on the grid, a title, a unit, the
datasource variable, a description and a link to its section of docs/runbook.md."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, Self

from monitor.dashboards._sdk import (
    builder,
    cogbuilder,
    cogvariants,
    common,
    common_builder,
    model,
    statetimeline,
    timeseries,
)
from probes.records import record

__all__ = [
    "DATASOURCE_VARIABLE",
    "GRID_COLUMNS",
    "RUNBOOK_URL",
    "Grid",
    "PanelBuilder",
    "PanelDoc",
    "Target",
    "assemble",
    "datasource_ref",
    "legend",
    "multi_variable",
    "runbook_url",
    "state_timeline",
    "thresholds",
    "timeseries_panel",
    "tooltip",
    "value_mappings",
]

Target = cogbuilder.Builder[cogvariants.Dataquery]

RUNBOOK_URL = "https://github.com/routewatch/routewatch/blob/main/docs/runbook.md"
"""Where docs/runbook.md is published (the alert rules' ``runbook_url`` uses the same base)."""

DATASOURCE_VARIABLE = "datasource"
GRID_COLUMNS = 24


def runbook_url(anchor: str) -> str:
    return f"{RUNBOOK_URL}#{anchor}"


def datasource_ref(plugin: str) -> common.DataSourceRef:
    """The dashboard's datasource variable, so one JSON file works with any datasource uid."""
    return common.DataSourceRef(type_val=plugin, uid=f"${{{DATASOURCE_VARIABLE}}}")


def multi_variable(name: str, label: str, datasource: common.DataSourceRef, query: Any,
                   all_value: str) -> builder.QueryVariable:
    """A variable of several values picked from a query (refreshed with the time range, sorted;
    ``all_value`` matches every value: ``.*`` in PromQL, ``*`` in CloudWatch)."""
    return (builder.QueryVariable(name).label(label).datasource(datasource).query(query)
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True)
            .all_value(all_value).sort(model.VariableSort.ALPHABETICAL_ASC))


@record
class PanelDoc:
    """What a panel shows and which runbook section tells what to do about it."""

    title: str
    description: str
    runbook: str  # an anchor of docs/runbook.md
    unit: str


class PanelBuilder(Protocol):
    """The builder methods every SDK panel type shares (and that :class:`Grid` uses)."""

    def id(self, id_val: int) -> Self: ...
    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: common.DataSourceRef) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def links(self, links: list[cogbuilder.Builder[model.DashboardLink]]) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def build(self) -> model.Panel: ...


class Grid:
    """Adds rows and documented panels to a dashboard, numbering them and laying them out left
    to right in rows of :data:`GRID_COLUMNS` (the SDK places each panel after the previous)."""

    def __init__(self, dashboard: builder.Dashboard, datasource: common.DataSourceRef) -> None:
        self.dashboard = dashboard
        self.datasource = datasource
        self._next_id = 1
        self._used = 0

    def _take_id(self) -> int:
        taken, self._next_id = self._next_id, self._next_id + 1
        return taken

    def row(self, title: str) -> None:
        if self._used % GRID_COLUMNS:
            raise ValueError(f"row {title!r} starts after a partly filled line")
        self.dashboard.with_row(builder.Row(title).id(self._take_id()))

    def add(self, panel: PanelBuilder, doc: PanelDoc, *, width: int, height: int) -> None:
        link = (builder.DashboardLink(f"Runbook: {doc.title}").url(runbook_url(doc.runbook))
                .target_blank(True))
        self._used += width
        documented = (panel.id(self._take_id()).title(doc.title).description(doc.description)
                      .datasource(self.datasource).unit(doc.unit).links([link])
                      .span(width).height(height))
        self.dashboard.with_panel(_Built(documented.build()))


class _Built(cogbuilder.Builder[model.Panel]):
    """A panel already built (the SDK's panel builders share no base class but Builder)."""

    def __init__(self, panel: model.Panel) -> None:
        self._panel = panel

    def build(self) -> model.Panel:
        return self._panel


def value_mappings(texts: Mapping[int, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value → (text, colour) for state timelines and table cells."""
    options = {str(value): model.ValueMappingResult(text=text, color=color, index=index)
               for index, (value, (text, color)) in enumerate(texts.items())}
    return [model.ValueMap(options=options)]


def thresholds(base: str, *steps: tuple[float, str]) -> builder.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first step, then each (value, colour)."""
    return (builder.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(None, base)]
                   + [model.Threshold(value, color) for value, color in steps]))


def legend() -> common_builder.VizLegendOptions:
    return (common_builder.VizLegendOptions().show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM))


def tooltip() -> common_builder.VizTooltipOptions:
    return (common_builder.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING))


def timeseries_panel(*targets: Target) -> timeseries.Panel:
    """Thin lines, no points, the y axis from 0 (no routewatch value is negative), a legend and
    a tooltip listing every series."""
    panel = (timeseries.Panel().line_width(1).fill_opacity(10).min(0)
             .show_points(common.VisibilityMode.NEVER).legend(legend()).tooltip(tooltip()))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def state_timeline(targets: Sequence[Target],
                   texts: Mapping[int, tuple[str, str]]) -> statetimeline.Panel:
    """One coloured strip per series, its values named by ``texts``."""
    panel = (statetimeline.Panel().mappings(value_mappings(texts))
             .show_value(common.VisibilityMode.AUTO).merge_values(True).fill_opacity(80)
             .row_height(0.8))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def assemble(dashboard: builder.Dashboard, datasource: common.DataSourceRef,
             variables: Iterable[cogbuilder.Builder[model.VariableModel]],
             sections: Iterable[Callable[[Grid], None]]) -> builder.Dashboard:
    """A routewatch dashboard: browser time, shared crosshair, a link to the runbook, the
    template variables, then each section's row of panels."""
    dashboard = (dashboard.timezone(common.TimeZoneBrowser)
                 .tooltip(model.DashboardCursorSync.CROSSHAIR)
                 .link(builder.DashboardLink("Runbook").type(model.DashboardLinkType.LINK)
                       .url(RUNBOOK_URL).target_blank(True)))
    for variable in variables:
        dashboard = dashboard.with_variable(variable)
    grid = Grid(dashboard, datasource)
    for section in sections:
        section(grid)
    return dashboard
