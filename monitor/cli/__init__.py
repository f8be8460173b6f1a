"""The ``routewatch`` command. Each command group lives in its own module, listed in COMMANDS.

Commands are imported only when they run (``routewatch --help`` stays quick): the table carries
the one-line help shown in the command list.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import click

from monitor import __version__
from probes.errors import RoutewatchError


class CommandEntry(NamedTuple):
    module: str
    attribute: str
    summary: str


# the order is the order of `routewatch --help`
COMMANDS: dict[str, CommandEntry] = {
    "check": CommandEntry("monitor.cli.check", "check",
                          "One probe round: which region answered, which is closest, the cost."),
    "serve": CommandEntry("monitor.cli.serve", "serve",
                          "Probe on a schedule and serve Prometheus metrics."),
    "demo": CommandEntry("monitor.cli.demo", "demo",
                         "Start a simulated world, check it, explain what was found."),
    "config": CommandEntry("monitor.cli.config_cmd", "config",
                           "Validate a configuration file or print its JSON Schema."),
    "lab": CommandEntry("monitor.cli.lab", "lab",
                        "Run a simulated multi-region world on loopback and change its faults."),
    "alarms": CommandEntry("monitor.cli.alarms", "alarms",
                           "Plan or apply the CloudWatch alarms."),
    "dns": CommandEntry("monitor.cli.dns", "dns",
                        "What Route 53 answers: explain a vantage point, sweep client subnets."),
    "schema": CommandEntry("monitor.cli.schema", "schema",
                           "Print the JSON Schema of the round document or the configuration."),
    "dashboards": CommandEntry("monitor.cli.dashboards", "dashboards",
                               "Generate the Grafana dashboards and the CloudWatch dashboard."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; a routewatch error that reaches it
    becomes its exit code (:mod:`monitor.cli.errors`)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RoutewatchError as exc:
            from monitor.cli.errors import exit_for

            exit_for(exc)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="routewatch")
def main() -> None:
    """Verify that every client is served by the region that is actually closest to it."""
