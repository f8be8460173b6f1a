"""The ``auto`` estimator, pure: ``connect`` where the TCP peer is the server, ``first_byte`` for
the whole row where something near answers the connect (a transparent proxy, a middlebox, the
loopback lab's delay proxy), decided from injected sample numbers (no sockets)."""

from __future__ import annotations

import pytest

from monitor.config import Config, Estimator, Tolerance, parse_config
from monitor.core.model import RoutingState
from monitor.core.verdict import judge
from monitor.domain.reasons import Reason
from monitor.round.baseline import auto_estimators, connect_is_local, summarise_row
from probes.http import HttpEvidence, HttpTarget, TlsSession

TOL = Tolerance(absolute_ms=10, relative=0.25, slow_app_ms=50)
REGIONS = ("us-east-1", "eu-west-1")


def config(estimator: str | None = None) -> Config:
    probe = f"probe: {{estimator: {estimator}}}" if estimator else ""
    return parse_config(f"""
service: {{origin_name: global-alb.example.com}}
regions: {{us-east-1: {{addresses: [127.0.10.1]}}, eu-west-1: {{addresses: [127.0.10.2]}}}}
vantage_points: {{nyc: {{resolver: 127.0.0.53}}}}
{probe}
""").config


def sample(connect_ms: float, tls_ms: float, first_byte_ms: float,
           version: str | None = "TLSv1.3") -> HttpEvidence:
    return HttpEvidence(HttpTarget("global-alb.example.com", "127.0.10.1"), 200,
                        {"connect": connect_ms / 1000, "tls": tls_ms / 1000,
                         "processing": first_byte_ms / 1000}, 0.5,
                        tls=TlsSession(version, False, None))


def at_server(rtt_ms: float, app_ms: float = 0.5) -> list[HttpEvidence]:
    """A real path: SYN-ACK, handshake and first byte each pay the round trip."""
    return [sample(rtt_ms + jitter, rtt_ms + 2 + jitter, rtt_ms + app_ms + jitter)
            for jitter in (0.1, 0.4, 0.2)]


def behind_local_proxy(rtt_ms: float, app_ms: float = 0.5) -> list[HttpEvidence]:
    """A proxy next to the client accepts TCP; the handshake and first byte cross the path."""
    return [sample(0.08 + jitter / 10, rtt_ms + 1.5 + jitter, rtt_ms + app_ms + jitter)
            for jitter in (0.1, 0.4, 0.2)]


def test_a_connect_answered_by_the_server_is_not_local() -> None:
    assert connect_is_local(at_server(8)) is False
    assert connect_is_local(at_server(230)) is False
    assert connect_is_local(at_server(0.3)) is False  # same metro: crypto alone is no sign
    assert connect_is_local(behind_local_proxy(6)) is True
    assert connect_is_local(behind_local_proxy(230)) is True
    assert connect_is_local([]) is None
    assert connect_is_local([sample(0.1, 30, 31, version="SSLv3")]) is None  # no round trips


def test_consistently_one_disturbed_sample_does_not_flip_the_decision() -> None:
    # a busy machine slows one real handshake by 30 ms: the connects still match the round trip
    busy_server = [sample(8.1, 10.0, 8.6), sample(8.3, 40.0, 9.0), sample(8.2, 10.3, 8.7)]
    assert connect_is_local(busy_server) is False
    # a stall during one connect through the local proxy: the others still read ~0
    stalled_proxy = [sample(0.1, 31.0, 31.4), sample(14.0, 31.2, 31.6), sample(0.1, 31.1, 31.5)]
    assert connect_is_local(stalled_proxy) is True
    # only the minimum says local, most samples do not: not consistent
    assert connect_is_local([sample(1.0, 30.0, 31), sample(25.0, 30.0, 31),
                             sample(26.0, 31.0, 32)]) is False


def test_auto_reads_connect_where_the_server_answers_it_and_says_why() -> None:
    rows = summarise_row({"us-east-1": at_server(8, app_ms=15), "eu-west-1": at_server(75)},
                         config())
    assert config().probe.estimator is Estimator.AUTO  # the default
    for row, rtt in zip(rows, (0.008, 0.075), strict=True):
        assert (row.estimator, row.estimator_reason) == (Estimator.CONNECT, "connect_at_server")
        assert row.latency_seconds == pytest.approx(rtt + 0.0001)
        assert row.connect_seconds == row.latency_seconds
    # the app's 15 ms are in the first byte, not in the estimate
    assert rows[0].first_byte_seconds == pytest.approx(0.0231)


