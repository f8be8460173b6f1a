"""The ``routewatch`` command. Each command group lives in its own module, listed in COMMANDS."""

from __future__ import annotations

import importlib

import click

from monitor import __version__

# module name → attribute holding a click command or group
COMMANDS: dict[str, str] = {
    "monitor.cli.config_cmd": "config",
    "monitor.cli.check": "check",
    "monitor.cli.demo": "demo",
    "monitor.cli.lab": "lab",
    "monitor.cli.alarms": "alarms",
    "monitor.cli.dns": "dns",
    "monitor.cli.serve": "serve",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="routewatch")
def main() -> None:
    """Verify that every client is served by the region that is actually closest to it."""


for _module, _attr in COMMANDS.items():
    try:
        main.add_command(getattr(importlib.import_module(_module), _attr))
    except ModuleNotFoundError as _exc:  # a command group not built yet must not break the others
        if _exc.name != _module:
            raise
