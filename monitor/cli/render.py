"""The round as tables for people (rich).

Everything shown here may have come from the network (a region header, the health JSON, a POP, an
error message, a regional probe's answer): it goes into :class:`rich.text.Text` (never parsed as
markup) through :func:`~monitor.domain.text.printable` (no control characters reach the terminal).
"""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from monitor.cli.output import plural
from monitor.config import DEFAULT_SERVICE
from monitor.core.model import (
    CdnDetails,
    IpFamily,
    Path,
    PathResult,
    RegionLatency,
    RoundResult,
    RoutingState,
    VantageRound,
    latency_of,
)
from monitor.core.report import service_rounds, state_counts
from monitor.domain.text import printable

STATE_STYLE = {
    RoutingState.OK: "bold green",
    RoutingState.FAILOVER: "bold yellow",
    RoutingState.MISROUTED: "bold red",
    RoutingState.UNKNOWN: "bold magenta",
}


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


COMPACT_BELOW = 80
"""A terminal narrower than this gets region cells without their latency (the regions line
under the table has them), so the penalty column is never cut."""


def _region_cell(vantage: VantageRound, path: PathResult, region: str | None, *,
                 compact: bool = False) -> Text:
    if region is None:
        return Text("?", style="dim")
    cell = Text(printable(region, 40))
    # the cdn's regions are seen from the edge: this vantage point's latency to them is only
    # shown where it stands in honestly (the same metro, i.e. when a penalty was given)
    if not compact and (path.path is not Path.CDN or path.verdict.penalty_seconds is not None):
        rtt = latency_of(vantage.family_regions(path.family), region, path.verdict.estimator)
        cell.append(f" {ms(rtt)}", style="dim")
    return cell


def edge_pop(path: PathResult) -> str | None:
    """The CloudFront POP that served a cdn path (None for other paths, or when unknown)."""
    return path.details.pop if isinstance(path.details, CdnDetails) else None


def path_label(vantage: VantageRound, path: PathResult) -> str:
    """The path's name, with its address family when the round has more than IPv4."""
    return f"{path.path.value} {path.family}" if vantage.dual_stack else path.path.value


def _explanations(vantage: VantageRound, path: PathResult) -> list[Text]:
    """Lines under the table: what the edge said, why a path is not plainly ok, and notes."""
    verdict = path.verdict
    lines: list[Text] = []
    name = path_label(vantage, path)
    edge = path.details if isinstance(path.details, CdnDetails) else None
    if edge is not None and edge.pop:
        cache = "→".join(c for c in (edge.cache, edge.cache_repeat) if c)
        upstream = edge.server_timing.get("cdn-upstream-fbl")
        fbl = f", upstream first byte {ms(upstream)}" if upstream is not None else ""
        lines.append(Text(f"  {name}: edge {printable(edge.pop, 40)}, {printable(cache, 60)}"
                          f"{fbl}", style="dim"))
    if verdict.state is not RoutingState.OK or verdict.served_region != verdict.expected_region \
            or verdict.reason is not None:  # an ok with a finding (slow_app)
        why = f"{verdict.reason}: {verdict.detail}" if verdict.reason else verdict.detail
        lines.append(Text(f"  {name}: {printable(why)}", style=STATE_STYLE[verdict.state]))
    lines.extend(Text(f"  {name}: ! {printable(note)}", style="yellow") for note in path.notes)
    return lines


def round_name(vantage: VantageRound) -> str:
    """``fra``, or ``fra · api`` for a service other than the singular ``service``."""
    name = printable(vantage.vantage, 64)
    return name if vantage.service == DEFAULT_SERVICE else (
        f"{name} · {printable(vantage.service, 64)}")


def vantage_table(vantage: VantageRound, *, compact: bool = False) -> Group:
    title = Text.assemble((round_name(vantage), "bold"),
                          (f" ({vantage.duration_seconds:.2f} s)", "dim"))
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  expand=False)
    table.add_column("path", no_wrap=True, min_width=6)
    table.add_column("state", no_wrap=True, min_width=9)
    table.add_column("served", min_width=14)
    table.add_column("closest", min_width=14)
    table.add_column("penalty", no_wrap=True, justify="right", min_width=8)
    for path in vantage.paths:
        verdict = path.verdict
        table.add_row(path_label(vantage, path),
                      Text(verdict.state.value, style=STATE_STYLE[verdict.state]),
                      _region_cell(vantage, path, verdict.served_region, compact=compact),
                      _region_cell(vantage, path, verdict.expected_region, compact=compact),
                      ms(verdict.penalty_seconds) if verdict.penalty_seconds else "—")
    rows = [_regions_line(vantage.family_regions(family),
                          f"regions {family}" if vantage.dual_stack else "regions")
            for family in vantage.families or (IpFamily.IPV4,)]
    lines = [line for path in vantage.paths for line in _explanations(vantage, path)]
    return Group(table, *rows, *lines, Text(""))


def _regions_line(rows: tuple[RegionLatency, ...], title: str) -> Text:
    regions = Text(f"  {title}: ")
    for index, region in enumerate(sorted(rows,
                                          key=lambda r: r.latency_seconds or float("inf"))):
        if index:
            regions.append(" · ")
        name = printable(region.region, 40)
        if region.healthy and region.latency_seconds is None:  # up, but no sample to trust
            why = f" ({printable(str(region.reason))})" if region.reason else ""
            regions.append(f"{name} —{why}", style="yellow")
        elif region.healthy:
            regions.append(f"{name} {ms(region.latency_seconds)}", style="green")
        else:
            regions.append(f"{name} down ({printable(str(region.reason))})", style="red")
    return regions


def console_for_stdout() -> Console:
    """A terminal gets its own width; a pipe or a CI log gets 120 columns rather than 80."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def render_round(result: RoundResult, console: Console) -> None:
    for vantage in result.vantage_points:
        console.print(vantage_table(vantage, compact=console.width < COMPACT_BELOW))
    services = service_rounds(result)
    if len(services) > 1 or DEFAULT_SERVICE not in services:
        for service, own in services.items():
            console.print(_state_line(Text(f"{printable(service, 64)}: "), state_counts(own)))
    vantage_points = len({v.vantage for v in result.vantage_points})
    counts = state_counts(result)
    console.print(_state_line(Text(
        f"{plural(vantage_points, 'vantage point')}, "
        + (f"{plural(len(services), 'service')}, " if len(services) > 1 else "")
        + f"{plural(sum(counts.values()), 'path')} in "
          f"{result.duration_seconds:.2f} s: "), counts))


def _state_line(line: Text, counts: Mapping[str, int]) -> Text:
    for index, state in enumerate(RoutingState):
        if index:
            line.append(", ")
        line.append(f"{counts[state.value]} {state.value}",
                    style=STATE_STYLE[state] if counts[state.value] else "")
    return line


def failover_warnings(result: RoundResult) -> list[str]:
    """One line per path that failed over (exit 0 unless --strict, but worth saying)."""
    return [f"warning: {round_name(v)} {path_label(v, p)} failed over: "
            f"{printable(p.verdict.detail)}"
            for v in result.vantage_points for p in v.paths
            if p.verdict.state is RoutingState.FAILOVER]
