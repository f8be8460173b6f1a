"""The generated dashboards: committed files equal the code's output, their shape (ids, grid,
titles, units, datasource variable, runbook links), the SDK's typed model reads them back
unchanged, and every metric they (and the alert rules) name is defined in code.

What runs them for real: tests/e2e/test_dashboards_prometheus.py (every Prometheus query against a
real Prometheus scraping ``routewatch serve``), tests/integration/test_dashboards_emf.py (every
CloudWatch metric against what the Lambda handler emits) and
tests/e2e/test_dashboard_template_moto.py (the CloudFormation template deployed to moto).
"""

from __future__ import annotations

import json
import re
import warnings
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import CloudWatchSettings
from monitor.dashboards import GRAFANA_DASHBOARDS, generated_files
from monitor.dashboards._layout import RUNBOOK_URL
from monitor.dashboards.cloudformation import ROWS
from monitor.dashboards.prometheus import series
from monitor.exporters.cloudwatch import CLOUDWATCH_METRICS
from monitor.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards"
TEMPLATE = ROOT / "deploy" / "dashboard.yaml"
RUNBOOK = ROOT / "docs" / "runbook.md"
RULES = ROOT / "alerts" / "routewatch.rules.yml"
PROVISIONING = GRAFANA / "provisioning"
SPECS = {spec.name: spec for spec in METRICS}
SCRAPE_LABELS = {"instance", "job"}  # added by Prometheus, not by routewatch
SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} MetricName=\\?\"(\w+)\\?\"'")


def dashboard(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((GRAFANA / name).read_text(encoding="utf-8"))
    return document


def panels(name: str) -> list[dict[str, Any]]:
    return [p for p in dashboard(name)["panels"] if p["type"] != "row"]


def runbook_anchors() -> set[str]:
    """GitHub's anchors of docs/runbook.md's headings."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in RUNBOOK.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")}


def expressions(document: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets, annotations, variable queries."""
    found = [t["expr"] for p in document["panels"] for t in p.get("targets", []) if "expr" in t]
    found += [a["expr"] for a in document["annotations"]["list"] if "expr" in a]
    found += [v["query"] for v in document["templating"]["list"]
              if v["type"] == "query" and isinstance(v["query"], str)]
    return found


def assert_metrics_defined(text: str, where: str) -> None:
    """Every routewatch metric in ``text`` is defined, and every label it is matched on is one
    of the metric's labels."""
    names = set(re.findall(r"\b(routewatch_[a-z0-9_]+)", text))
    assert names, f"{where}: names no metric"
    assert names <= set(SPECS), f"{where}: undefined {sorted(names - set(SPECS))}"
    for name, matchers in re.findall(r"\b(routewatch_[a-z0-9_]+)\{([^}]*)\}", text):
        labels = set(re.findall(r"(\w+)\s*[=!]~?", matchers.replace('\\"', '"')))
        assert labels <= set(SPECS[name].labels) | SCRAPE_LABELS, (where, name, labels)


def test_the_committed_files_are_what_the_code_generates() -> None:
    for path, text in generated_files(GRAFANA, TEMPLATE).items():
        assert path.exists(), f"{path} is missing: run routewatch dashboards build"
        assert path.read_text(encoding="utf-8") == text, \
            f"{path.relative_to(ROOT)} differs from the code: run routewatch dashboards build"


def test_build_writes_every_file_and_check_reports_stale_ones(tmp_path: Path) -> None:
    args = ["dashboards", "build", "--out", str(tmp_path / "grafana"),
            "--cloudwatch-template", str(tmp_path / "dashboard.yaml")]
    runner = CliRunner()
    stale = runner.invoke(main, [*args, "--check"])
    assert stale.exit_code == 1, stale.output
    assert not (tmp_path / "grafana").exists()
    built = runner.invoke(main, args)
    assert built.exit_code == 0, built.output
    for name in GRAFANA_DASHBOARDS:
        assert (tmp_path / "grafana" / name).read_bytes() == (GRAFANA / name).read_bytes()
    assert (tmp_path / "dashboard.yaml").read_bytes() == TEMPLATE.read_bytes()
    fresh = runner.invoke(main, [*args, "--check"])
    assert fresh.exit_code == 0, fresh.output
    assert fresh.output.count("unchanged") == len(GRAFANA_DASHBOARDS) + 1


def test_build_into_an_unwritable_place_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["dashboards", "build", "--out", str(blocker / "grafana"),
                                       "--cloudwatch-template", str(tmp_path / "d.yaml")])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert not isinstance(result.exception, OSError)


