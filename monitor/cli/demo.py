"""``routewatch demo``: a built-in world with a misrouted vantage point, checked and explained."""

from __future__ import annotations

import click
from rich.panel import Panel

from monitor.cli.check import execute_round
from monitor.cli.options import scenario_or_fail
from monitor.cli.render import console_for_stdout, edge_pop, render_round
from monitor.config import load_config
from monitor.core.model import Path, RoundResult, RoutingState

__all__ = ["demo", "explain"]


def explain(result: RoundResult) -> str:
    """A short paragraph saying what the round found, for people new to the tool."""
    sentences: list[str] = []
    problems = 0
    for vantage in result.vantage_points:
        for path in vantage.paths:
            verdict = path.verdict
            if verdict.state is RoutingState.MISROUTED:
                problems += 1
                cost = (f"{verdict.penalty_seconds * 1000:.0f} ms more per round trip"
                        if verdict.penalty_seconds is not None else "a failing region")
                what = {Path.DNS: "DNS sends its clients to",
                        Path.ORIGIN: "the origin name is served from",
                        Path.CDN: f"the CloudFront edge {edge_pop(path)} fetches from"
                        }[path.path]
                sentences.append(
                    f"From {vantage.vantage}, {what} {verdict.served_region} although "
                    f"{verdict.expected_region} is closest: {cost}.")
            elif verdict.state is RoutingState.FAILOVER:
                sentences.append(f"From {vantage.vantage} ({path.path.value}), "
                                 f"{verdict.detail}: a failover, not a routing fault.")
            elif verdict.state is RoutingState.UNKNOWN:
                problems += 1
                sentences.append(f"From {vantage.vantage}, the {path.path.value} path could not "
                                 f"be judged ({verdict.reason}).")
        dns, cdn = vantage.path(Path.DNS), vantage.path(Path.CDN)
        if (dns is not None and cdn is not None and dns.verdict.state is RoutingState.MISROUTED
                and cdn.verdict.state is RoutingState.OK):
            sentences.append(
                f"Yet {vantage.vantage}'s CloudFront edge {edge_pop(cdn)} reaches "
                f"{cdn.verdict.served_region}, the right region: edges resolve the origin from "
                f"their own location, so only clients that bypass the CDN pay.")
    states = [p.verdict.state for v in result.vantage_points for p in v.paths]
    ok, failover = states.count(RoutingState.OK), states.count(RoutingState.FAILOVER)
    opening = (f"routewatch measured every region from {len(result.vantage_points)} vantage "
               f"points, then compared the region that answered each path with the region that "
               f"measured closest. {ok} of {len(states)} paths are served by the closest region"
               + (f", {failover} by the closest healthy one while a closer region is down."
                  if failover else "."))
    if problems:
        closing = ("In production this is the post-deploy gate: `routewatch check` exits 1 when "
                   "a path is misrouted, and `routewatch serve` turns it into metrics and alerts.")
    elif failover:
        closing = ("Routing did its job, but a region is down: `routewatch check` exits 0 (1 with "
                   "--strict) and `routewatch serve`'s RoutewatchRegionDown alert is the page to "
                   "act on.")
    else:
        closing = "Nothing needs attention."
    return " ".join([opening, *sentences, closing])


@click.command("demo")
@click.option("--scenario", default="demo", show_default=True, metavar="NAME|FILE",
              help="Lab scenario to run.")
def demo(scenario: str) -> None:
    """Start a simulated multi-region world, check it, and explain what was found."""
    from monitor.lab import start_lab

    console = console_for_stdout()
    world_scenario = scenario_or_fail(scenario)
    console.print(Panel.fit(
        world_scenario.description or "A simulated multi-region world on loopback.",
        title=f"routewatch demo — scenario {scenario!r}"))
    with start_lab(world_scenario) as world:
        config = load_config(world.config_path).config
        console.print(f"[dim]lab world up: {len(config.regions)} regions, "
                      f"{len(config.vantage_points)} vantage points, config "
                      f"{world.config_path}[/]")
        result = execute_round(config)
    render_round(result, console)
    console.print(Panel(explain(result), title="what this means"))
