"""``routewatch lab up|list|fault`` — run the simulated multi-region world."""

from __future__ import annotations

import signal
import textwrap
import threading
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click
import yaml
from pydantic import ValidationError

from monitor.cli.output import EXIT_ERROR, fail
from monitor.config.loader import ConfigProblem, clean_message, format_key_path
from monitor.lab import (
    CONTROL_ADDRESS,
    DEFAULT_CONTROL_PORT,
    Fault,
    FaultKind,
    LabControlError,
    LabError,
    LabHandle,
    Scenario,
    ScenarioError,
    builtin_scenarios,
    control_request,
    fault_usage,
    load_scenario,
    one_fault_errors,
    start_lab,
)

_DEFAULT_CONTROL = f"{CONTROL_ADDRESS}:{DEFAULT_CONTROL_PORT}"


def _fail_scenario(exc: ScenarioError) -> NoReturn:
    if len(exc.problems) == 1 and not exc.problems[0].path:
        fail(str(exc))  # one plain statement about the whole file, e.g. "this is a config"
    click.echo(f"error: invalid scenario {exc.source}:", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)
    raise SystemExit(EXIT_ERROR)


def _load(name_or_path: str) -> Scenario:
    try:
        return load_scenario(name_or_path)
    except ScenarioError as exc:
        _fail_scenario(exc)


@click.group("lab")
def lab() -> None:
    """Run the simulated multi-region world on loopback (regions, DNS, faults)."""


@lab.command("list")
def list_scenarios() -> None:
    """List the built-in scenarios with their descriptions."""
    for name in builtin_scenarios():
        scenario = _load(name)
        click.echo(click.style(name, bold=True))
        for line in textwrap.wrap(scenario.description or "(no description)", 76):
            click.echo(f"    {line}")


@lab.command("up")
@click.option("--scenario", "-s", "scenario_name", default="demo", show_default=True,
              metavar="NAME|FILE", help="A built-in scenario (see `lab list`) or a YAML file.")
@click.option("--write-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="PATH", help="Where to write the routewatch config for this world "
                                   "(its CA goes beside it as <stem>-ca.pem).")
@click.option("--control-port", type=click.IntRange(0, 65535), default=DEFAULT_CONTROL_PORT,
              show_default=True, help=f"Port of the control endpoint on {CONTROL_ADDRESS} "
                                      f"(a free one if taken).")
def up(scenario_name: str, write_config: Path | None, control_port: int) -> None:
    """Run a world in the foreground until Ctrl-C or SIGTERM."""
    if write_config is not None and not write_config.parent.is_dir():
        fail(f"--write-config: directory {write_config.parent} does not exist")
    try:
        handle = start_lab(scenario_name, config_path=write_config, control_port=control_port)
    except ScenarioError as exc:
        _fail_scenario(exc)
    except LabError as exc:
        fail(f"the lab did not start: {exc}")
    with handle:
        _describe(handle)
        stopping = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stopping.wait(0.5):
                if not handle.running:
                    fail("the lab world exited unexpectedly")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        click.echo("stopping the lab world")


def _describe(handle: LabHandle) -> None:
    scenario = handle.scenario
    echo = click.echo
    echo(click.style(f"routewatch lab: scenario {scenario.name or 'unnamed'}", bold=True))
    for line in textwrap.wrap(scenario.description, 76):
        echo(f"  {line}")
    echo(f"  DNS (authoritative and resolver)  {handle.dns_address} (UDP and TCP)")
    echo(f"  control endpoint                  {handle.control_address}")
    echo(f"  {scenario.service.origin_name} regions, HTTPS port {handle.https_port}:")
    for name, address in handle.regions.items():
        echo(f"    {name:<16} {address}")
    echo("  vantage points (source address, client subnet):")
    subnets = scenario.client_subnets()
    for name, address in handle.vantage_points.items():
        echo(f"    {name:<16} {address:<14} {subnets[name]}")
    if handle.edges:
        echo(f"  {scenario.service.cdn_name} edges (address, POP):")
    for name, address in handle.edges.items():
        echo(f"    {name:<16} {address:<14} {scenario.edges[name].pop}")
    faults = ", ".join(str(f) for f in scenario.faults) or "none"
    echo(f"  faults: {faults}")
    echo(f"config: {handle.config_path}")
    echo(f"  try: routewatch check --config {handle.config_path}")
    echo(f"  change faults: routewatch lab fault add --control {handle.control_address} "
         f"kind=... (or clear, list)")
    echo("Ctrl-C stops the world.")


