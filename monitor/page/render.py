"""The routing page: one round document drawn as a self-contained HTML page.

One renderer under ``serve``'s ``/`` (live: refreshes itself, ages tick) and ``check --html FILE``
(a static artefact of one round). No external assets: inline CSS, and in live mode one inline
script whose hash is the only script the page's Content-Security-Policy allows, so even a value
that escaped escaping could not run. Every value from the document goes through :func:`_e`.
States carry a text marker beside their colour (✓ ✗ ↪ ?), so the page reads without colour.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from monitor.page.view import (
    PageView,
    PathView,
    RegionCell,
    VantageView,
    page_view,
    worst_counted,
)
from probes.records import record

__all__ = [
    "LATENCY_BANDS",
    "STATE_MARKERS",
    "LiveOptions",
    "format_age",
    "format_ms",
    "render_page",
    "render_view",
]

STATE_MARKERS: dict[str, str] = {"ok": "✓", "failover": "↪", "misrouted": "✗", "unknown": "?"}
"""A routing state → its text marker (a test holds this to :class:`RoutingState`)."""

LATENCY_BANDS: tuple[tuple[float, str], ...] = (
    (0.020, "≤ 20 ms"), (0.050, "≤ 50 ms"), (0.100, "≤ 100 ms"), (0.200, "≤ 200 ms"),
    (float("inf"), "> 200 ms"),
)
"""Round-trip colour bands of the matrix, fastest first (CSS classes ``band-0`` …)."""

EXPECTED_MARKER = "◎"
CLOSEST_MARKER = "★"
STALE_MARKER = "⚠"


@record
class LiveOptions:
    """What the live page (``serve``'s ``/``) adds: refresh, stale marking, links."""

    refresh_seconds: int
    stale_after_seconds: float
    links: tuple[tuple[str, str], ...] = (("/metrics", "metrics"), ("/healthz", "healthz"))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def format_ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    milliseconds = seconds * 1000
    return f"{milliseconds:.1f} ms" if abs(milliseconds) < 100 else f"{milliseconds:.0f} ms"


def format_age(seconds: float) -> str:
    """As the live script formats it (keep the two in step)."""
    whole = max(0, math.floor(seconds + 0.5))  # Math.round, not round-half-even
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _state_class(state: str) -> str:
    """A CSS class from the fixed vocabulary only (a document's word never becomes a class)."""
    return f"st-{state}" if state in STATE_MARKERS else "st-unknown"


def _state_badge(state: str) -> str:
    marker = STATE_MARKERS.get(state, STATE_MARKERS["unknown"])
    return f'<span class="state {_state_class(state)}">{marker} {_e(state)}</span>'


def _band(seconds: float) -> int:
    return next(i for i, (limit, _) in enumerate(LATENCY_BANDS) if seconds <= limit)


# --- the live script ------------------------------------------------------------------------------

_LIVE_SCRIPT = (
    "(function(){var d=document.documentElement,s=parseFloat(d.getAttribute('data-served-at')),"
    "t=Date.now();function f(x){x=Math.max(0,Math.round(x));return x<120?x+' s':x<7200?"
    "Math.floor(x/60)+' min':Math.floor(x/3600)+' h '+Math.floor(x%3600/60)+' min'}"
    "function tick(){var n=s+(Date.now()-t)/1e3;document.querySelectorAll('[data-finished-at]')"
    ".forEach(function(e){var a=n-parseFloat(e.getAttribute('data-finished-at')),"
    "l=parseFloat(e.getAttribute('data-stale-after')),o=a>l;e.classList.toggle('stale',o);"
    "e.textContent=(o?'" + STALE_MARKER + " stale, ':'')+f(a)+' ago'})}tick();"
    "setInterval(tick,1000)})();"
)
"""Ticks every age from the server's clock at serve time (``data-served-at``) plus the time
since load, so a page that is not refreshed still tells how old each round is."""

_LIVE_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_LIVE_SCRIPT.encode()).digest()).decode()


def _csp(live: bool) -> str:
    script = f"'sha256-{_LIVE_SCRIPT_HASH}'" if live else "'none'"
    return (f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; "
            "img-src 'none'; base-uri 'none'; form-action 'none'")


