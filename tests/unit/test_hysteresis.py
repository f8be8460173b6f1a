"""Hysteresis: a routing state flips only after N consecutive rounds agree."""

from __future__ import annotations

import pytest

from monitor.core.hysteresis import Hysteresis, observe_paths
from monitor.core.model import Path, RoutingState

OK, MIS, UNK, FAIL = (RoutingState.OK, RoutingState.MISROUTED, RoutingState.UNKNOWN,
                      RoutingState.FAILOVER)


def run(states: list[RoutingState], required: int) -> list[Hysteresis]:
    history = [Hysteresis.first(states[0], required)]
    for state in states[1:]:
        history.append(history[-1].observe(state))
    return history


def test_first_round_is_adopted() -> None:
    first = Hysteresis.first(MIS, 3)
    assert (first.stable, first.observed, first.streak, first.pending) == (MIS, MIS, 1, False)


def test_flips_only_after_n_consecutive_rounds() -> None:
    history = run([OK, MIS, MIS, MIS, MIS], 3)
    assert [h.stable for h in history] == [OK, OK, OK, MIS, MIS]
    assert [h.streak for h in history] == [1, 1, 2, 3, 4]
    assert [h.pending for h in history] == [False, True, True, False, False]


def test_a_single_bad_round_never_flips() -> None:
    history = run([OK, MIS, OK, MIS, OK, UNK, OK], 2)
    assert {h.stable for h in history} == {OK}


def test_alternating_bad_states_do_not_add_up() -> None:
    """misrouted, unknown, misrouted: three bad rounds, but no two agree."""
    history = run([OK, MIS, UNK, MIS, UNK], 2)
    assert {h.stable for h in history} == {OK}
    assert history[-1].streak == 1


def test_one_round_required_follows_every_round() -> None:
    assert [h.stable for h in run([OK, MIS, OK, FAIL], 1)] == [OK, MIS, OK, FAIL]


def test_returning_to_the_stable_state_cancels_a_pending_flip() -> None:
    history = run([MIS, OK, OK, MIS, OK, OK, OK], 3)
    assert [h.stable for h in history] == [MIS, MIS, MIS, MIS, MIS, MIS, OK]


def test_reload_changes_required_rounds_and_keeps_the_streak() -> None:
    state = run([OK, MIS, MIS], 5)[-1]
    assert state.stable is OK
    flipped = state.observe(MIS, rounds_required=3)
    assert (flipped.stable, flipped.streak, flipped.rounds_required) == (MIS, 3, 3)


def test_immutable_and_validated() -> None:
    state = Hysteresis.first(OK, 3)
    state.observe(MIS)
    assert state.observed is OK
    with pytest.raises(ValueError, match="rounds_required"):
        Hysteresis.first(OK, 0)


def test_observe_paths_tracks_each_path_on_its_own() -> None:
    first = observe_paths(None, {Path.DNS: OK, Path.ORIGIN: OK}, 2)
    second = observe_paths(first, {Path.DNS: MIS, Path.ORIGIN: OK, Path.CDN: UNK}, 2)
    third = observe_paths(second, {Path.DNS: MIS, Path.ORIGIN: OK, Path.CDN: OK}, 2)
    assert second[Path.CDN].stable is UNK  # a path seen for the first time starts fresh
    assert (third[Path.DNS].stable, third[Path.ORIGIN].streak, third[Path.CDN].stable) == (
        MIS, 3, UNK)
