"""The round as tables for people (rich)."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from monitor.model import PathResult, RegionLatency, RoundResult, RoutingState, VantageRound
from monitor.report import state_counts

STATE_STYLE = {
    RoutingState.OK: "bold green",
    RoutingState.FAILOVER: "bold yellow",
    RoutingState.MISROUTED: "bold red",
    RoutingState.UNKNOWN: "bold magenta",
}


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


def _latency_of(regions: tuple[RegionLatency, ...], region: str | None) -> float | None:
    return next((r.latency_seconds for r in regions if r.region == region), None)


def _region_cell(vantage: VantageRound, region: str | None) -> Text:
    if region is None:
        return Text("?", style="dim")
    cell = Text(region)
    latency = _latency_of(vantage.regions, region)
    cell.append(f" {latency * 1000:.0f}ms" if latency is not None else " —", style="dim")
    return cell


def _why(path: PathResult) -> Text:
    verdict = path.verdict
    parts: list[str] = []
    if path.path.value == "cdn" and path.extra.get("pop"):
        cache = "→".join(c for c in (path.extra.get("cache"), path.extra.get("cache_repeat")) if c)
        upstream = (path.extra.get("server_timing") or {}).get("cdn-upstream-fbl")
        fbl = f", upstream fbl {ms(upstream)}" if upstream is not None else ""
        parts.append(f"{path.extra['pop']} {cache}{fbl}".strip())
    if verdict.state is not RoutingState.OK or verdict.served_region != verdict.expected_region:
        parts.append(f"{verdict.reason}: {verdict.detail}" if verdict.reason else verdict.detail)
    return Text("; ".join(p for p in parts if p), style="dim")


def vantage_table(vantage: VantageRound) -> Group:
    table = Table(title=f"[bold]{vantage.vantage}[/] [dim]({vantage.duration_seconds:.2f} s)[/]",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("path", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("served", no_wrap=True)
    table.add_column("closest", no_wrap=True)
    table.add_column("penalty", no_wrap=True, justify="right")
    table.add_column("why", overflow="fold", min_width=20)
    for path in vantage.paths:
        verdict = path.verdict
        table.add_row(path.path.value,
                      Text(verdict.state.value, style=STATE_STYLE[verdict.state]),
                      _region_cell(vantage, verdict.served_region),
                      _region_cell(vantage, verdict.expected_region),
                      ms(verdict.penalty_seconds) if verdict.penalty_seconds else "—",
                      _why(path))
    regions = Text("regions: ")
    for index, region in enumerate(sorted(vantage.regions,
                                          key=lambda r: r.latency_seconds or float("inf"))):
        if index:
            regions.append(" · ")
        if region.healthy:
            regions.append(f"{region.region} {ms(region.latency_seconds)}", style="green")
        else:
            regions.append(f"{region.region} down ({region.reason})", style="red")
    notes = [Text(f"  ! {path.path.value}: {note}", style="yellow")
             for path in vantage.paths for note in path.notes]
    return Group(table, regions, *notes, Text(""))


def console_for_stdout() -> Console:
    """A terminal gets its own width; a pipe or a CI log gets 120 columns rather than 80."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def render_round(result: RoundResult, console: Console) -> None:
    for vantage in result.vantage_points:
        console.print(vantage_table(vantage))
    counts = state_counts(result)
    summary = Text(f"{len(result.vantage_points)} vantage points, "
                   f"{sum(counts.values())} paths in {result.duration_seconds:.2f} s: ")
    for index, state in enumerate(RoutingState):
        if index:
            summary.append(", ")
        summary.append(f"{counts[state.value]} {state.value}",
                       style=STATE_STYLE[state] if counts[state.value] else "")
    console.print(summary)
