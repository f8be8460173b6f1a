"""``routewatch check --remote``: regions whose probe does not answer are reported, not fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2e.moto_server import DUMMY_CREDENTIALS, MotoServer, moto_server  # noqa: F401

from monitor.lab import load_scenario

ROOT = Path(__file__).parents[2]


def test_remote_regions_without_a_probe_are_reported_and_the_local_round_kept(
        moto_server: MotoServer) -> None:  # noqa: F811
    moto_server.reset()
    run = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "check", "--lab", "healthy", "--remote",
         "--remote-timeout", "20", "--endpoint-url", moto_server.endpoint_url, "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=180, check=False,
        env={**os.environ, **DUMMY_CREDENTIALS})
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 1, run.stderr  # healthy locally, but no region vouched for
    document = json.loads(run.stdout)
    scenario = load_scenario("healthy")
    failed = {f["region"] for f in document["remote_failures"]}
    assert failed == set(scenario.regions)
    assert all(f["message"] for f in document["remote_failures"])
    local = {v["name"] for v in document["vantage_points"]}
    assert local == set(scenario.vantage_points)
    assert document["exit_code"] == 1