def test_a_slow_app_does_not_move_the_auto_estimate() -> None:
    quick = summarise_row({"us-east-1": at_server(8), "eu-west-1": at_server(75)}, config())
    slow = summarise_row({"us-east-1": at_server(8, app_ms=15), "eu-west-1": at_server(75)},
                         config())
    assert slow[0].latency_seconds == quick[0].latency_seconds
    pinned = summarise_row({"us-east-1": at_server(8, app_ms=15), "eu-west-1": at_server(75)},
                           config("first_byte"))
    assert pinned[0].latency_seconds == pytest.approx(0.0231)  # first byte pays the app
    assert pinned[0].estimator_reason == "configured"


def test_a_local_connect_anywhere_in_the_row_makes_the_whole_row_first_byte() -> None:
    rows = summarise_row({"us-east-1": at_server(8), "eu-west-1": behind_local_proxy(75)},
                         config())
    assert [(r.estimator, r.estimator_reason) for r in rows] == [
        (Estimator.FIRST_BYTE, "row_connect_local"), (Estimator.FIRST_BYTE, "connect_local")]
    assert rows[1].latency_seconds == pytest.approx(0.0756)
    assert rows[1].connect_seconds == pytest.approx(0.00009)  # shown, not used


def test_a_row_nothing_could_tell_and_a_failed_region() -> None:
    assert auto_estimators({"us-east-1": [], "eu-west-1": []}) == {
        "us-east-1": (Estimator.FIRST_BYTE, "connect_unverified"),
        "eu-west-1": (Estimator.FIRST_BYTE, "connect_unverified")}
    # a region that answered nothing does not vote; the row follows the regions that did
    rows = summarise_row({"us-east-1": at_server(8)}, config())
    assert [(r.estimator, r.estimator_reason, r.healthy) for r in rows] == [
        (Estimator.CONNECT, "connect_at_server", True),
        (Estimator.CONNECT, "connect_at_server", False)]


def test_verdicts_by_connect_a_near_slow_app_is_ok_a_far_region_is_misrouted() -> None:
    rows = summarise_row({"us-east-1": at_server(8, app_ms=80), "eu-west-1": at_server(75)},
                         config())
    near_slow = judge("us-east-1", rows, TOL)
    assert (near_slow.state, near_slow.reason, near_slow.estimator) == (
        RoutingState.OK, Reason.SLOW_APP, Estimator.CONNECT)
    far = judge("eu-west-1", rows, TOL)
    assert (far.state, far.reason, far.estimator) == (
        RoutingState.MISROUTED, Reason.SLOWER_REGION, Estimator.CONNECT)
    assert far.penalty_seconds == pytest.approx(0.067)


def test_behind_a_local_proxy_the_first_byte_rules_hold_as_before() -> None:
    """The loopback lab's case: first byte, and its misroutes checked by network distance."""
    rows = summarise_row({"us-east-1": behind_local_proxy(8, app_ms=80),
                          "eu-west-1": behind_local_proxy(30)}, config())
    assert {r.estimator for r in rows} == {Estimator.FIRST_BYTE}
    near_slow = judge("us-east-1", rows, TOL)
    assert (near_slow.state, near_slow.reason, near_slow.estimator) == (
        RoutingState.OK, Reason.SLOW_APP, Estimator.HANDSHAKE)


def behind_tls_terminating_proxy(rtt_ms: float) -> list[HttpEvidence]:
    """A proxy near by answers TCP and TLS; only the request crosses the path to the region."""
    return [sample(0.4 + jitter / 10, 1.2 + jitter, rtt_ms + 1.5 + jitter)
            for jitter in (0.1, 0.4, 0.2)]


def test_a_proxy_that_terminates_tls_too_is_seen_by_the_row() -> None:
    """Its handshakes are as quick as its connects, so no region's connect reads below its
    handshake; but distinct regions cannot all answer a connect within a few ms."""
    row = {"us-east-1": behind_tls_terminating_proxy(8),
           "eu-west-1": behind_tls_terminating_proxy(75)}
    assert not any(connect_is_local(found) for found in row.values())
    rows = summarise_row(row, config())
    assert [(r.estimator, r.estimator_reason) for r in rows] == [
        (Estimator.FIRST_BYTE, "connects_flat")] * 2
    assert [r.latency_seconds for r in rows] == [pytest.approx(0.0096), pytest.approx(0.0766)]
    # a near region beside a far one, both answering at the server: connect
    near_and_far = summarise_row({"us-east-1": at_server(3), "eu-west-1": at_server(75)},
                                 config())
    assert {r.estimator_reason for r in near_and_far} == {"connect_at_server"}
