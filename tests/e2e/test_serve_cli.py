"""``routewatch serve`` as a process: exit codes, JSON logs, /metrics, /healthz, SIGHUP, SIGTERM.

The configured regions and resolver are closed loopback ports, so every round fails fast; the lab
tests (test_serve_lab.py) cover real rounds.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from serve_process import ServeProcess

CONFIG_YAML = """
service: {origin_name: global-alb.example.com}
regions:
  us-east-1: {addresses: [127.0.0.1], port: 1}
  eu-west-1: {addresses: [127.0.0.1], port: 1}
vantage_points:
  nyc: {resolver: "127.0.0.1:1"}
  dub: {resolver: "127.0.0.1:1"}
probe: {dns_timeout_s: 0.5, connect_timeout_s: 0.5, request_timeout_s: 0.5, round_deadline_s: 2}
serve: {interval_s: 1, jitter_s: 0, hysteresis_rounds: 2}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "routewatch.yaml"
    path.write_text(CONFIG_YAML)
    return path


@pytest.fixture
def served(tmp_path: Path, config_file: Path) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path, "--config", str(config_file)) as serve:
        yield serve


def test_a_bad_configuration_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(CONFIG_YAML.replace("interval_s: 1", "interval_s: 0, colour: blue"))
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "serve.interval_s" in result.stderr
    assert "serve.colour: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_address_in_use_exits_2(tmp_path: Path, config_file: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "serve", "--config", str(config_file),
             "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_logs_rounds_exports_metrics_reloads_and_stops(served: ServeProcess,
                                                             config_file: Path) -> None:
    served.wait_rounds(1, "nyc")
    rounds = served.wait_rounds(1, "dub")
    record = rounds[0]
    assert record["success"] is False
    assert {p["path"] for p in record["paths"]} == {"dns", "origin"}
    assert record["errors"]
    metrics = served.metrics()
    for probe in ("nyc", "dub"):
        assert f'routewatch_round_success{{probe="{probe}",service="default"}} 0.0' in metrics
        assert (f'routewatch_routing_state{{path="origin",probe="{probe}",service="default",'
                f'state="unknown"}} 1.0' in metrics)
    status, body = served.get("/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"

    # a bad file: logged with its reason, the old configuration keeps running
    config_file.write_text(CONFIG_YAML.replace("hysteresis_rounds: 2", "hysteresis_rounds: 0"))
    served.process.send_signal(signal.SIGHUP)
    (reload,) = served.wait_event("reload")
    assert reload["ok"] is False
    assert reload["level"] == "error"
    assert "keeping the previous configuration" in reload["message"]
    assert any("serve.hysteresis_rounds" in p for p in reload["problems"])
    assert "routewatch_config_last_reload_successful 0.0" in served.metrics()
    served.wait_rounds(len(served.rounds()) + 3)  # rounds go on

    # a good file without nyc: nyc vanishes from /metrics
    config_file.write_text(CONFIG_YAML.replace('  nyc: {resolver: "127.0.0.1:1"}\n', ""))
    served.process.send_signal(signal.SIGHUP)
    assert [r["ok"] for r in served.wait_event("reload", 2)] == [False, True]
    metrics = served.metrics()
    assert "routewatch_config_last_reload_successful 1.0" in metrics
    assert 'probe="nyc"' not in metrics
    assert 'probe="dub"' in metrics

    assert served.stop() == 0
    assert served.records()[-1]["message"] == "stopped"


def test_the_first_round_runs_at_start_not_one_interval_later(tmp_path: Path,
                                                              config_file: Path) -> None:
    config_file.write_text(CONFIG_YAML.replace("interval_s: 1", "interval_s: 3600"))
    with ServeProcess(tmp_path, "--config", str(config_file)) as serve:
        (first,) = serve.wait_rounds(1)
        (scheduling,) = [r for r in serve.records() if "scheduling" in r["message"]]
    started = datetime.fromisoformat(first["started_at"])
    assert started - datetime.fromisoformat(scheduling["time"]) < timedelta(seconds=3600)
