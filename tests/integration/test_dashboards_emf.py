"""Every CloudWatch metric the dashboards read is one the Lambda handler really emits, in the
namespace and with exactly the dimensions it emits it with.

The handler runs in-process (as tests/test_lambda_lab.py does) once per vantage point of the
``demo`` lab world (a misrouted vantage point and a CDN, so the conditional metrics such as
RoutingPenalty are emitted too) and once on a world of two services (their per-service
series); the EMF it prints is the ground truth, and both the Grafana CloudWatch dashboard and
deploy/dashboard.yaml are checked against it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from aws_helpers import validate_emf

from monitor.aws.lambda_handler import handler
from monitor.lab import LabHandle, Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "tests" / "data" / "services-split.yaml"
SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} MetricName=\\\"(\w+)\\\"'")

Emitted = set[tuple[str, str, frozenset[str]]]  # (namespace, metric, dimension names)


@pytest.fixture(scope="module")
def emitted(lab_world: Callable[[str | Scenario], LabHandle]) -> Emitted:
    patch = pytest.MonkeyPatch()
    for name in ("ROUTEWATCH_VANTAGE_POINT", "AWS_REGION", "POWERTOOLS_METRICS_DISABLED"):
        patch.delenv(name, raising=False)
    found: Emitted = set()
    # demo, and a world of several services (their per-service series)
    runs = [(lab_world("demo"), vantage) for vantage in ("nyc", "dub", "fra", "sin")]
    runs.append((lab_world(load_scenario(SERVICES)), "dub"))
    try:
        for world, vantage in runs:
            patch.setenv("ROUTEWATCH_CONFIG", str(world.config_path))
            out = io.StringIO()
            with redirect_stdout(out):
                handler({"vantage_point": vantage}, None)
            for line in out.getvalue().splitlines():
                document = json.loads(line) if line.startswith("{") else {}
                if "_aws" not in document:  # not EMF: the round's evidence lines, logs
                    continue
                assert validate_emf(document) == []
                for directive in document["_aws"]["CloudWatchMetrics"]:
                    for dimensions in directive["Dimensions"]:
                        for metric in directive["Metrics"]:
                            found.add((directive["Namespace"], metric["Name"],
                                       frozenset(dimensions)))
    finally:
        patch.undo()
    assert found
    return found


def test_every_grafana_cloudwatch_query_reads_an_emitted_metric(emitted: Emitted) -> None:
    document = json.loads((ROOT / "dashboards" / "routewatch-routing-cloudwatch.json")
                          .read_text(encoding="utf-8"))
    targets = [target for panel in document["panels"] for target in panel.get("targets", [])]
    read = {(t["namespace"], t["metricName"], frozenset(t["dimensions"])) for t in targets}
    assert read
    assert read <= emitted, sorted(map(str, read - emitted))
    names = {name for _, name, _ in emitted}
    for annotation in document["annotations"]["list"]:
        assert annotation["target"]["metricName"] in names


def test_every_widget_of_the_cloudwatch_dashboard_template_reads_an_emitted_metric(
        emitted: Emitted) -> None:
    text = (ROOT / "deploy" / "dashboard.yaml").read_text(encoding="utf-8")
    read: set[tuple[str, str, frozenset[str]]] = set()
    for schema, name in SEARCH.findall(text.replace("''", "'")):
        namespace, *dimensions = schema.split(",")
        read.add((namespace, name, frozenset(dimensions)))
    assert len(read) >= 10
    assert read <= emitted, sorted(map(str, read - emitted))

