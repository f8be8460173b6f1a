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
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(condition: Callable[[], bool], checks: int = 300, pause: float = 0.1) -> None:
    for _ in range(checks):
        if condition():
            return
        time.sleep(pause)
    raise AssertionError("condition not reached")


class Serve:
    """A running ``routewatch serve`` with its stderr (logs) in a file."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "serve.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "serve", "--listen",
                 f"127.0.0.1:{self.port}", "--log-format", "json", *args],
                stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)

    def records(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def metrics(self) -> str:
        return get(self.url + "/metrics")[1]

    def ready(self) -> bool:
        try:
            return get(self.url + "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "routewatch.yaml"
    path.write_text(CONFIG_YAML)
    return path


@pytest.fixture
def served(tmp_path: Path, config_file: Path) -> Iterator[Serve]:
    serve = Serve(tmp_path, "--config", str(config_file))
    try:
        wait_for(serve.ready)
        yield serve
    finally:
        serve.stop()


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


def test_serve_logs_rounds_exports_metrics_reloads_and_stops(served: Serve,
                                                             config_file: Path) -> None:
    def rounds() -> list[dict[str, Any]]:
        return [r for r in served.records() if r.get("event") == "round"]

    wait_for(lambda: {r["vantage"] for r in rounds()} == {"nyc", "dub"})
    record = rounds()[0]
    assert record["success"] is False
    assert {p["path"] for p in record["paths"]} == {"dns", "origin"}
    assert record["errors"]
    metrics = served.metrics()
    for probe in ("nyc", "dub"):
        assert f'routewatch_round_success{{probe="{probe}"}} 0.0' in metrics
        assert (f'routewatch_routing_state{{path="origin",probe="{probe}",state="unknown"}} 1.0'
                in metrics)
    status, body = get(served.url + "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"

    # a bad file: logged with its reason, the old configuration keeps running
    config_file.write_text(CONFIG_YAML.replace("hysteresis_rounds: 2", "hysteresis_rounds: 0"))
    served.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any(r.get("event") == "reload" for r in served.records()))
    reload = next(r for r in served.records() if r.get("event") == "reload")
    assert reload["ok"] is False
    assert reload["level"] == "error"
    assert "keeping the previous configuration" in reload["message"]
    assert any("serve.hysteresis_rounds" in p for p in reload["problems"])
    assert "routewatch_config_last_reload_successful 0.0" in served.metrics()
    count = len(rounds())
    wait_for(lambda: len(rounds()) > count + 2)  # rounds go on

    # a good file without nyc: nyc vanishes from /metrics
    config_file.write_text(CONFIG_YAML.replace('  nyc: {resolver: "127.0.0.1:1"}\n', ""))
    served.process.send_signal(signal.SIGHUP)
    wait_for(lambda: sum(r.get("event") == "reload" for r in served.records()) == 2)
    assert [r["ok"] for r in served.records() if r.get("event") == "reload"] == [False, True]
    metrics = served.metrics()
    assert "routewatch_config_last_reload_successful 1.0" in metrics
    assert 'probe="nyc"' not in metrics
    assert 'probe="dub"' in metrics

    assert served.stop() == 0
    assert served.records()[-1]["message"] == "stopped"
