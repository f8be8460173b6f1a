"""A real ``moto_server`` process on 127.0.0.1 (port chosen by the kernel) for AWS tests.

boto3 reaches it through ``endpoint_url`` with dummy credentials; nothing leaves the machine.
Import the fixture into a test module with ``from e2e.moto_server import moto_server``.

What moto does not do, and is tested another way (see deploy/README.md): it evaluates no
alarms, has no ``TestDNSAnswer``, skips ``AWS::CloudWatch::Alarm`` in CloudFormation and runs no
Lambda code (with ``use_docker: false`` an invoke returns a queued canned answer).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_READY = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
_MAX_STARTUP_LINES = 200

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class MotoServer:
    endpoint_url: str
    process: subprocess.Popen[str]

    def post(self, path: str, document: object) -> object:
        """POST JSON to moto's own API (``/moto-api/...``), e.g. to configure it."""
        request = urllib.request.Request(
            self.endpoint_url + path, data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        self.post("/moto-api/reset", {})


def _moto_executable() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    return found


def start_moto_server() -> MotoServer:
    """Start moto_server on a kernel-chosen port and wait (bounded) for its 'Running on' line."""
    env = {**os.environ, **DUMMY_CREDENTIALS}
    process = subprocess.Popen(
        [_moto_executable(), "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    port = None
    seen = []
    for _ in range(_MAX_STARTUP_LINES):
        line = process.stderr.readline()
        if not line:  # exited
            break
        seen.append(line)
        match = _READY.search(line)
        if match:
            port = int(match.group(1))
            break
    if port is None:
        process.kill()
        process.wait()
        raise RuntimeError("moto_server did not start:\n" + "".join(seen))
    # werkzeug logs every request to stderr: keep draining it so the pipe never fills
    threading.Thread(target=lambda: [None for _ in process.stderr or ()], daemon=True).start()
    return MotoServer(f"http://127.0.0.1:{port}", process)


def stop_moto_server(server: MotoServer) -> None:
    if server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


_shared: MotoServer | None = None


def shared_moto_server() -> MotoServer:
    """The process's one moto server (each test module importing the fixture gets its own
    session fixture, so the process is shared here); stopped when the interpreter exits."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        _shared = start_moto_server()
        atexit.register(stop_moto_server, _shared)
    return _shared


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """The moto server, with dummy credentials in the environment while tests use it."""
    saved = {k: os.environ.get(k) for k in (*DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL")}
    os.environ.update(DUMMY_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        yield shared_moto_server()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
