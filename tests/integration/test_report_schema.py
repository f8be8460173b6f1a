"""The JSON Schema of the ``check --json`` document (monitor/data/report.schema.json).

Real documents (``routewatch check --json`` against lab worlds: misrouted, failover, not failed
over, SERVFAIL, blackholed, a stale edge, nothing measurable) are validated with check-jsonschema
(the CLI, which also checks the schema against its metaschema) and with jsonschema in-process, the
second time with every object closed (``unevaluatedProperties: false``) so a key the schema does
not describe fails here although readers are told to ignore unknown keys.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import LabWorld

from monitor.aws.remote import RegionFailure, failure_document
from monitor.cli.schema import report_schema
from monitor.core.model import Path as RoutePath
from monitor.core.model import RoutingState
from monitor.core.report import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "monitor" / "data" / "report.schema.json"

# built-in worlds: misrouted by latency, failover, SERVFAIL, blackholed, a stale edge
WORLDS = ("demo", "region-down", "dns-servfail", "blackhole", "cdn-stale-edge")
# and two of our own, whose verdicts do not depend on timing: Route 53 still answering a dead
# region (misrouted: served_unhealthy; unknown: connection refused), and nothing measurable
OWN_WORLDS = {
    "not-failed-over": """\
description: eu-west-1 refuses connections but its DNS health check still passes
regions: {us-east-1: {}, eu-west-1: {}}
vantage_points:
  nyc: {location: JFK, latency_ms: {us-east-1: 8, eu-west-1: 75}}
  dub: {location: DUB, latency_ms: {us-east-1: 70, eu-west-1: 6}}
faults:
  - {kind: region_down, region: eu-west-1, dns_healthy: true}
""",
    "nothing-measurable": """\
description: every region refuses connections
regions: {us-east-1: {}, eu-west-1: {}}
vantage_points:
  nyc: {location: JFK, latency_ms: {us-east-1: 8, eu-west-1: 75}}
faults:
  - {kind: region_down, region: us-east-1}
  - {kind: region_down, region: eu-west-1}
""",
}


def routewatch(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def documents(lab_world: LabWorld, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("worlds")
    worlds: list[str] = list(WORLDS)
    for name, text in OWN_WORLDS.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
        worlds.append(str(directory / f"{name}.yaml"))
    found = {}
    for world in worlds:
        run = routewatch("check", "--config", lab_world(world).config_path, "--json")
        assert run.returncode in (0, 1, 2, 3), f"{world}: {run.stderr}"  # a document, any verdict
        found[Path(world).stem] = json.loads(run.stdout)
    demo = copy.deepcopy(found["demo"])  # as `check --remote` writes it
    demo["remote_failures"] = failure_document([
        RegionFailure("eu-west-1", "not_deployed", "the probe is not deployed there", 0.21)])
    found["remote"] = demo
    return found


@pytest.fixture(scope="module")
def document_files(documents: dict[str, dict[str, Any]],
                   tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("documents")
    files = []
    for name, document in documents.items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        files.append(path)
    return files


def check_jsonschema() -> str:
    found = Path(sys.executable).parent / "check-jsonschema"
    if not found.exists():
        pytest.skip("check-jsonschema is not installed (dev extra)")
    return str(found)


def closed(schema: Any) -> Any:
    """The schema with every object type that lists its properties closed to other keys (the
    ``then`` parts that add a path's own keys are evaluated into the path object's)."""
    if isinstance(schema, dict):
        result = {key: closed(value) for key, value in schema.items()}
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema):
            result["unevaluatedProperties"] = False
        return result
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


def test_the_schemas_are_valid_under_their_metaschema(tmp_path: Path) -> None:
    config_schema = tmp_path / "config.schema.json"
    printed = routewatch("schema", "config")
    assert printed.returncode == 0, printed.stderr
    config_schema.write_text(printed.stdout, encoding="utf-8")
    run = subprocess.run([check_jsonschema(), "--check-metaschema", str(SCHEMA_FILE),
                          str(config_schema)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_check_jsonschema_accepts_real_documents(document_files: list[Path]) -> None:
    run = subprocess.run([check_jsonschema(), "--schemafile", str(SCHEMA_FILE),
                          *map(str, document_files)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_key_of_real_documents_is_described(documents: dict[str, dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(closed(report_schema()),
                                                format_checker=jsonschema.FormatChecker())
    for name, document in documents.items():
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                    for e in validator.iter_errors(document)]
        assert problems == [], name


def test_documents_cover_every_state_and_path(documents: dict[str, dict[str, Any]]) -> None:
    paths = [p for d in documents.values() for v in d["vantage_points"] for p in v["paths"]]
    assert {p["state"] for p in paths} == {s.value for s in RoutingState}
    assert {p["path"] for p in paths} == {p.value for p in RoutePath}
    assert documents["nothing-measurable"]["exit_code"] >= 2
    reasons = {p["reason"] for p in paths}
    assert {"served_unhealthy", "connect_error", "closest_region_down"} <= reasons


def test_schema_version_is_one_number() -> None:
    schema = report_schema()
    assert schema["properties"]["schema_version"] == {
        "const": SCHEMA_VERSION, "description": schema["properties"]["schema_version"]
        ["description"]}
    assert "schema_version" in schema["required"]


def test_schema_enumerations_are_the_code_s() -> None:
    defs = report_schema()["$defs"]
    assert defs["state"]["enum"] == [s.value for s in RoutingState]
    assert defs["path_name"]["enum"] == [p.value for p in RoutePath]
    summary = report_schema()["properties"]["summary"]
    assert summary["required"] == [s.value for s in RoutingState]


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d.pop("schema_version"), ""),
    (lambda d: d.update(schema_version=1), "schema_version"),
    (lambda d: d["vantage_points"][0]["paths"][0].update(state="sideways"),
     "vantage_points/0/paths/0/state"),
    (lambda d: d["vantage_points"][0]["regions"][0].update(healthy="yes"),
     "vantage_points/0/regions/0/healthy"),
    (lambda d: d["vantage_points"][0].update(started_at="yesterday"),
     "vantage_points/0/started_at"),
], ids=["no-version", "other-version", "bad-state", "bad-healthy", "bad-time"])
def test_the_schema_rejects_a_broken_document(documents: dict[str, dict[str, Any]],
                                              change: Any, where: str) -> None:
    document = copy.deepcopy(documents["demo"])
    change(document)
    errors = list(jsonschema.Draft202012Validator(report_schema()).iter_errors(document))
    assert ["/".join(map(str, e.absolute_path)) for e in errors] == [where]


def test_schema_report_prints_the_shipped_file() -> None:
    run = routewatch("schema", "report")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_schema_config_is_config_schema() -> None:
    assert routewatch("schema", "config").stdout == routewatch("config", "schema").stdout
