"""``routewatch check`` as a user meets it: which vantage points run, warnings, bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import LabWorld
from lab_client import calm_check, injected_rows

from monitor.lab import LabHandle, load_scenario

ROOT = Path(__file__).parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)


@pytest.fixture
def world(lab_world: LabWorld) -> LabHandle:
    return lab_world("healthy")


def config_with(world: LabHandle, tmp_path: Path, **changes: object) -> Path:
    """The lab's config with some vantage points moved into AWS regions, and other changes."""
    document = yaml.safe_load(world.config_path.read_text())
    for name, region in dict(changes.pop("regional", {})).items():  # type: ignore[call-overload]
        document["vantage_points"][name]["region"] = region
    document.update(changes)
    document["service"]["ca_file"] = str(world.ca_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_regional_vantage_points_are_not_measured_from_here_unless_named(
        world: LabHandle, tmp_path: Path) -> None:
    config = config_with(world, tmp_path, regional={"dub": "eu-west-1"})
    run = cli("check", "--config", str(config), "--json")
    assert run.returncode in (0, 1), run.stderr  # the verdicts are the round tests' business
    assert {v["name"] for v in json.loads(run.stdout)["vantage_points"]} == {"nyc", "fra"}
    named = cli("check", "--config", str(config), "--json", "--vantage", "dub")
    assert [v["name"] for v in json.loads(named.stdout)["vantage_points"]] == ["dub"]


def test_only_regional_vantage_points_is_a_clear_error(world: LabHandle, tmp_path: Path) -> None:
    config = config_with(world, tmp_path, regional={
        "nyc": "us-east-1", "dub": "eu-west-1", "fra": "eu-west-1"})
    run = cli("check", "--config", str(config))
    assert run.returncode == 2
    assert "--remote" in run.stderr
    assert "Traceback" not in run.stderr


def test_unreadable_ip_ranges_warn_and_the_check_goes_on(world: LabHandle,
                                                         tmp_path: Path) -> None:
    config = config_with(world, tmp_path, ip_ranges={"file": str(tmp_path / "missing.json")})
    run = cli("check", "--config", str(config), "--json")
    assert run.returncode in (0, 1), run.stderr
    assert json.loads(run.stdout)["exit_code"] == run.returncode
    assert "warning: ip_ranges:" in run.stderr


def test_unknown_vantage_point_is_reported_before_anything_runs(world: LabHandle) -> None:
    run = cli("check", "--config", str(world.config_path), "--vantage", "nosuch")
    assert run.returncode == 2
    assert "unknown vantage point(s): nosuch" in run.stderr


def test_output_into_a_missing_directory_fails_before_probing(world: LabHandle) -> None:
    run = cli("check", "--config", str(world.config_path), "--output", "/nonexistent/dir/x.json")
    assert run.returncode == 2
    assert "does not exist" in run.stderr
    assert run.stdout == ""  # no round was run


def test_output_writes_the_document(world: LabHandle, tmp_path: Path) -> None:
    out = tmp_path / "round.json"
    run = cli("check", "--config", str(world.config_path), "--output", str(out))
    assert run.returncode in (0, 1), run.stderr
    assert json.loads(out.read_text())["exit_code"] == run.returncode


def test_failover_is_printed_as_a_warning(tmp_path: Path) -> None:
    injected = injected_rows(load_scenario("region-down"))
    run = calm_check(["--lab", "region-down"], injected, tmp_path / "round.json")
    assert run.returncode == 0, run.stderr
    assert "failed over" in run.stderr
    strict = calm_check(["--lab", "region-down", "--strict", "--json"], injected,
                        tmp_path / "round.json")
    assert strict.returncode == 1


def test_binary_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(128, 256)))
    for args in (("config", "validate", str(path)), ("check", "--config", str(path)),
                 ("check", "--lab", str(path))):
        run = cli(*args)
        assert run.returncode == 2, args
        assert "not UTF-8 text" in run.stderr
        assert "Traceback" not in run.stderr


def test_a_config_given_as_a_lab_scenario_is_named_as_such() -> None:
    run = cli("check", "--lab", "examples/two-regions.yaml")
    assert run.returncode == 2
    assert "this is a routewatch configuration, not a lab scenario" in run.stderr
    assert "--config" in run.stderr
