"""``routewatch serve`` as a process against hostile peers: what it logs can be neither forged by
a peer nor carry credentials, and stopping it mid-round logs no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.moto_server import MotoServer, moto_server  # noqa: F401
from hostile_peers import ORIGIN, HostileWorld, http_response

ROOT = Path(__file__).parents[2]
REGION = "127.65.1.1"
MAX_LINES = 50_000  # a debug log of one round is a few thousand lines


@pytest.fixture
def world(tmp_path: Path) -> Iterator[HostileWorld]:
    peers = HostileWorld(tmp_path, names={ORIGIN: [REGION]}, https=(REGION,),
                         dns_address="127.65.0.53",
                         default=lambda head: http_response(
                             200, b'{"region": "eu-west-1"}',
                             headers=(("x-origin-region", "eu-west-1"),)))
    try:
        yield peers
    finally:
        peers.close()


def start_serve(world: HostileWorld, *args: str, env: dict[str, str] | None = None,
                **sections: Any) -> subprocess.Popen[str]:
    document = world.config({"eu-west-1": [REGION]},
                            probe={"allow_addresses": ["127.0.0.0/8"]}, **sections)
    path = world.write_config(document)
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve", "--config", str(path), "--listen",
         "127.0.0.1:0", "--interval", "1", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, **(env or {})})


def lines_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """stderr's lines up to (and with) the first one containing ``marker`` (bounded)."""
    assert process.stderr is not None
    lines = []
    for _ in range(MAX_LINES):
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no line with {marker!r}:\n{''.join(lines[-40:])}")


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=60)
    return process.returncode, rest


def test_a_newline_in_the_health_region_forges_no_log_line(world: HostileWorld) -> None:
    forged = "2026-01-01 00:00:00,000 ERROR monitor.serve: forged"
    body = json.dumps({"region": f"eu-west-9\n{forged}\x1b[2J"}).encode()
    world.tls.default = lambda head: http_response(200, body)  # no header: the body names it
    process = start_serve(world)
    lines: list[str] = []
    # up to 5 rounds: on a busy machine a round can be measurement_disturbed, whose lines name
    # the disturbance rather than the region
    for _ in range(5):
        lines += lines_until(process, ": round ")
        lines += lines_until(process, "monitor.evidence: here origin ")
        if "eu-west-9\\n2026-01-01" in lines[-1]:
            break
    code, rest = stop(process)
    text = "".join(lines) + rest
    assert code == 0, text
    assert not any(line.startswith(forged) for line in text.splitlines()), text
    assert "\x1b" not in text
    assert "eu-west-9\\n2026-01-01" in lines[-1], text  # shown, escaped, on the path's line


def test_sigterm_during_a_round_logs_no_traceback(world: HostileWorld) -> None:
    asked = threading.Event()

    def silent(head: bytes) -> bytes:
        asked.set()
        return b""  # never answers: the round is in flight until its deadline

    world.tls.default = silent
    process = start_serve(world)
    assert asked.wait(60), "no round started"
    process.send_signal(signal.SIGTERM)  # in-flight rounds may go on until their deadline
    lines = lines_until(process, "stopping: no new rounds")
    code, rest = stop(process)  # the second cancels the round at once
    text = "".join(lines) + rest
    assert code == 0, text
    assert "Traceback" not in text, text
    assert "CancelledError" not in text, text
    assert "round cancelled (stopping)" in text


ACCESS_KEY_ID = "AKIAHOSTILETEST0KEYID"
SECRET = "hostile/Secret+Access0Key0Value0000000000"
SESSION_TOKEN = "HostileSessionToken0FwoGZXIvYXdzEJr0000000000000000"


@pytest.mark.e2e
def test_debug_logging_with_cloudwatch_logs_no_credentials(
        world: HostileWorld, moto_server: MotoServer) -> None:  # noqa: F811
    env = {"AWS_ENDPOINT_URL": moto_server.endpoint_url, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": SESSION_TOKEN,
           "AWS_DEFAULT_REGION": "us-east-1"}
    process = start_serve(world, "--log-level", "debug", env=env,
                          cloudwatch={"enabled": True, "region": "us-east-1"})
    lines = lines_until(process, ": round ")
    code, rest = stop(process)  # stopping flushes the buffered round: PutMetricData
    text = "".join(lines) + rest
    assert code == 0, text[-3000:]
    assert "sending rounds to CloudWatch" in text
    for secret in (ACCESS_KEY_ID, SECRET, SESSION_TOKEN):
        assert secret not in text
