"""``routewatch serve`` as a child process for end-to-end tests: it listens on a port the kernel
chooses (``--listen 127.0.0.1:0``, the real one read back from its ``listening`` log line), and
its JSON log lines are read as they come, so a test waits for a log event, never for a time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["HANG_GUARD_S", "Record", "ServeProcess", "get", "wait_until"]

T = TypeVar("T")
Record = dict[str, Any]

HANG_GUARD_S = 120.0
"""How long a wait may last before the test fails: reached only when something is broken."""


def get(url: str) -> tuple[int, str]:
    """GET ``url``: status and body (an HTTP error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(probe: Callable[[], T | None], *, checks: int, pause: float, what: str) -> T:
    """Poll something outside this process (Prometheus' API) until ``probe`` returns something
    truthy, at most ``checks`` times ``pause`` apart."""
    for _ in range(checks):
        value = probe()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"gave up waiting for {what}")


class ServeProcess:
    """``with ServeProcess(tmp_path, "--lab", "healthy") as serve: serve.wait_rounds(2)``"""

    def __init__(self, workdir: Path, *args: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "serve.log"
        self._records: list[Record] = []
        self._ended = False
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "serve", "--listen", "127.0.0.1:0",
             "--log-format", "json", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, name="serve-log", daemon=True)
        self._reader.start()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.log_path.open("wb") as log:
            for line in self.process.stderr:
                log.write(line)
                log.flush()
                record = json.loads(line) if line.startswith(b"{") else None
                with self._changed:
                    if record is not None:
                        self._records.append(record)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    # --- its log ---------------------------------------------------------------------------------

    def records(self) -> list[Record]:
        with self._changed:
            return list(self._records)

    def events(self, name: str) -> list[Record]:
        return [r for r in self.records() if r.get("event") == name]

    def event(self, name: str) -> Record | None:
        """The latest record of event ``name`` so far, or None."""
        found = self.events(name)
        return found[-1] if found else None

    def rounds(self, vantage: str | None = None) -> list[Record]:
        return [r for r in self.events("round") if vantage is None or r["vantage"] == vantage]

    def wait_for(self, found: Callable[[list[Record]], T | None], what: str) -> T:
        """Until ``found(records)`` is truthy (each new log line wakes this up); fail when the
        process ends first."""
        with self._changed:
            self._changed.wait_for(lambda: bool(found(self._records)) or self._ended,
                                   HANG_GUARD_S)
            value = found(self._records)
        if not value:
            raise AssertionError(f"serve {'ended' if self._ended else 'hung'} before {what}; "
                                 f"log:\n{self.log_path.read_text(errors='replace')[-3000:]}")
        return value

    def wait_event(self, name: str, count: int = 1) -> list[Record]:
        """The first ``count`` log records of event ``name``, once they are logged."""
        return self.wait_for(
            lambda records: [r for r in records if r.get("event") == name][:count]
            if sum(r.get("event") == name for r in records) >= count else None,
            f"{count} '{name}' events")

    def wait_rounds(self, count: int, vantage: str | None = None) -> list[Record]:
        """Once ``count`` rounds (of ``vantage``) are logged: all rounds logged so far."""
        def enough(records: list[Record]) -> list[Record] | None:
            rounds = [r for r in records if r.get("event") == "round"
                      and (vantage is None or r["vantage"] == vantage)]
            return rounds if len(rounds) >= count else None
        return self.wait_for(enough, f"{count} rounds of {vantage or 'any vantage point'}")

    # --- its HTTP side ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where it listens (waits until it does)."""
        return str(self.wait_event("listening")[0]["url"])

    def get(self, path: str) -> tuple[int, str]:
        return get(self.url + path)

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, (status, body)
        return body

    # --- its end ---------------------------------------------------------------------------------

    def stop(self) -> int:
        """SIGTERM, then its exit code once it has stopped (killed if it does not)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise
        finally:
            self._reader.join(timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()
        return code