@lab.group("fault")
def fault() -> None:
    """Change the faults of a running world (started with `lab up`)."""


_control_option = click.option(
    "--control", default=_DEFAULT_CONTROL, show_default=True, metavar="HOST:PORT",
    help="The world's control endpoint, as printed by `lab up`.")


def _fail_errors(errors: list[str]) -> NoReturn:
    click.echo("error: the lab refused the change:" if len(errors) > 1
               else f"error: {errors[0]}", err=True)
    if len(errors) > 1:
        for error in errors:
            click.echo(f"  {error}", err=True)
    raise SystemExit(EXIT_ERROR)


def _request(control: str, method: str, body: Any = None) -> list[dict[str, Any]]:
    try:
        document = control_request(control, method, "/faults", body)
    except LabControlError as exc:
        # the world numbers an added fault after the active ones; the user gave just this one
        _fail_errors(one_fault_errors(exc.errors) if isinstance(body, dict) else exc.errors)
    faults: list[dict[str, Any]] = document["faults"]
    return faults


def _show(faults: list[dict[str, Any]]) -> None:
    if not faults:
        click.echo("no active faults")
    for item in faults:
        click.echo("  " + " ".join(f"{k}={v}" for k, v in item.items()))


def _parse_pairs(pairs: tuple[str, ...]) -> dict[str, Any]:
    fault: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{pair!r} is not key=value (e.g. kind=misroute vantage=dub answer=us-east-1)")
        try:
            fault[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "not a YAML value"
            fail(f"{key}: {value!r} is not a value ({problem}); quote it or give a plain word")
    if "kind" not in fault:
        fail("give the fault's kind, e.g. kind=region_down region=eu-west-1")
    return fault


def _checked(fault: dict[str, Any]) -> dict[str, Any]:
    """The fault as the world takes it; what is wrong with it whatever the scenario, said
    before asking the world (which only adds what the scenario has: regions, vantage points)."""
    kinds = ", ".join(kind.value for kind in FaultKind)
    if fault["kind"] not in {kind.value for kind in FaultKind}:
        fail(f"kind: {fault['kind']!r} is not a fault kind (one of {kinds})")
    try:
        return Fault.model_validate(fault).as_dict()
    except ValidationError as exc:
        problems = [str(ConfigProblem(format_key_path(e["loc"]), clean_message(e)))
                    for e in exc.errors()]
        _fail_errors([*problems, f"usage: {fault_usage(FaultKind(fault['kind']))}"])


_FAULT_ADD_HELP = "\n".join([
    "Add one fault, e.g. `kind=misroute vantage=dub answer=us-east-1`.",
    "",
    "\b",
    "Each kind and its fields ([optional]):",
    *(f"  {fault_usage(kind)}" for kind in FaultKind),
])


@fault.command("add", help=_FAULT_ADD_HELP, short_help="Add one fault (kinds: see --help).")
@_control_option
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
def fault_add(control: str, pairs: tuple[str, ...]) -> None:
    _show(_request(control, "POST", _checked(_parse_pairs(pairs))))


@fault.command("clear")
@_control_option
def fault_clear(control: str) -> None:
    """Remove every fault."""
    _show(_request(control, "DELETE"))


@fault.command("list")
@_control_option
def fault_list(control: str) -> None:
    """Show the active faults."""
    _show(_request(control, "GET"))
