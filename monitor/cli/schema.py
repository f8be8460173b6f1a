"""``routewatch schema report|config``: the JSON Schemas of the round document and the config."""

from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Any

import click

from monitor.cli.config_cmd import schema as config_schema_command

__all__ = ["report_schema", "schema"]

REPORT_SCHEMA = "data/report.schema.json"


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the ``check --json`` document, as shipped in the package."""
    text = resources.files("monitor").joinpath(REPORT_SCHEMA).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@click.group("schema")
def schema() -> None:
    """Print a JSON Schema: the round document (check --json) or the configuration."""


@schema.command("report")
def report() -> None:
    """Print the JSON Schema of the round document (`check --json`, the Lambda's answer)."""
    json.dump(report_schema(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


# the same command as `routewatch config schema`, under the name this group gives it
schema.add_command(config_schema_command, "config")
