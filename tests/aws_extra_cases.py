"""The AWS commands and what each must print when boto3 is not installed (unit and e2e tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from monitor.cli.output import EXIT_ERROR

ROOT = Path(__file__).resolve().parent.parent
EXTRA = "pip install 'routewatch[aws]'"

# every command that talks to AWS, and the configuration that makes it do so
AWS_CONFIG = """\
alarms: {hosted_zone_id: Z0123456789, sns_topic_arn: "arn:aws:sns:eu-west-1:123456789012:rw"}
cloudwatch: {enabled: true, region: eu-west-1}
"""
AWS_COMMANDS = {
    "alarms plan": ["alarms", "plan", "--config", "{config}"],
    "alarms apply": ["alarms", "apply", "--config", "{config}"],
    "dns explain": ["dns", "explain", "--config", "{config}"],
    "check --remote": ["check", "--config", "{config}", "--remote"],
    "serve (cloudwatch)": ["serve", "--config", "{config}", "--listen", "127.0.0.1:0"],
}


# loopback only, and nothing listens there: should a command get past the SDK check, it must
# not send a packet anywhere (examples/two-regions.yaml names public resolvers and URLs)
INERT_CONFIG = """\
service: {origin_name: global-alb.example.com}
regions:
  us-east-1: {addresses: [127.20.1.1]}
  eu-west-1: {addresses: [127.20.2.1]}
vantage_points:
  here: {resolver: "127.0.0.1:9", client_subnet: 198.51.100.0/24}
authoritative: ["127.0.0.1:9"]
"""


def aws_config(directory: Path) -> Path:
    """A loopback-only configuration with alarms and CloudWatch export switched on."""
    path = directory / "aws.yaml"
    path.write_text(INERT_CONFIG + AWS_CONFIG, encoding="utf-8")
    return path


def assert_one_line_naming_the_extra(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == EXIT_ERROR, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert EXTRA in lines[0]
