"""``pip install .`` into a fresh virtual environment, as the README offers: no boto3 comes with
it, every command's ``--help`` works, and an AWS command names the extra to install (exit 2).

Offline: pip gets ``--no-index`` and a wheelhouse repacked from this environment's installed
distributions (tests/e2e/wheelhouse.py) holding exactly the runtime dependencies and the build
backend, so a new runtime dependency that is not declared, or boto3 becoming a required one,
fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from aws_extra_cases import AWS_COMMANDS, assert_one_line_naming_the_extra, aws_config
from e2e.wheelhouse import wheelhouse

ROOT = Path(__file__).resolve().parents[2]
AWS_SDK = {"boto3", "botocore", "s3transfer"}
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", ".lab",
                                    "__pycache__", ".*_cache", "tests")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WALK_COMMANDS = """\
import json, click
from monitor.cli import main

def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            yield from walk(command.get_command(context, name), [*path, name])

print(json.dumps(list(walk(main, []))))
"""


class FreshVenv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "bin" / "python"
        self.routewatch = root / "bin" / "routewatch"

    def run(self, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AWS_"))}
        env["PIP_CONFIG_FILE"] = os.devnull  # no index from the machine's pip.conf either
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    base = tmp_path_factory.mktemp("install")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheels = wheelhouse([*project["project"]["dependencies"],
                         *project["build-system"]["requires"]], base / "wheelhouse")
    assert not AWS_SDK & set(wheels), "the AWS SDK is a runtime dependency"
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    venv = FreshVenv(base / "venv")
    install = venv.run(venv.python, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                       "--disable-pip-version-check", "--find-links", base / "wheelhouse",
                       source, cwd=base)
    assert install.returncode == 0, install.stdout + install.stderr
    return venv


def test_no_aws_sdk_is_installed(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    run = fresh_venv.run(fresh_venv.python, "-c", "import boto3", cwd=tmp_path)
    assert run.returncode != 0
    assert "No module named 'boto3'" in run.stderr


def test_every_command_has_help(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    walked = fresh_venv.run(fresh_venv.python, "-c", WALK_COMMANDS, cwd=tmp_path)
    assert walked.returncode == 0, walked.stderr
    commands: list[list[str]] = json.loads(walked.stdout)
    assert ["alarms", "plan"] in commands  # the walk reached the nested groups
    assert len(commands) > 10
    for command in commands:
        run = fresh_venv.run(fresh_venv.routewatch, *command, "--help", cwd=tmp_path)
        name = " ".join(["routewatch", *command])
        assert run.returncode == 0, f"{name} --help: {run.stderr}"
        assert run.stdout.startswith("Usage: "), name
        assert run.stderr == "", f"{name} --help: {run.stderr}"


def test_aws_commands_name_the_extra(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    config = aws_config(tmp_path)
    for args in AWS_COMMANDS.values():
        run = fresh_venv.run(fresh_venv.routewatch, *(a.format(config=config) for a in args),
                             cwd=tmp_path)
        assert_one_line_naming_the_extra(run)


def test_the_report_schema_ships_in_the_package(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    run = fresh_venv.run(fresh_venv.routewatch, "schema", "report", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["properties"]["schema_version"]["const"] == 2
