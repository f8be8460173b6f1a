"""Without boto3 (``pip install .`` leaves it out) every AWS command says in one line which extra
to install and exits 2; the check lives in the client factory (monitor.aws.clients).

boto3 is hidden by mapping it to None in ``sys.modules`` (import then raises ImportError), in a
child process so the test process keeps its own. tests/e2e/test_install_without_aws.py does the
same with a real ``pip install`` into a fresh virtual environment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aws_extra_cases import AWS_COMMANDS, EXTRA, assert_one_line_naming_the_extra, aws_config

from monitor.aws import clients
from monitor.aws.clients import AwsError, AwsSdkMissing

HIDE_BOTO3 = ("import sys; sys.modules.update(dict.fromkeys(('boto3', 'botocore'))); "
              "from monitor.cli import main; main(prog_name='routewatch')")


@pytest.mark.parametrize("command", list(AWS_COMMANDS), ids=list(AWS_COMMANDS))
def test_aws_command_without_boto3_names_the_extra(command: str, tmp_path: Path) -> None:
    config = aws_config(tmp_path)
    args = [a.format(config=config) for a in AWS_COMMANDS[command]]
    run = subprocess.run([sys.executable, "-c", HIDE_BOTO3, *args], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120, check=False)
    assert_one_line_naming_the_extra(run)
    assert run.stdout == ""


@pytest.mark.parametrize("factory", [
    lambda: clients.cloudwatch_client("eu-west-1"),
    lambda: clients.lambda_client("eu-west-1", read_timeout_s=5),
    lambda: clients.route53_client(),
    lambda: clients.require_sdk("lambda"),
], ids=["cloudwatch", "lambda", "route53", "require_sdk"])
def test_every_client_factory_raises_a_typed_error(factory: object,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(AwsSdkMissing) as caught:
        factory()  # type: ignore[operator]
    error = caught.value
    assert isinstance(error, AwsError)
    assert error.reason == "aws_sdk_missing"
    assert EXTRA in str(error)
    assert "\n" not in str(error)
    assert isinstance(error.__cause__, ImportError)
