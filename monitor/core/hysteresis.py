"""Hysteresis for routing verdicts: a state flips only after N consecutive rounds agree.

One round's verdict is evidence, not a conclusion: a single slow sample or a resolver hiccup can
make one round look misrouted. :class:`Hysteresis` keeps, per (vantage point, path), the *stable*
state (what routewatch reports and alerts on), the latest *observed* state and how many consecutive
rounds (the *streak*) have observed it. Pure and immutable: ``observe`` returns the next value.

The first round is adopted as the stable state at once: there is no earlier state to protect, and
starting as ``unknown`` would page on every restart.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.core.model import Path, RoutingState
from probes.records import record

__all__ = ["Hysteresis", "observe_paths"]


@record
class Hysteresis:
    """One vantage point and path's routing state, debounced over ``rounds_required`` rounds."""

    stable: RoutingState
    observed: RoutingState
    streak: int
    rounds_required: int

    def __post_init__(self) -> None:
        if self.rounds_required < 1:
            raise ValueError("rounds_required must be at least 1")
        if self.streak < 1:
            raise ValueError("streak must be at least 1")

    @classmethod
    def first(cls, state: RoutingState, rounds_required: int) -> Hysteresis:
        """The state after the first round ever observed."""
        return cls(state, state, 1, rounds_required)

    def observe(self, state: RoutingState, rounds_required: int | None = None) -> Hysteresis:
        """The state after one more round that observed ``state``.

        ``rounds_required`` replaces the configured number (after a reload); the streak carries
        over.
        """
        required = self.rounds_required if rounds_required is None else rounds_required
        streak = self.streak + 1 if state == self.observed else 1
        stable = state if state == self.stable or streak >= required else self.stable
        return Hysteresis(stable, state, streak, required)

    @property
    def pending(self) -> bool:
        """True while the latest rounds disagree with the stable state and have not flipped it."""
        return self.observed != self.stable


def observe_paths(
    previous: Mapping[Path, Hysteresis] | None,
    observed: Mapping[Path, RoutingState],
    rounds_required: int,
) -> dict[Path, Hysteresis]:
    """Advance every path of one vantage point by one round; a path seen first starts fresh."""
    before = previous or {}
    result: dict[Path, Hysteresis] = {}
    for path, state in observed.items():
        prior = before.get(path)
        result[path] = (Hysteresis.first(state, rounds_required) if prior is None
                        else prior.observe(state, rounds_required))
    return result
