"""``routewatch lab``: list, bad scenarios, a foreground world changed from another "shell"."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import LabWorld

from monitor.cli import main
from monitor.config import load_config
from monitor.lab import (
    LabError,
    ScenarioError,
    builtin_scenarios,
    load_lab_scenario,
    looks_like_routewatch_config,
    one_fault_errors,
    start_lab,
)

ROOT = Path(__file__).parents[2]


def test_list_shows_every_builtin_with_its_description() -> None:
    result = CliRunner().invoke(main, ["lab", "list"])
    assert result.exit_code == 0, result.output
    for name in builtin_scenarios():
        assert f"{name}\n" in result.output
    assert "misrouted: the DNS answers dub with us-east-1" in result.output


def test_bad_scenario_gives_one_line_per_problem_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: {us-east-1: {}}\n"
                   "vantage_points: {nyc: {latency_ms: {us-east-2: 8}, colour: red}}\n"
                   "faults: [{kind: region_down, region: us-east-2}]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["lab", "up", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: invalid scenario {bad}:",
        "  line 2: vantage_points.nyc.colour: unknown key",
    ]
    bad.write_text("regions: {us-east-1: {}}\n"
                   "vantage_points: {nyc: {latency_ms: {us-east-2: 8}}}\n"
                   "faults: [{kind: region_down, region: us-east-2}]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["lab", "up", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: invalid scenario {bad}:",
        "  line 2: vantage_points.nyc.latency_ms: no round trip to us-east-1",
        "  line 2: vantage_points.nyc.latency_ms.us-east-2: not a region of this scenario",
        "  line 3: faults[0].region: 'us-east-2' is not a region of this scenario",
    ]
    result = CliRunner().invoke(main, ["lab", "up", "--scenario", "no-such-world"])
    assert result.exit_code == 2
    assert "no built-in scenario 'no-such-world'" in result.output
    assert "Traceback" not in result.output


def _read_until(process: subprocess.Popen[bytes], marker: str, timeout_s: float) -> str:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    output = b""
    deadline = time.monotonic() + timeout_s
    while marker.encode() not in output and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            output += chunk
    text = output.decode()
    assert marker in text, text
    return text


def test_up_runs_a_world_that_another_shell_can_change(tmp_path: Path) -> None:
    config = tmp_path / "lab.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "lab", "up", "--scenario", "healthy",
         "--write-config", str(config), "--control-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        output = _read_until(process, "Ctrl-C stops the world.", 30)
        assert "us-east-1        127.20.1.1" in output
        control = next(line.split()[-1] for line in output.splitlines()
                       if line.strip().startswith("control endpoint"))
        loaded = load_config(config).config
        assert loaded.service.ca_file == tmp_path / "lab-ca.pem"

        runner = CliRunner()
        added = runner.invoke(main, ["lab", "fault", "add", "--control", control,
                                     "kind=slow", "region=us-east-1", "extra_ms=20"])
        assert added.exit_code == 0, added.output
        assert "kind=slow region=us-east-1 extra_ms=20.0" in added.output
        refused = runner.invoke(main, ["lab", "fault", "add", "--control", control,
                                       "kind=region_down", "region=mars-1"])
        assert refused.exit_code == 2
        assert refused.stderr == "error: region: 'mars-1' is not a region of this scenario\n"
        listed = runner.invoke(main, ["lab", "fault", "list", "--control", control])
        assert listed.output.count("kind=") == 1
        cleared = runner.invoke(main, ["lab", "fault", "clear", "--control", control])
        assert cleared.output.strip() == "no active faults"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert b"stopping the lab world" in out
    assert b"Traceback" not in err
    gone = CliRunner().invoke(main, ["lab", "fault", "list", "--control", control])
    assert gone.exit_code == 2
    assert "cannot reach the lab control endpoint" in gone.output
    assert os.path.exists(config)


# --- wording -------------------------------------------------------------------------------------


def test_an_added_fault_is_not_numbered_after_the_active_ones() -> None:
    assert one_fault_errors([
        "faults[1].region: 'mars-1' is not a region of this scenario",
        "faults[3]: misroute needs answer",
        "no such resource /x",
    ]) == ["region: 'mars-1' is not a region of this scenario", "misroute needs answer",
           "no such resource /x"]


def test_fault_add_says_what_is_wrong_with_the_fault_itself_before_asking_the_world() -> None:
    runner = CliRunner()
    # nothing listens on the control address: these are refused before any request
    flood = runner.invoke(main, ["lab", "fault", "add", "--control", "127.0.0.1:1", "kind=flood"])
    assert flood.exit_code == 2
    assert flood.stderr.startswith("error: kind: 'flood' is not a fault kind (one of misroute, "
                                   "region_down, ")
    assert "faults[" not in flood.output
    unknown_key = runner.invoke(main, ["lab", "fault", "add", "--control", "127.0.0.1:1",
                                       "kind=region_down", "region=eu-west-1", "colour=red"])
    assert unknown_key.exit_code == 2
    assert unknown_key.stderr == ("error: the lab refused the change:\n  colour: unknown key\n"
                                  "  usage: kind=region_down region=… [dns_healthy=…]\n")
    missing = runner.invoke(main, ["lab", "fault", "add", "--control", "127.0.0.1:1",
                                   "kind=misroute", "vantage=dub"])
    assert missing.exit_code == 2
    assert missing.stderr == ("error: the lab refused the change:\n  misroute needs answer\n"
                              "  usage: kind=misroute answer=… vantage=… [family=…]\n")
    listed = runner.invoke(main, ["lab", "fault", "add", "--help"])
    for kind in ("header_mismatch claims=… region=…", "edge_bad_headers edge=… headers=…"):
        assert f"kind={kind}" in listed.output
    not_yaml = runner.invoke(main, ["lab", "fault", "add", "--control", "127.0.0.1:1", "kind=["])
    assert not_yaml.exit_code == 2
    assert not_yaml.stderr.startswith("error: kind: '[' is not a value")
    assert not_yaml.exception is None or isinstance(not_yaml.exception, SystemExit)


def test_a_fault_refused_by_a_world_with_active_faults_is_not_numbered(
        lab_world: LabWorld) -> None:
    demo = lab_world("demo")
    assert len(demo.faults()) == 1  # the user adds the only fault they typed: no faults[1]
    refused = CliRunner().invoke(main, ["lab", "fault", "add", "--control", demo.control_address,
                                        "kind=region_down", "region=mars-1"])
    assert refused.exit_code == 2
    assert refused.stderr == "error: region: 'mars-1' is not a region of this scenario\n"
    with pytest.raises(LabError) as caught:
        demo.add_fault({"kind": "region_down", "region": "mars-1"})
    assert caught.value.errors == ["region: 'mars-1' is not a region of this scenario"]
    assert len(demo.faults()) == 1


CONFIG = ROOT / "examples" / "two-regions.yaml"
CONFIG_SAYS = ("this is a routewatch configuration, not a lab scenario: give it with --config "
               f"(e.g. routewatch check --config {CONFIG})")


def test_a_routewatch_config_given_as_a_scenario_is_named_as_such() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_lab_scenario(CONFIG)
    assert len(caught.value.problems) == 1
    assert str(caught.value.problems[0]).startswith(CONFIG_SAYS)
    with pytest.raises(ScenarioError) as started:
        start_lab(str(CONFIG))
    assert str(started.value.problems[0]).startswith(CONFIG_SAYS)

    result = CliRunner().invoke(main, ["lab", "up", "--scenario", str(CONFIG)])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {CONFIG}: {CONFIG_SAYS}")
    assert "unknown key" not in result.output


def test_only_configurations_are_taken_for_configurations(tmp_path: Path) -> None:
    assert looks_like_routewatch_config(
        {"service": {"origin_name": "a.example.com"}, "regions": {"us-east-1": {"alb_name": "x"}},
         "vantage_points": {"here": {"resolver": "1.1.1.1"}}})
    assert looks_like_routewatch_config({"regions": {"us-east-1": {}}, "serve": {}})
    assert not looks_like_routewatch_config(
        {"regions": {"us-east-1": {}}, "vantage_points": {"nyc": {"latency_ms": {}}}})
    assert not looks_like_routewatch_config(["not", "a", "mapping"])
    bad_scenario = tmp_path / "bad.yaml"
    bad_scenario.write_text("regions: {us-east-1: {}}\n"
                            "vantage_points: {nyc: {latency_ms: {us-east-1: 8}, colour: red}}\n",
                            encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_lab_scenario(bad_scenario)
    assert [str(p) for p in caught.value.problems] == [
        "line 2: vantage_points.nyc.colour: unknown key"]
