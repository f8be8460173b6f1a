"""``routewatch lab``: list, bad scenarios, a foreground world changed from another "shell"."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_config
from monitor.lab import builtin_scenarios

ROOT = Path(__file__).parent.parent


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
        assert "faults[1].region: 'mars-1' is not a region of this scenario" in refused.output
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
