"""A real Prometheus server (Debian's ``prometheus`` package) for end-to-end tests.

It listens on a port of 127.0.0.1 the kernel chooses (read back from its log), keeps its TSDB in
a temporary directory, scrapes and evaluates every second, loads the given rule files, and is
stopped (and waited for) afterwards.
Tests are skipped only when the binary is missing and we are not root (as root, ``make test``
installs it first, so a missing binary is a failure).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import yaml

__all__ = ["PrometheusServer", "require_binary", "shorten_for"]

LISTENING = re.compile(r'msg="Listening on" address=(\S+)')
"""Its log line naming the address it really listens on (we ask for port 0)."""


def require_binary(name: str, package: str) -> str:
    """The binary's path; skip (not root) or fail (root: `make system-deps` installs it)."""
    found = shutil.which(name)
    if found is not None:
        return found
    if os.geteuid() == 0:
        pytest.fail(f"{name} is missing although we are root: run `make system-deps` "
                    f"(Debian package {package})")
    pytest.skip(f"{name} is not installed (Debian package {package}) and we are not root")


def shorten_for(rules: Path, target: Path, duration: str = "2s") -> Path:
    """A copy of a rules file with every alert's ``for`` shortened, for tests that cannot wait."""
    text = re.sub(r"(?m)^(\s+for:\s*)\S+\s*$", rf"\g<1>{duration}", rules.read_text())
    target.write_text(text)
    return target


class PrometheusServer:
    """``with PrometheusServer(tmp, targets=[...], rule_files=[...]) as prom: prom.query(...)``"""

    def __init__(self, workdir: Path, *, targets: Sequence[str], rule_files: Sequence[Path] = (),
                 job: str = "routewatch", interval: str = "1s") -> None:
        self.binary = require_binary("prometheus", "prometheus")
        self.workdir = workdir
        self.url = ""
        self._targets = list(targets)
        self._rule_files = [str(p) for p in rule_files]
        self._job = job
        self._interval = interval
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self, ready_checks: int = 200) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": self._interval, "scrape_timeout": self._interval,
                       "evaluation_interval": self._interval},
            "rule_files": self._rule_files,
            "scrape_configs": [{"job_name": self._job,
                                "static_configs": [{"targets": self._targets}]}],
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [self.binary, f"--config.file={config_path}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 "--web.listen-address=127.0.0.1:0", "--log.level=info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for _ in range(ready_checks):
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log()}")
            if not self.url:
                listening = LISTENING.search(self.log_path.read_text(errors="replace"))
                if listening is None:
                    time.sleep(0.1)  # polls a process we cannot be told by
                    continue
                self.url = f"http://{listening.group(1)}"
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus did not become ready: {self.log()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as response:
            document = json.load(response)
        assert document["status"] == "success", document
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def alerts(self, name: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return [a for a in found if name is None or a["labels"].get("alertname") == name]

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups
