"""``routewatch config validate|schema``."""

from __future__ import annotations

import json
import sys

import click

from monitor.cli.output import fail_config, plural
from monitor.config import ConfigError, config_schema, load_config


@click.group("config")
def config() -> None:
    """Validate a configuration file or print its JSON Schema."""


@config.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check FILE; print one line per problem (exit 2) or a summary (exit 0)."""
    try:
        loaded = load_config(file)
    except ConfigError as exc:
        fail_config(exc)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    cfg = loaded.config
    services = (f", {plural(len(cfg.service_names), 'service')}" if cfg.services is not None
                else "")
    click.echo(f"{file}: ok ({plural(len(cfg.regions), 'region')}, "
               f"{plural(len(cfg.vantage_points), 'vantage point')}{services})")


@config.command("schema")
def schema() -> None:
    """Print the configuration's JSON Schema (for editors such as VS Code's YAML extension)."""
    json.dump(config_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
