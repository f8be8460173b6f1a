"""``run_vantage`` measures and judges through the path table (:data:`monitor.core.paths.PATHS`),
and counts each planned check once."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from conftest import LabWorld
from lab_client import calm, injected_rows, round_rows

from monitor.config import VantagePoint, load_config
from monitor.core.evidence import Judgement, MeasureContext, PathInputs, Tick, VantageEvidence
from monitor.core.model import IpFamily, Path, PathResult, RoutingState, RoutingVerdict
from monitor.core.paths import PATHS, PathSpec, always
from monitor.round.run import run_round


def test_run_vantage_measures_and_judges_through_the_table(lab_world: LabWorld) -> None:
    """A fake entry replaces the table: it is measured (once per address family) and judged
    (IPv6 has no address in this world: not judged), nothing else is, and the progress count
    reaches exactly what was planned."""
    loaded = load_config(lab_world("healthy").config_path).config
    measured: list[str] = []
    judged: list[str] = []

    async def measure(context: MeasureContext, vantage: VantagePoint,
                      evidence: VantageEvidence, tick: Tick) -> None:
        measured.append(vantage.resolver)
        await context.slot()
        tick()
        tick()

    def judge(inputs: PathInputs) -> Judgement:
        judged.append(inputs.vantage_name)
        return Judgement(PathResult(Path.DNS, RoutingVerdict(RoutingState.OK, None, None)))

    fake = PathSpec(Path.DNS, measure, judge, always, lambda _: 2, http=False)
    progress: dict[str, list[tuple[int, int]]] = defaultdict(list)
    result = asyncio.run(run_round(loaded, vantage_points=["nyc"], paths=(fake,),
                                   progress=lambda v, done, planned:
                                   progress[v].append((done, planned))))
    assert measured == [loaded.vantage_points["nyc"].resolver] * len(loaded.probe.families)
    assert judged == ["nyc"]
    (vantage,) = result.vantage_points
    assert [p.path for p in vantage.paths] == [Path.DNS]
    planned = len(loaded.regions) * loaded.probe.samples + 2 * len(loaded.probe.families)
    assert progress["nyc"][-1] == (planned, planned)


def test_progress_reaches_the_plan_when_the_origin_is_never_requested(
        lab_world: LabWorld) -> None:
    """With DNS failing, the origin request never happens: each check is still counted once."""
    loaded = load_config(lab_world("dns-servfail").config_path).config
    progress: dict[str, list[tuple[int, int]]] = defaultdict(list)
    asyncio.run(run_round(loaded, progress=lambda v, done, planned:
                          progress[v].append((done, planned))))
    for name in loaded.vantage_points:
        dones = [done for done, _ in progress[name]]
        assert dones == list(range(1, len(dones) + 1)), name  # each tick counts one check
        done, planned = progress[name][-1]
        assert done == planned, name


def test_a_crashing_measurement_is_recorded_and_the_rest_judged(lab_world: LabWorld) -> None:
    world = lab_world("healthy")
    loaded = load_config(world.config_path).config

    async def broken(context: MeasureContext, vantage: VantagePoint,
                     evidence: VantageEvidence, tick: Tick) -> None:
        raise RuntimeError("bug in a measurement")

    def nothing(inputs: PathInputs) -> None:
        return None

    # measured in one family only: one crash, one record
    crashing = PathSpec(Path.CDN, broken, nothing, always, lambda _: 1, http=True,
                        families=(IpFamily.IPV4,))
    paths = (*(spec for spec in PATHS if spec.path is not Path.CDN), crashing)
    # a round the machine did not disturb, so the verdicts of the paths judged mean something
    v = calm(lambda: asyncio.run(run_round(loaded, vantage_points=["nyc"], paths=paths)),
             round_rows, injected_rows(world.scenario)).vantage_points[0]
    assert not v.success
    assert [(e.path, e.reason) for e in v.errors] == [("round", "internal_error")]
    assert {p.path: p.verdict.state for p in v.paths} == {Path.DNS: RoutingState.OK,
                                                          Path.ORIGIN: RoutingState.OK}
