"""Errors to exit codes, in one place.

Every error routewatch raises derives from :class:`~probes.errors.RoutewatchError`; the root
command (:class:`monitor.cli.LazyGroup`) hands any that reaches it to :func:`exit_for`, which
prints it (a configuration's problems one per line) and exits with its code. Commands raise
(:func:`monitor.cli.output.fail` raises :class:`CliError`); none prints a traceback.

| code | meaning |
| --- | --- |
| 0 | every path ok (or failover, unless ``--strict``) |
| 1 | a path is misrouted or unknown |
| 2 | the check could not run: bad configuration or usage, an unreadable file, an AWS error |
| 3 | nothing could be measured: no region answered from any vantage point |
"""

from __future__ import annotations

from typing import NoReturn

import click

from monitor.core.report import (
    EXIT_ERROR,
    EXIT_NOTHING_MEASURED,
    EXIT_OK,
    EXIT_ROUTING_PROBLEM,
)
from probes.errors import RoutewatchError

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_NOTHING_MEASURED",
    "EXIT_OK",
    "EXIT_ROUTING_PROBLEM",
    "CliError",
    "error_lines",
    "exit_code_for",
    "exit_for",
]


class CliError(RoutewatchError):
    """A command cannot go on: a bad option, a missing file, an unknown vantage point."""


EXIT_CODES: tuple[tuple[type[RoutewatchError], int], ...] = (
    (RoutewatchError, EXIT_ERROR),
)
"""Error type → exit code, most specific first (every error today means "could not run")."""


def exit_code_for(exc: RoutewatchError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))


def error_lines(exc: RoutewatchError) -> list[str]:
    """What the user reads: one line, or a configuration's problems one per line."""
    from monitor.config import ConfigError

    if isinstance(exc, ConfigError):
        return [f"error: invalid {exc.what} {exc.source}:",
                *(f"  {problem}" for problem in exc.problems)]
    return [f"error: {exc}"]


def exit_for(exc: RoutewatchError) -> NoReturn:
    """Print ``exc`` on stderr and exit with its code."""
    for line in error_lines(exc):
        click.echo(line, err=True)
    raise SystemExit(exit_code_for(exc))
