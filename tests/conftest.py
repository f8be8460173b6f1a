"""Shared fixtures. Lab fixtures: one world per built-in scenario per test session."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from monitor.lab import LabHandle, start_lab

LabWorld = Callable[[str], LabHandle]


@pytest.fixture(scope="session")
def lab_world() -> Iterator[LabWorld]:
    """``lab_world(name)``: the running world of a built-in scenario (or scenario file), started
    once per session; every call restores the scenario's own faults first."""
    worlds: dict[str, LabHandle] = {}

    def get(name: str) -> LabHandle:
        world = worlds.get(name)
        if world is None or not world.running:
            world = worlds[name] = start_lab(name)
        else:
            world.reset_faults()
        return world

    yield get
    for world in worlds.values():
        world.stop()
