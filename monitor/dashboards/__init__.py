"""Dashboards generated from routewatch's metric definitions.

* :mod:`.prometheus` — Grafana *Routing overview* over the Prometheus metrics
  (:data:`monitor.metrics.METRICS`);
* :mod:`.cloudwatch` — Grafana *Routing overview (CloudWatch)* over the EMF metrics the Lambda
  probes emit (:data:`monitor.exporters.cloudwatch.CLOUDWATCH_METRICS`);
* :mod:`.cloudformation` — ``deploy/dashboard.yaml``, an ``AWS::CloudWatch::Dashboard`` for
  the home region whose widgets read every probe region.

``routewatch dashboards build`` writes them; the committed files in ``dashboards/`` and
``deploy/`` are what this code generates (a test holds that). This layer reads metric
definitions only: it never imports the round, serve or AWS modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from monitor.dashboards._sdk import JSONEncoder, builder

__all__ = [
    "CLOUDWATCH_TEMPLATE",
    "GRAFANA_DASHBOARDS",
    "GRAFANA_DIR",
    "generated_files",
    "grafana_dashboard_files",
    "render_dashboard",
]

GRAFANA_DIR = Path("dashboards")
CLOUDWATCH_TEMPLATE = Path("deploy") / "dashboard.yaml"


def _prometheus() -> builder.Dashboard:
    from monitor.dashboards.prometheus import routing_overview

    return routing_overview()


def _cloudwatch() -> builder.Dashboard:
    from monitor.dashboards.cloudwatch import routing_overview

    return routing_overview()


GRAFANA_DASHBOARDS: dict[str, Callable[[], builder.Dashboard]] = {
    "routewatch-routing.json": _prometheus,
    "routewatch-routing-cloudwatch.json": _cloudwatch,
}
"""File name in ``dashboards/`` → the function building that dashboard."""


def render_dashboard(dashboard: builder.Dashboard) -> str:
    """The dashboard's JSON model as Grafana's file provisioning reads it (stable key order)."""
    return JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(
        dashboard.build()) + "\n"


def grafana_dashboard_files() -> dict[str, str]:
    """File name → JSON text of every Grafana dashboard."""
    return {name: render_dashboard(build()) for name, build in GRAFANA_DASHBOARDS.items()}


def generated_files(grafana_dir: Path = GRAFANA_DIR,
                    cloudwatch_template: Path = CLOUDWATCH_TEMPLATE) -> dict[Path, str]:
    """Every generated file (where it goes → its text): the Grafana dashboards in
    ``grafana_dir`` and the CloudWatch dashboard's CloudFormation template."""
    from monitor.dashboards.cloudformation import dashboard_template

    files = {grafana_dir / name: text for name, text in grafana_dashboard_files().items()}
    files[cloudwatch_template] = dashboard_template()
    return files
