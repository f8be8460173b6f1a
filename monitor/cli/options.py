"""Options every command shares, defined once: where the configuration comes from (``--config``
or ``--lab``), which vantage points (``--vantage``), JSON output (``--json``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from monitor.cli.output import fail, fail_config
from monitor.config import Config, ConfigError, LoadedConfig, load_config, local_vantage_points
from probes.records import record

if TYPE_CHECKING:
    from monitor.lab import LabHandle, Scenario

__all__ = [
    "ConfigSource",
    "config_options",
    "config_source",
    "json_option",
    "one_service_option",
    "plan_services",
    "plan_vantage_points",
    "scenario_or_fail",
    "service_option",
    "service_view",
    "vantage_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def config_options(*, config_help: str = "Configuration file.",
                   lab_help: str = "Run against a lab scenario (built-in name or file), "
                                   "started for this command.") -> Callable[[F], F]:
    """``--config FILE`` and ``--lab NAME|FILE`` (exactly one is required at run time)."""

    def decorate(command: F) -> F:
        command = click.option("--lab", metavar="NAME|FILE", help=lab_help)(command)
        return click.option("--config", "config_file", type=click.Path(dir_okay=False),
                            help=config_help)(command)

    return decorate


def vantage_option(command: F) -> F:
    """``--vantage NAME`` (repeatable) → ``vantage_points: tuple[str, ...]``."""
    return click.option("--vantage", "vantage_points", multiple=True, metavar="NAME",
                        help="Only these vantage points (repeatable).")(command)


def service_option(command: F) -> F:
    """``--service NAME`` (repeatable) → ``services: tuple[str, ...]`` (none: every service)."""
    return click.option("--service", "services", multiple=True, metavar="NAME",
                        help="Only these services (repeatable; default: every one).")(command)


def one_service_option(command: F) -> F:
    """``--service NAME`` → ``service: str | None``, for commands about one service's name."""
    return click.option("--service", "service", metavar="NAME",
                        help="The service to ask about (needed when the configuration has "
                             "several).")(command)


def json_option(command: F) -> F:
    """``--json`` → ``as_json: bool``."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON on stdout.")(command)


@record
class ConfigSource:
    """The configuration a command runs with, how to read it again (SIGHUP), and the lab world
    it came from, if any."""

    loaded: LoadedConfig
    reload: Callable[[], LoadedConfig]
    lab: LabHandle | None = None


@contextlib.contextmanager
def config_source(config_file: str | None, lab: str | None) -> Iterator[ConfigSource]:
    """The configuration to probe: a file, or a lab world started for the duration; every
    problem is printed and the command exits 2."""
    if config_file is not None and lab is None:
        path = config_file
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            fail_config(exc)
        yield ConfigSource(loaded, lambda: load_config(path))
        return
    if lab is None or config_file is not None:
        fail("give exactly one of --config FILE or --lab NAME|FILE")
    from monitor.lab import start_lab

    with start_lab(scenario_or_fail(lab)) as world:
        config_path = world.config_path
        yield ConfigSource(load_config(config_path), lambda: load_config(config_path), world)


def scenario_or_fail(name_or_path: str) -> Scenario:
    """A built-in scenario or a scenario file; every problem printed and exit 2 otherwise
    (including a routewatch config given where a scenario belongs)."""
    from monitor.lab import ScenarioError, load_lab_scenario

    try:
        return load_lab_scenario(name_or_path)
    except ScenarioError as exc:
        fail_config(exc)


def plan_vantage_points(config: Config, requested: tuple[str, ...]) -> list[str]:
    """The vantage points a local round probes: the requested ones, else those that run here
    (see :func:`~monitor.config.local_vantage_points`); exit 2 when that is none."""
    unknown = [v for v in requested if v not in config.vantage_points]
    if unknown:
        fail(f"unknown vantage point(s): {', '.join(unknown)} "
             f"(configured: {', '.join(config.vantage_points)})")
    names = list(requested) or local_vantage_points(config, os.environ.get("AWS_REGION"))
    if not names:
        fail("every vantage point runs in an AWS region (its `region` is set): ask those probes "
             "with --remote, or measure one from here with --vantage NAME")
    return names


def plan_services(config: Config, requested: tuple[str, ...]) -> tuple[str, ...] | None:
    """The services a round judges: the requested ones (exit 2 naming an unknown one), or
    None for every one."""
    unknown = [s for s in requested if s not in config.service_names]
    if unknown:
        fail(f"unknown service(s): {', '.join(unknown)} "
             f"(configured: {', '.join(config.service_names)})")
    return requested or None


def service_view(config: Config, name: str | None) -> Config:
    """The configuration as the named service sees it (:meth:`Config.for_service`); without a
    name, the configuration's one service; exit 2 naming the choices otherwise."""
    if name is None and len(config.service_names) == 1:
        return config.for_service(config.service_names[0])
    if name not in config.service_names:
        fail(("unknown service " + repr(name) if name else "this configuration has several "
              "services: name one with --service")
             + f" (configured: {', '.join(config.service_names)})")
    return config.for_service(name)
