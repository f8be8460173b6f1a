"""Shared fixtures. ``lab_world``: one running world per scenario per test session.

The test tree: ``unit/`` (no sockets), ``integration/`` (lab worlds, real servers on loopback),
``e2e/`` (real Prometheus, moto and ``routewatch serve`` processes). Shared builders live beside
this file: ``rounds.py`` (hand-made rounds), ``aws_helpers.py`` (the EMF checker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from monitor.lab import LabHandle, Scenario, start_lab

LabWorld = Callable[[str | Scenario], LabHandle]


@pytest.fixture(scope="session")
def lab_world() -> Iterator[LabWorld]:
    """``lab_world(name_or_scenario)``: the running world of a built-in scenario, a scenario file
    or a named :class:`Scenario`, started once per session; every call restores the scenario's
    own faults first, so a test starts from the world as its scenario describes it."""
    worlds: dict[str, LabHandle] = {}

    def get(scenario: str | Scenario) -> LabHandle:
        key = scenario if isinstance(scenario, str) else scenario.name
        if key is None:
            raise ValueError("a Scenario given to lab_world needs a name")
        world = worlds.get(key)
        if world is None or not world.running:
            world = worlds[key] = start_lab(scenario)
        else:
            world.reset_faults()
        return world

    yield get
    for world in worlds.values():
        world.stop()
