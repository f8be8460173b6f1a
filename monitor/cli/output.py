"""Shared CLI helpers: exit codes and error printing."""

from __future__ import annotations

from typing import NoReturn

import click

from monitor.config import ConfigError

EXIT_OK = 0
EXIT_ROUTING_PROBLEM = 1
EXIT_ERROR = 2


def fail_config(exc: ConfigError) -> NoReturn:
    """Print every problem of a bad configuration, one per line, and exit 2."""
    click.echo(f"error: invalid configuration {exc.source}:", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)
    raise SystemExit(EXIT_ERROR)


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_ERROR)
