"""The check table as a person reads it: narrow terminals and regions with no trusted sample."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rounds import round_of, vantage_round

from monitor.cli.render import render_round
from monitor.core.model import RegionLatency, RoutingState, VantageRound
from monitor.domain.reasons import Reason


def rendered(vantage: VantageRound, width: int) -> str:
    out = io.StringIO()
    render_round(round_of(vantage), Console(file=out, width=width))
    return out.getvalue()


@pytest.mark.parametrize("width", [66, 70, 79, 80, 120])
def test_the_penalty_is_never_cut_on_a_narrow_terminal(width: int) -> None:
    misrouted = vantage_round("dub", state=RoutingState.MISROUTED, served="ap-southeast-1",
                              expected="eu-west-1", penalty=0.0633,
                              regions={"eu-west-1": 0.006, "ap-southeast-1": 0.0693})
    text = rendered(misrouted, width)
    header = next(line for line in text.splitlines() if line.strip().startswith("path"))
    assert header.split() == ["path", "state", "served", "closest", "penalty"]
    rows = [line for line in text.splitlines() if line.strip().startswith("origin ")]
    assert rows, text
    assert rows[0].split()[-2:] == ["63.3", "ms"]
    assert "ap-southeast-1" in rows[0]  # the region name whole, not cut to "ap-southeas…"
    assert "ap-southeast-1 69.3 ms" in text  # the latency is still on the page


def test_a_region_up_but_without_a_trusted_sample_says_why() -> None:
    base = vantage_round("dub")
    disturbed = RegionLatency("ap-southeast-1", None, True, (), Reason.MEASUREMENT_DISTURBED,
                              "the loop stalled")
    text = rendered(VantageRound(base.vantage, base.started_at, base.duration_seconds,
                                 (*base.regions, disturbed), base.paths, base.errors, base.dns,
                                 base.success), 120)
    assert "ap-southeast-1 — (measurement_disturbed)" in text


def test_a_failover_warning_names_the_family_of_a_dual_stack_round() -> None:
    import dataclasses

    from monitor.cli.render import failover_warnings
    from monitor.core.model import IpFamily, Path

    base = vantage_round("dub", state=RoutingState.FAILOVER, paths=(Path.ORIGIN,))
    v6 = dataclasses.replace(base.paths[0], family=IpFamily.IPV6)
    dual = dataclasses.replace(base, paths=(base.paths[0], v6))
    assert [w.split(" failed over")[0] for w in failover_warnings(round_of(dual))] == [
        "warning: dub origin ipv4", "warning: dub origin ipv6"]
    assert failover_warnings(round_of(base))[0].startswith("warning: dub origin failed over")
