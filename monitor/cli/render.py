"""The round as tables for people (rich)."""

from __future__ import annotations

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


def _path_row(path: PathResult, vantage: VantageRound) -> list[Text | str]:
    verdict = path.verdict
    extra = path.extra
    via = ""
    if "pop" in extra:
        via = f"{extra.get('pop') or '?'} {extra.get('cache') or ''}".strip()
    why = verdict.reason or ""
    detail = verdict.detail if verdict.state != RoutingState.OK else ""
    return [
        path.path.value,
        Text(verdict.state.value, style=STATE_STYLE[verdict.state]),
        verdict.served_region or "?",
        ms(_latency_of(vantage.regions, verdict.served_region)),
        verdict.expected_region or "?",
        ms(_latency_of(vantage.regions, verdict.expected_region)),
        ms(verdict.penalty_seconds) if verdict.penalty_seconds else "—",
        ms(path.latency_seconds),
        via,
        Text(f"{why}: {detail}" if why and detail else why or detail, style="dim"),
    ]


def vantage_table(vantage: VantageRound) -> Group:
    table = Table(title=f"[bold]{vantage.vantage}[/] — {vantage.duration_seconds:.2f} s",
                  title_justify="left", expand=False, pad_edge=False)
    for column in ("path", "state", "served", "its latency", "closest", "its latency",
                   "penalty", "measured", "edge", "why"):
        table.add_column(column, no_wrap=column not in ("why",))
    for path in vantage.paths:
        table.add_row(*_path_row(path, vantage))
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
