"""``routewatch serve`` as a child process for end-to-end tests, its JSON log in a file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["ServeProcess", "wait_until"]

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], *, checks: int, pause: float,
               what: str) -> T:
    """Call ``probe`` until it returns something truthy (at most ``checks`` times)."""
    for _ in range(checks):
        value = probe()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"gave up waiting for {what}")


class ServeProcess:
    def __init__(self, workdir: Path, port: int, *args: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "serve.log"
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "serve", "--listen", f"127.0.0.1:{port}",
                 "--log-format", "json", *args],
                stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def records(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def event(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.records() if r.get("event") == name), None)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)