@pytest.mark.parametrize("name", list(GRAFANA_DASHBOARDS))
def test_panel_ids_are_unique_and_the_grid_has_no_overlap(name: str) -> None:
    every = dashboard(name)["panels"]
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and i > 0 for i in ids)
    boxes = []
    for panel in every:
        grid = panel["gridPos"]
        assert min(grid["w"], grid["h"]) > 0, panel["id"]
        assert min(grid["x"], grid["y"]) >= 0, panel["id"]
        assert grid["x"] + grid["w"] <= 24, (panel["id"], grid)
        boxes.append((panel["id"], grid))
    for (a, ga), (b, gb) in combinations(boxes, 2):
        apart = (ga["x"] + ga["w"] <= gb["x"] or gb["x"] + gb["w"] <= ga["x"]
                 or ga["y"] + ga["h"] <= gb["y"] or gb["y"] + gb["h"] <= ga["y"])
        assert apart, f"panels {a} and {b} overlap"


@pytest.mark.parametrize("name", list(GRAFANA_DASHBOARDS))
def test_every_panel_has_title_unit_datasource_variable_description_and_runbook(name: str) -> None:
    document = dashboard(name)
    variables = {v["name"]: v for v in document["templating"]["list"]}
    plugin = variables["datasource"]["query"]
    assert variables["datasource"]["type"] == "datasource"
    anchors = runbook_anchors()
    for panel in panels(name):
        where = f"{name} panel {panel['id']}"
        assert panel["title"].strip(), where
        assert panel["description"].strip(), where
        assert panel["fieldConfig"]["defaults"]["unit"], where
        assert panel["datasource"] == {"type": plugin, "uid": "${datasource}"}, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], where
        [link] = panel["links"]
        base, _, anchor = link["url"].partition("#")
        assert base.endswith("docs/runbook.md"), where
        assert anchor in anchors, f"{where}: docs/runbook.md has no section #{anchor}"
    for annotation in document["annotations"]["list"]:
        assert annotation["datasource"]["uid"] == "${datasource}", annotation["name"]


