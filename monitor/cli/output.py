"""Shared CLI helpers: error printing with the check's exit codes."""

from __future__ import annotations

from typing import NoReturn

import click

from monitor.config import ConfigError
from monitor.core.report import EXIT_ERROR, EXIT_OK, EXIT_ROUTING_PROBLEM

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_ROUTING_PROBLEM", "fail", "fail_config", "plural"]


def fail_config(exc: ConfigError) -> NoReturn:
    """Print every problem of a bad configuration (or scenario), one per line, and exit 2."""
    click.echo(f"error: invalid {exc.what} {exc.source}:", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)
    raise SystemExit(EXIT_ERROR)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_ERROR)
