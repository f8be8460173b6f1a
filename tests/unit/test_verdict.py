"""Verdict rules as pure functions: no sockets."""

from __future__ import annotations

import pytest

from monitor.config import Tolerance
from monitor.core.model import RegionLatency, RoutingState
from monitor.core.verdict import allowed_penalty, estimate_latency, judge

TOL = Tolerance(absolute_ms=10, relative=0.25)


def row(region: str, ms: float | None, healthy: bool = True, reason: str | None = None
        ) -> RegionLatency:
    return RegionLatency(region, None if ms is None else ms / 1000, healthy, (), reason, reason)


MATRIX = (row("us-east-1", 8), row("eu-west-1", 75), row("ap-southeast-1", 230))


def test_closest_region_answering_is_ok() -> None:
    verdict = judge("us-east-1", MATRIX, TOL)
    assert verdict.state is RoutingState.OK
    assert verdict.expected_region == "us-east-1"
    assert verdict.penalty_seconds == 0


def test_worse_region_beyond_tolerance_is_misrouted_with_penalty() -> None:
    verdict = judge("eu-west-1", MATRIX, TOL)
    assert verdict.state is RoutingState.MISROUTED
    assert (verdict.served_region, verdict.expected_region) == ("eu-west-1", "us-east-1")
    assert verdict.penalty_seconds == pytest.approx(0.067)
    assert verdict.reason == "slower_region"


@pytest.mark.parametrize(("other_ms", "state"), [
    (18.0, RoutingState.OK),          # 10 ms worse: at the absolute tolerance
    (18.5, RoutingState.MISROUTED),   # just beyond it
])
def test_absolute_tolerance_boundary(other_ms: float, state: RoutingState) -> None:
    matrix = (row("us-east-1", 8), row("us-east-2", other_ms))
    assert judge("us-east-2", matrix, TOL).state is state


def test_relative_tolerance_applies_to_long_paths() -> None:
    matrix = (row("ap-southeast-1", 200), row("ap-southeast-2", 240))
    assert allowed_penalty(TOL, 0.2) == pytest.approx(0.05)
    assert judge("ap-southeast-2", matrix, TOL).state is RoutingState.OK
    assert judge("ap-southeast-2", matrix, Tolerance(absolute_ms=10, relative=0.1)).state is (
        RoutingState.MISROUTED)


def test_nominal_closest_down_and_next_best_answering_is_failover() -> None:
    matrix = (row("us-east-1", None, healthy=False, reason="connect_error"),
              row("eu-west-1", 75), row("ap-southeast-1", 230))
    verdict = judge("eu-west-1", matrix, TOL, nominal_closest="us-east-1")
    assert verdict.state is RoutingState.FAILOVER
    assert verdict.expected_region == "eu-west-1"
    assert "us-east-1" in verdict.detail


def test_failover_to_the_wrong_region_is_still_misrouted() -> None:
    matrix = (row("us-east-1", None, healthy=False), row("eu-west-1", 75),
              row("ap-southeast-1", 230))
    verdict = judge("ap-southeast-1", matrix, TOL, nominal_closest="us-east-1")
    assert verdict.state is RoutingState.MISROUTED


def test_a_down_region_that_is_not_the_closest_does_not_make_failover() -> None:
    matrix = (row("us-east-1", 8), row("eu-west-1", None, healthy=False))
    assert judge("us-east-1", matrix, TOL, nominal_closest="us-east-1").state is RoutingState.OK


def test_served_region_that_failed_the_baseline_is_misrouted_without_penalty() -> None:
    matrix = (row("us-east-1", 8), row("eu-west-1", None, healthy=False, reason="timeout"))
    verdict = judge("eu-west-1", matrix, TOL)
    assert verdict.state is RoutingState.MISROUTED
    assert verdict.reason == "served_unhealthy"
    assert verdict.penalty_seconds is None


@pytest.mark.parametrize(("served", "matrix", "reason"), [
    (None, MATRIX, "unattributed"),
    ("eu-central-1", MATRIX, "unconfigured_region"),
    ("us-east-1", (row("us-east-1", None, healthy=False),), "no_healthy_region"),
])
def test_unknown_has_a_typed_reason(served: str | None, matrix: tuple[RegionLatency, ...],
                                    reason: str) -> None:
    verdict = judge(served, matrix, TOL)
    assert verdict.state is RoutingState.UNKNOWN
    assert verdict.reason == reason


def test_estimator_takes_the_minimum() -> None:
    assert estimate_latency([0.031, 0.020, 0.022]) == 0.020
    assert estimate_latency([]) is None