# --- the page -------------------------------------------------------------------------------------

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff;
--ok:#1a7f37;--ok-bg:#dafbe1;--failover:#7d4e00;--failover-bg:#fff1b8;
--misrouted:#b3261e;--misrouted-bg:#ffe2de;--unknown:#6e40c9;--unknown-bg:#f1e8ff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1400px;margin:0 auto;padding:12px 16px 32px}
h1{font-size:1.35rem;margin:0}h2{font-size:1.1rem;margin:22px 0 8px}
h3{font-size:1.05rem;margin:0;display:flex;flex-wrap:wrap;gap:6px 10px;align-items:baseline}
a{color:#0550ae}
header{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center;padding:10px 0 6px;
border-bottom:1px solid var(--line)}
.meta{color:var(--muted);font-size:.87rem;font-weight:400}
.links a{margin-right:10px}
.banner{border-radius:8px;padding:10px 14px;margin:12px 0 4px;font-weight:600;
border:1px solid currentColor}
.summary{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.state,.count{display:inline-block;border-radius:999px;padding:1px 9px;font-weight:600;
font-size:.87rem;white-space:nowrap}
.st-ok{color:var(--ok);background:var(--ok-bg)}
.st-failover{color:var(--failover);background:var(--failover-bg)}
.st-misrouted{color:var(--misrouted);background:var(--misrouted-bg)}
.st-unknown{color:var(--unknown);background:var(--unknown-bg)}
.count.zero{color:var(--muted);background:#eaeef2;font-weight:400}
ul.problems{margin:6px 0;padding-left:0;list-style:none}
ul.problems li{margin:4px 0}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse}
table.matrix{background:var(--card);border:1px solid var(--line);border-radius:8px;
font-variant-numeric:tabular-nums}
.matrix th,.matrix td{border:1px solid var(--line);padding:6px 10px;vertical-align:top}
.matrix thead th{background:#eef1f4;text-align:left;font-size:.9rem;white-space:nowrap}
.matrix tbody th{text-align:left;background:var(--card);white-space:nowrap}
.matrix td{min-width:10.5rem}
.rtt{font-weight:600;font-size:1.02rem;white-space:nowrap}
.closest .rtt{text-decoration:underline 2px}
.mark{font-size:.8rem;font-weight:600;margin-left:4px}
.band-0{background:#cdf3d5}.band-1{background:#e5f4c4}.band-2{background:#fff0b3}
.band-3{background:#ffdcb8}.band-4{background:#ffc9c4}
td.down,td.nodata{background:repeating-linear-gradient(45deg,#eceff2 0 6px,#f7f8fa 6px 12px);
color:var(--muted)}
.chips{display:flex;flex-wrap:wrap;gap:3px;margin-top:4px}
.chip{border-radius:4px;padding:0 6px;font-size:.78rem;font-weight:600;border:1px solid
transparent;white-space:nowrap}
.chip.expected{background:#fff;color:var(--fg);border:1px dashed var(--fg);font-weight:400}
.age{color:var(--muted);font-size:.85rem;font-weight:400}
.age.stale{color:var(--misrouted);font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.83rem;color:var(--muted);
margin:8px 0 0}
.legend .swatch{display:inline-block;width:.9em;height:.9em;border:1px solid var(--line);
vertical-align:-1px;margin-right:4px}
.vantages{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,30rem),1fr));
gap:12px}
.vantage{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.vantage.problem{border-left:5px solid var(--misrouted)}
table.paths{width:100%;margin-top:8px;font-size:.9rem;font-variant-numeric:tabular-nums}
.paths th{text-align:left;color:var(--muted);font-weight:600;border-bottom:1px solid var(--line);
padding:3px 6px 3px 0}
.paths td{padding:5px 6px 0 0;vertical-align:top}
.paths tr.why td{padding:0 0 6px;border-bottom:1px solid #eaeef2;color:var(--muted);
font-size:.85rem;overflow-wrap:anywhere}
.paths small{color:var(--muted)}
ul.evidence{margin:6px 0 0;padding-left:1.1rem;font-size:.85rem;overflow-wrap:anywhere}
.warn{color:var(--failover)}
footer{margin-top:22px;color:var(--muted);font-size:.8rem}
@media (max-width:560px){body{font-size:14px}main{padding:8px 8px 24px}
.matrix th,.matrix td{padding:4px 5px}.matrix td{min-width:0}
.matrix thead th{font-size:.8rem;white-space:normal}
.rtt{font-size:.92rem}.matrix .word{display:none}.chip{font-size:.7rem;padding:0 4px}}
"""


def render_page(document: Any, *, now: float, live: LiveOptions | None = None) -> str:
    """The page of one round document (``check --json`` shape); ages are as of ``now``.

    Raises :class:`~monitor.page.view.PageDocumentError` when the document is malformed.
    """
    return render_view(page_view(document), now=now, live=live)


def render_view(view: PageView, *, now: float, live: LiveOptions | None = None) -> str:
    """The page of an already read document."""
    refresh = (f'<meta http-equiv="refresh" content="{int(live.refresh_seconds)}">'
               if live is not None else "")
    script = f"<script>{_LIVE_SCRIPT}</script>" if live is not None else ""
    title = "routewatch · routing" + (" (live)" if live is not None else "")
    body = "".join((
        _header(view, now, live),
        _services(view),
        _problems(view),
        _matrix(view, now, live),
        _vantages(view, now, live),
        _footer(view),
    ))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en" data-served-at="{now:.3f}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp(live is not None))}">'
        f"{refresh}<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main>{script}</body></html>\n"
    )


def _where(vantage: VantageView) -> str:
    """The data attributes naming a vantage point's round (and its service, when several)."""
    service = f' data-service="{_e(vantage.service)}"' if vantage.service is not None else ""
    family = f' data-family="{_e(vantage.family)}"' if vantage.family is not None else ""
    return f'data-vantage="{_e(vantage.name)}"{service}{family}'


def _services(view: PageView) -> str:
    """One chip per service with its worst state, when the configuration has several."""
    if not view.services:
        return ""
    chips = "".join(
        f'<span class="count {_state_class(service.worst)}" data-service="{_e(service.name)}">'
        f"{STATE_MARKERS.get(service.worst, '?')} {_e(service.name)}: "
        + _e(", ".join(f"{count} {state}" for state, count in service.summary if count))
        + "</span>" for service in view.services)
    return f'<div class="summary services"><b>services</b> {chips}</div>'


def _problem_paths(view: PageView) -> Iterator[tuple[VantageView, PathView]]:
    for vantage in view.vantage_points:
        for path in vantage.paths:
            if path.state != "ok":
                yield vantage, path


def _header(view: PageView, now: float, live: LiveOptions | None) -> str:
    counts = dict(view.summary)
    for _, path in _problem_paths(view):
        counts.setdefault(path.state, 0)
    chips = "".join(
        f'<span class="count {_state_class(state) if count else "zero"}">'
        f"{STATE_MARKERS.get(state, '?')} {count} {_e(state)}</span>"
        for state, count in counts.items())
    problems = sum(1 for _ in _problem_paths(view))
    failed = _incomplete_rounds(view)
    if problems or failed or view.remote_failures:
        worst = worst_counted(counts, "unknown")
        text = []
        if problems:
            total = sum(len(v.paths) for v in view.vantage_points)
            text.append(f"{problems} of {total} path{'s' if total != 1 else ''} not ok")
        if failed:
            text.append(f"{len(failed)} round{'s' if len(failed) != 1 else ''} incomplete")
        if view.remote_failures:
            text.append(f"{len(view.remote_failures)} regional probe(s) did not answer")
        banner = (f'<div class="banner {_state_class(worst)}">{STATE_MARKERS[worst]} '
                  f"{_e(', '.join(text))}</div>")
    elif not view.vantage_points:
        banner = ('<div class="banner st-unknown">? no round yet: waiting for the first '
                  "rounds</div>")
    else:
        banner = (f'<div class="banner st-ok">{STATE_MARKERS["ok"]} every path is served by '
                  "its closest region</div>")
    if live is not None:
        when = f"live · each vantage point's latest round · reloads every {live.refresh_seconds} s"
        links = '<nav class="links">' + "".join(
            f'<a href="{_e(href)}">{_e(label)}</a>' for href, label in live.links) + "</nav>"
    else:
        started = (f"round started {_utc(view.started_at)}" if view.started_at is not None
                   else "one round")
        took = (f" · took {view.duration_seconds:.2f} s" if view.duration_seconds is not None
                else "")
        when = f"{started}{took} · page written {_utc(now)}"
        links = ""
    return (f'<header><h1>routewatch <span class="meta">routing</span></h1>'
            f'<span class="meta">{_e(when)}</span>{links}</header>'
            f'{banner}<div class="summary">{chips}</div>')


def _incomplete_rounds(view: PageView) -> list[VantageView]:
    """The rounds that did not judge every path, each once (a dual-stack round is drawn as a
    view per family, the round's errors on the first)."""
    seen: dict[tuple[str, str | None], VantageView] = {}
    for vantage in view.vantage_points:
        if not vantage.success:
            seen.setdefault((vantage.name, vantage.service), vantage)
    return list(seen.values())


def _problems(view: PageView) -> str:
    items = []
    for vantage, path in _problem_paths(view):
        why = f"{path.reason}: {path.detail}" if path.reason else path.detail
        items.append(f'<li {_where(vantage)} data-path="{_e(path.label)}">'
                     f"{_state_badge(path.state)} <b>{_e(vantage.label)}</b> {_e(path.label)}"
                     f" — {_e(why)}</li>")
    for vantage in _incomplete_rounds(view):
        reasons = "; ".join(f"{r}: {m}" for w, r, m in vantage.errors if w == "round")
        # a round error (the deadline) failed the round; otherwise a path could not be judged
        outcome = f"failed: {reasons}" if reasons else "incomplete: not every path was judged"
        label = " · ".join(part for part in (vantage.name, vantage.service) if part)
        items.append(f"<li>{_state_badge('unknown')} <b>{_e(label)}</b> round {_e(outcome)}"
                     "</li>")
    items.extend(f"<li>{_state_badge('unknown')} regional probe <b>{_e(f.region)}</b> did not "
                 f"answer — {_e(f.reason)}: {_e(f.message)}</li>" for f in view.remote_failures)
    return f'<ul class="problems">{"".join(items)}</ul>' if items else ""


def _age(finished_at: float, now: float, live: LiveOptions | None) -> str:
    age = now - finished_at
    title = f"finished {_utc(finished_at)}"
    if live is None:  # a saved page: an age would be wrong tomorrow, the time is not
        return f'<span class="age" title="{_e(title)}">{_e(title)}</span>'
    stale = age > live.stale_after_seconds
    text = f"{STALE_MARKER} stale, " if stale else ""
    return (f'<span class="age{" stale" if stale else ""}" title="{_e(title)}" '
            f'data-finished-at="{finished_at:.3f}" '
            f'data-stale-after="{live.stale_after_seconds:g}">{text}{_e(format_age(age))} ago'
            "</span>")


def _chips(vantage: VantageView, region: str) -> str:
    chips = []
    for path in vantage.paths:
        served = path.served_region == region
        expected = path.expected_region == region
        if served:
            role = "served expected" if expected else "served"
            marker = STATE_MARKERS.get(path.state, "?")
            chips.append(f'<span class="chip {_state_class(path.state)}"'
                         f' data-path="{_e(path.label)}" data-role="{role}"'
                         f' data-state="{_e(path.state)}"'
                         f' title="{_e(path.label)} served by {_e(region)}: {_e(path.state)}">'
                         f"{marker} {_e(path.label)}</span>")
        elif expected:
            chips.append(f'<span class="chip expected" data-path="{_e(path.label)}"'
                         f' data-role="expected" title="{_e(path.label)} should be served by '
                         f'{_e(region)}">{EXPECTED_MARKER} {_e(path.label)}</span>')
    return f'<div class="chips">{"".join(chips)}</div>' if chips else ""


CERT_WARNING_DAYS = 14
"""A certificate closer than this to its expiry is marked in its cell (the alert rule's
warning threshold)."""


def _certificate(cell: RegionCell, now: float) -> tuple[str, str]:
    """The cell's TLS line for its title, and a visible mark when the certificate the region
    presents expires within :data:`CERT_WARNING_DAYS` (or has expired)."""
    if cell.cert_not_after is None:
        return (f"\n{cell.tls_version}" if cell.tls_version else ""), ""
    left = cell.cert_not_after - now
    title = (f"\n{cell.tls_version or 'TLS'}, certificate until "
             f"{_utc(cell.cert_not_after)}")
    if left >= CERT_WARNING_DAYS * 86400:
        return title, ""
    # whole days left, rounded down (13.6 days is "13 d"); under a day, hours
    text = ("expired" if left < 0 else f"{int(left // 86400)} d" if left >= 86400
            else f"{int(left // 3600)} h")
    expires = _e(_utc(cell.cert_not_after))
    return title, (f'<br><small class="cert" title="certificate expires {expires}">'
                   f"{STALE_MARKER} cert {_e(text)}</small>")


def _cell(vantage: VantageView, cell: RegionCell | None, region: str, closest: bool,
          now: float) -> str:
    where = f'{_where(vantage)} data-region="{_e(region)}"'
    chips = _chips(vantage, region)
    if cell is None:
        return f'<td class="cell nodata" {where}>—{chips}</td>'
    tls, cert = _certificate(cell, now)
    why = ": ".join(x for x in (cell.reason, cell.message) if x)
    if not cell.healthy:
        return (f'<td class="cell down" {where} title="{_e((why or "no answer") + tls)}">'
                f'<span class="rtt">✗ down</span><br><small>{_e(cell.reason or "")}</small>'
                f"{cert}{chips}</td>")
    if cell.latency_seconds is None:  # it answered, but no sample could be trusted
        return (f'<td class="cell nodata" {where} title="{_e((why or "no estimate") + tls)}">'
                f'<span class="rtt">—</span><br><small>{_e(cell.reason or "")}</small>'
                f"{cert}{chips}</td>")
    mark = (f'<span class="mark" title="closest region">{CLOSEST_MARKER}'
            '<span class="word"> closest</span></span>'
            if closest else "")
    title = f' title="{_e(tls.lstrip())}"' if tls else ""
    return (f'<td class="cell band-{_band(cell.latency_seconds)}{" closest" if closest else ""}" '
            f'{where} data-rtt-ms="{cell.latency_seconds * 1000:.1f}"{title}>'
            f'<span class="rtt">{_e(format_ms(cell.latency_seconds))}</span>{mark}{cert}{chips}'
            "</td>")


INCOMPLETE = ('<span class="state st-unknown" title="not every path was judged, or the round '
              'hit its deadline: see the paths and errors">? incomplete</span>')
"""The mark of a round that did not judge every path (``routewatch_round_success`` 0)."""


def _matrix(view: PageView, now: float, live: LiveOptions | None) -> str:
    regions = view.regions
    head = "".join(f'<th scope="col">{_e(r)}</th>' for r in regions)
    rows = []
    for vantage in view.vantage_points:
        failed = "" if vantage.success else f" {INCOMPLETE}"
        by_region = {c.region: c for c in vantage.regions}
        closest = vantage.closest_region
        cells = "".join(_cell(vantage, by_region.get(r), r, r == closest, now) for r in regions)
        rows.append(f'<tr {_where(vantage)}><th scope="row">{_e(vantage.label)}'
                    f"{failed}<br>{_age(vantage.finished_at, now, live)}</th>{cells}</tr>")
    bands = "".join(f'<span><span class="swatch band-{i}"></span>{_e(label)}</span>'
                    for i, (_, label) in enumerate(LATENCY_BANDS))
    legend = (f'<div class="legend">{bands}<span>{CLOSEST_MARKER} closest measured region</span>'
              f"<span>✓ ✗ ↪ ? path served here (its state)</span>"
              f"<span>{EXPECTED_MARKER} path should be served here</span></div>")
    return ('<h2>Latency matrix <span class="meta">round trip from each vantage point to each '
            'region, measured directly</span></h2>'
            '<div class="scroll"><table class="matrix"><thead><tr><th scope="col">vantage'
            f'<span class="word"> point</span></th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{legend}")


def _region_with_rtt(vantage: VantageView, path: PathView, region: str | None) -> str:
    if region is None:
        return "?"
    cell = vantage.cell(region)
    # the cdn's regions are seen from the edge: this vantage point's round trip to them only
    # stands in when the verdict gave a penalty (the edge is in the vantage point's metro)
    show = path.path != "cdn" or path.penalty_seconds is not None
    rtt = (f"<br><small>{_e(format_ms(cell.latency_seconds))}</small>"
           if show and cell is not None and cell.latency_seconds is not None else "")
    unconfigured = "" if cell is not None else " <small>(not measured)</small>"
    return f"{_e(region)}{unconfigured}{rtt}"


def _evidence(path: PathView) -> Iterable[str]:
    if path.pop or path.cache:
        cache = " → ".join(c for c in (path.cache, path.cache_repeat) if c)
        parts = [f"edge {path.pop}" if path.pop else "edge ?"]
        if cache:
            parts.append(f"cache {cache}")
        if path.upstream_first_byte_seconds is not None:
            parts.append(f"upstream first byte {format_ms(path.upstream_first_byte_seconds)}")
        yield f"{path.label}: " + ", ".join(parts)
    if path.data_region is not None:
        local = "" if path.data_path_local is not False else f" {STALE_MARKER} not region-local"
        yield f"{path.label}: data read in {path.data_region}{local}"
    # a conflict is often also a note of the path: say it once
    for line in dict.fromkeys((*path.conflicts, *path.notes)):
        yield f"{STALE_MARKER} {path.label}: {line}"


def _stable(path: PathView) -> str:
    if path.stable_state is None or path.stable_state == path.state:
        return ""
    progress = (f", {path.streak}/{path.rounds_required} rounds"
                if path.streak is not None and path.rounds_required is not None else "")
    return f"<br><small>stable: {_e(path.stable_state)}{_e(progress)}</small>"


def _vantage_card(vantage: VantageView, now: float, live: LiveOptions | None) -> str:
    rows = []
    evidence: list[str] = []
    for path in vantage.paths:
        why = f"{path.reason}: {path.detail}" if path.reason else path.detail
        penalty = format_ms(path.penalty_seconds) if path.penalty_seconds else "—"
        rows.append(
            f'<tr class="path" data-path="{_e(path.label)}" '
            f'data-state="{_e(path.state)}"><td><b>{_e(path.label)}</b></td>'
            f"<td>{_state_badge(path.state)}{_stable(path)}</td>"
            f"<td>{_region_with_rtt(vantage, path, path.served_region)}</td>"
            f"<td>{_region_with_rtt(vantage, path, path.expected_region)}</td>"
            f"<td>{_e(penalty)}</td></tr>"
            f'<tr class="why"><td colspan="5">{_e(why)}</td></tr>')
        evidence.extend(_evidence(path))
    evidence.extend(f"{STALE_MARKER} {where}: {reason}: {message}"
                    for where, reason, message in vantage.errors)
    failed = "" if vantage.success else INCOMPLETE
    items = "".join(f'<li class="{"warn" if e.startswith(STALE_MARKER) else ""}">{_e(e)}</li>'
                    for e in evidence)
    table = ('<div class="scroll"><table class="paths"><thead><tr><th>path</th><th>state</th>'
             "<th>served</th><th>expected</th><th>penalty</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table></div>") if rows else ""
    return (f'<section class="vantage{" problem" if vantage.has_problem else ""}" '
            f'{_where(vantage)}><h3>{_e(vantage.label)} {failed}'
            f"{_age(vantage.finished_at, now, live)}"
            f'<span class="meta">round took {vantage.duration_seconds:.2f} s</span></h3>'
            f"{table}{f'<ul class=evidence>{items}</ul>' if items else ''}</section>")


def _vantages(view: PageView, now: float, live: LiveOptions | None) -> str:
    if not view.vantage_points:
        return ""
    ordered = sorted(view.vantage_points, key=lambda v: not v.has_problem)  # problems first
    cards = "".join(_vantage_card(v, now, live) for v in ordered)
    return (f'<h2>Paths per vantage point <span class="meta">problems first</span></h2>'
            f'<div class="vantages">{cards}</div>')


def _footer(view: PageView) -> str:
    version = f"routewatch {view.version}" if view.version else "routewatch"
    return (f"<footer>{_e(version)} · states: ✓ ok, ↪ failover (closest region down, next "
            "best answered), ✗ misrouted (a slower region answered beyond the tolerance), "
            "? unknown (could not tell; the reason says why)</footer>")
