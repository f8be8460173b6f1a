"""Shared CLI helpers. Errors are raised, and printed with their exit code in one place
(:mod:`monitor.cli.errors`)."""

from __future__ import annotations

from typing import NoReturn

from monitor.cli.errors import (
    EXIT_ERROR,
    EXIT_NOTHING_MEASURED,
    EXIT_OK,
    EXIT_ROUTING_PROBLEM,
    CliError,
)
from monitor.config import ConfigError

__all__ = ["EXIT_ERROR", "EXIT_NOTHING_MEASURED", "EXIT_OK", "EXIT_ROUTING_PROBLEM", "fail",
           "fail_config", "plural"]


def fail_config(exc: ConfigError) -> NoReturn:
    """A bad configuration (or scenario): every problem is printed, one per line, exit 2."""
    raise exc


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def fail(message: str) -> NoReturn:
    """Stop the command: ``error: message`` on stderr, exit 2."""
    raise CliError(message)