@pytest.mark.parametrize("name", list(GRAFANA_DASHBOARDS))
def test_the_sdk_model_reads_each_dashboard_back_typed_and_unchanged(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.cog.plugins import register_default_plugins
        from grafana_foundation_sdk.cog.runtime import UnknownDataquery
        from grafana_foundation_sdk.models.dashboard import Dashboard, Panel

    register_default_plugins()
    raw = dashboard(name)
    model = Dashboard.from_json(raw)
    assert json.loads(JSONEncoder().encode(model)) == raw
    for panel in model.panels or []:
        if isinstance(panel, Panel):
            assert not isinstance(panel.options, dict), (panel.title, "options not typed")
            for target in panel.targets or []:
                assert not isinstance(target, UnknownDataquery), (panel.title, target.to_json())


def test_every_prometheus_metric_in_the_dashboard_and_the_alert_rules_is_defined() -> None:
    document = dashboard("routewatch-routing.json")
    for expr in expressions(document):
        assert_metrics_defined(expr, expr)
    assert_metrics_defined(RULES.read_text(encoding="utf-8"), "alerts/routewatch.rules.yml")


def test_panels_and_alerts_link_the_same_published_runbook() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    urls = {rule["annotations"]["runbook_url"].partition("#")[0]
            for group in rules["groups"] for rule in group["rules"]}
    assert urls == {RUNBOOK_URL}


def test_the_prometheus_dashboard_has_its_variables_and_state_annotations() -> None:
    document = dashboard("routewatch-routing.json")
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert set(variables) == {"datasource", "probe", "region"}
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("probe", "region"):
        assert variables[name]["multi"]
        assert variables[name]["includeAll"]
        assert f'{name}=~"${name}"' in " ".join(expressions(document))
    [changes] = document["annotations"]["list"]
    assert "routewatch_routing_state" in changes["expr"]
    assert "changes(" in changes["expr"]
    assert {"probe", "path", "state"} <= set(changes["tagKeys"].split(","))
    titles = {p["title"] for p in panels("routewatch-routing.json")}
    assert {"Routing state per vantage point and path", "Served vs expected region",
            "Latency matrix: vantage point × region", "HTTP phases per path",
            "CloudFront POP per vantage point", "Data path locality",
            "Probe errors by reason"} <= titles


def test_a_selector_refuses_a_label_the_metric_does_not_have() -> None:
    assert series("cdn_pop", pop="FRA56-P1") == \
        'routewatch_cdn_pop{probe=~"$probe", pop="FRA56-P1"}'
    with pytest.raises(ValueError, match="has no label region"):
        series("cdn_pop", by_region=True)
    with pytest.raises(KeyError):
        series("no_such_metric")


def test_every_cloudwatch_query_names_an_emitted_metric_with_its_exact_dimensions() -> None:
    namespace = CloudWatchSettings().namespace
    document = dashboard("routewatch-routing-cloudwatch.json")
    targets = [t for p in panels("routewatch-routing-cloudwatch.json") for t in p["targets"]]
    assert targets
    for target in targets:
        spec = CLOUDWATCH_METRICS[target["metricName"]]
        assert target["namespace"] == namespace
        assert set(target["dimensions"]) == set(spec.dimensions), target["metricName"]
        assert target["matchExact"] is True
        assert target["region"] == "$region"
    for annotation in document["annotations"]["list"]:
        assert annotation["target"]["metricName"] in CLOUDWATCH_METRICS
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert {"datasource", "region", "probe"} <= set(variables)
    assert variables["probe"]["query"]["metricName"] in CLOUDWATCH_METRICS


def cloudformation_template() -> dict[str, Any]:
    from cfnlint.decode.decode import decode_str

    decoded, problems = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not problems, problems
    plain: dict[str, Any] = json.loads(json.dumps(decoded))
    return plain


def literal_parts(node: Any) -> list[str]:
    """Every literal string in an intrinsic-function tree."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in literal_parts(item)]
    if isinstance(node, dict):
        return [s for value in node.values() for s in literal_parts(value)]
    return []


def test_the_cloudwatch_dashboard_template_is_cfn_lint_clean() -> None:
    matches = lint(TEMPLATE.read_text(encoding="utf-8"),
                   config=ManualArgs(regions=["us-east-1", "eu-west-1", "ap-southeast-1"]))
    assert [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches] == []


def test_the_template_searches_only_metrics_the_code_defines_with_their_dimensions() -> None:
    template = cloudformation_template()
    [dashboard_resource] = template["Resources"].values()
    assert dashboard_resource["Type"] == "AWS::CloudWatch::Dashboard"
    body = dashboard_resource["Properties"]["DashboardBody"]
    text = "".join(literal_parts(body))
    namespace = CloudWatchSettings().namespace
    found = SEARCH.findall(text)
    assert {name for _, name in found} == {s.metric for row in ROWS for s in row.searches}
    for schema, name in found:
        space, *dimensions = schema.split(",")
        assert space == namespace
        assert tuple(dimensions) == CLOUDWATCH_METRICS[name].dimensions, name
    # one widget per region in each row: the region comes from ProbeRegions, nowhere else
    assert text.count('"region":"') == 2 * len(ROWS)
    assert set(template["Parameters"]) == {"DashboardName", "ProbeRegions", "AlarmArns"}


def test_provisioning_loads_the_dashboards_and_a_datasource_of_each_kind() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "routewatch.yaml").read_text())
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "routewatch.yaml").read_text())
    assert datasources["apiVersion"] == 1
    assert providers["apiVersion"] == 1
    kinds = {source["type"] for source in datasources["datasources"]}
    wanted = {dashboard(name)["templating"]["list"][0]["query"] for name in GRAFANA_DASHBOARDS}
    assert wanted <= kinds
    assert not any(source.get("isDefault") for source in datasources["datasources"])
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${ROUTEWATCH_DASHBOARDS}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for variable in ("ROUTEWATCH_DASHBOARDS", "PROMETHEUS_URL", "GF_PATHS_PROVISIONING"):
        assert variable in readme, f"README does not say how to set {variable}"


def test_check_outside_the_repository_says_the_files_are_missing(tmp_path: Path) -> None:
    """``--check`` where the dashboards are not kept: it says missing (not differs) and how to
    point it at them, and writes nothing."""
    from click.testing import CliRunner

    from monitor.cli import main

    out, template = tmp_path / "dashboards", tmp_path / "deploy" / "dashboard.yaml"
    result = CliRunner().invoke(main, ["dashboards", "build", "--check", "--out", str(out),
                                       "--cloudwatch-template", str(template)])
    assert result.exit_code == 1
    assert f"missing   {template}" in result.output
    assert "differs" not in result.output
    assert "none of them exists here" in result.stderr
    assert not out.exists()
    assert not template.exists()
