"""Network distance and app time, pure: the handshake's round trips by TLS version, each sample's
estimate, a region's summary (handshake, first byte, app time, TLS), the ``slow_app`` finding,
and the TLS facts read off a handshake (no sockets)."""

from __future__ import annotations

import pytest

from monitor.config import Config, Estimator, Tolerance, parse_config
from monitor.core.attribution import region_names
from monitor.core.model import RegionLatency, RoutingState, TlsInfo
from monitor.core.verdict import judge
from monitor.round.baseline import app_time, sample_estimate, summarise_region
from probes.http import (
    HttpEvidence,
    HttpTarget,
    TlsSession,
    earliest_not_after,
    handshake_round_trips,
    header_list,
)

TOL = Tolerance(absolute_ms=10, relative=0.25, slow_app_ms=50)


def config(estimator: str) -> Config:
    return parse_config(f"""
service: {{origin_name: global-alb.example.com}}
regions: {{eu-west-1: {{addresses: [127.0.10.2]}}}}
vantage_points: {{dub: {{resolver: 127.0.0.53}}}}
probe: {{estimator: {estimator}}}
""").config


def sample(tls_ms: float, first_byte_ms: float, version: str = "TLSv1.3", *,
           resumed: bool = False, not_after: float | None = None) -> HttpEvidence:
    return HttpEvidence(HttpTarget("global-alb.example.com", "127.0.10.2"), 200,
                        {"connect": 0.0, "tls": tls_ms / 1000, "processing": first_byte_ms / 1000},
                        0.5, tls=TlsSession(version, resumed, not_after))


@pytest.mark.parametrize(("version", "resumed", "trips"), [
    ("TLSv1.3", False, 1), ("TLSv1.3", True, 1),
    ("TLSv1.2", False, 2), ("TLSv1.2", True, 1),
    ("TLSv1", False, 2), (None, False, None), ("SSLv3", False, None)])
def test_handshake_round_trips_by_version(version: str | None, resumed: bool,
                                          trips: int | None) -> None:
    assert handshake_round_trips(version, resumed) == trips


def test_a_tls12_handshake_is_read_as_one_round_trip_not_two() -> None:
    full = sample(128.0, 64.5, "TLSv1.2")
    assert sample_estimate(full, Estimator.HANDSHAKE) == pytest.approx(0.064)
    assert sample_estimate(sample(64.0, 64.5, "TLSv1.2", resumed=True),
                           Estimator.HANDSHAKE) == pytest.approx(0.064)
    assert sample_estimate(sample(64.0, 64.5), Estimator.HANDSHAKE) == pytest.approx(0.064)
    assert sample_estimate(full, Estimator.FIRST_BYTE) == pytest.approx(0.0645)
    assert sample_estimate(full, Estimator.CONNECT) == 0.0
    assert sample_estimate(sample(64.0, 64.5, "SSLv3"), Estimator.HANDSHAKE) is None


def test_a_region_summary_says_what_it_rests_on_and_measures_both() -> None:
    row = summarise_region("eu-west-1", [sample(130.0, 166.0, "TLSv1.2", not_after=2e9),
                                         sample(128.0, 164.0, "TLSv1.2", not_after=1.9e9)],
                           config("handshake"))
    assert row.healthy
    assert row.estimator is Estimator.HANDSHAKE
    assert row.latency_seconds == pytest.approx(0.064)
    assert row.handshake_seconds == pytest.approx(0.064)
    assert row.first_byte_seconds == pytest.approx(0.164)
    assert row.app_seconds == pytest.approx(0.099)  # 100 ms less the handshakes' 1 ms spread
    assert row.tls == TlsInfo("TLSv1.2", 2, 1.9e9)  # the earliest expiry of any sample
    first_byte = summarise_region("eu-west-1", [sample(128.0, 164.0, "TLSv1.2")],
                                  config("first_byte"))
    assert (first_byte.estimator, first_byte.latency_seconds) == (Estimator.FIRST_BYTE,
                                                                   pytest.approx(0.164))


def test_a_busy_machine_cannot_fake_a_slow_app() -> None:
    """A slow app adds its time to every sample alike; a busy machine delays some samples' first
    byte and not others, and their handshakes spread: no app time is left to claim."""
    slow = [sample(10.0, 110.0), sample(11.0, 111.5), sample(10.5, 110.5)]
    assert app_time(slow) == pytest.approx(0.099)  # 100 ms less the handshakes' 1 ms spread
    disturbed = [sample(10.0, 10.5), sample(130.0, 250.0), sample(60.0, 190.0)]
    assert app_time(disturbed) == 0.0
    assert app_time([]) is None


def near_but_slow(estimator: Estimator) -> tuple[RegionLatency, ...]:
    """eu-west-1 is 10 ms away with an app that takes 100 ms; us-east-1 is 60 ms away, fast."""
    rows = {"eu-west-1": (0.010, 0.110), "us-east-1": (0.060, 0.061)}
    return tuple(RegionLatency(region, handshake if estimator is Estimator.HANDSHAKE
                               else first_byte, True, (), estimator=estimator,
                               handshake_seconds=handshake, first_byte_seconds=first_byte,
                               app_seconds=first_byte - handshake)
                 for region, (handshake, first_byte) in rows.items())


def test_a_slow_app_near_by_is_its_own_finding_not_a_misroute() -> None:
    verdict = judge("eu-west-1", near_but_slow(Estimator.HANDSHAKE), TOL)
    assert (verdict.state, verdict.reason) == (RoutingState.OK, "slow_app")
    assert (verdict.expected_region, verdict.estimator) == ("eu-west-1", Estimator.HANDSHAKE)
    assert "app takes 100.0 ms beyond its 10.0 ms round trip, 99.0 ms more than the " \
        "quickest region's" in verdict.detail
    assert judge("eu-west-1", near_but_slow(Estimator.HANDSHAKE),
                 Tolerance(slow_app_ms=0)).reason is None  # the finding turned off


def test_a_first_byte_misroute_that_network_distance_does_not_confirm_is_a_slow_app() -> None:
    verdict = judge("eu-west-1", near_but_slow(Estimator.FIRST_BYTE), TOL)
    assert (verdict.state, verdict.reason) == (RoutingState.OK, "slow_app")
    assert (verdict.expected_region, verdict.estimator) == ("eu-west-1", Estimator.HANDSHAKE)
    assert "by first byte us-east-1 reads 49.0 ms closer, which is eu-west-1's app" in (
        verdict.detail)


def test_an_app_slow_everywhere_makes_no_region_slower_than_the_others() -> None:
    rows = tuple(RegionLatency(region, handshake, True, (), estimator=Estimator.HANDSHAKE,
                               handshake_seconds=handshake, first_byte_seconds=handshake + 0.1,
                               app_seconds=0.1)
                 for region, handshake in {"eu-west-1": 0.010, "us-east-1": 0.060}.items())
    assert judge("eu-west-1", rows, TOL).reason is None


def test_first_byte_alone_stays_selectable_and_reads_app_time_as_distance() -> None:
    verdict = judge("eu-west-1", near_but_slow(Estimator.FIRST_BYTE),
                    Tolerance(absolute_ms=10, relative=0.25, slow_app_ms=0))
    assert (verdict.state, verdict.expected_region) == (RoutingState.MISROUTED, "us-east-1")
    assert verdict.estimator is Estimator.FIRST_BYTE


def test_a_first_byte_misroute_confirmed_by_network_distance_stands() -> None:
    """us-east-1 is far by network too: misrouted by first byte, slow app or not."""
    rows = tuple(RegionLatency(region, first_byte, True, (), estimator=Estimator.FIRST_BYTE,
                               handshake_seconds=handshake, first_byte_seconds=first_byte,
                               app_seconds=first_byte - handshake)
                 for region, (handshake, first_byte) in {"eu-west-1": (0.010, 0.011),
                                                         "us-east-1": (0.060, 0.160)}.items())
    verdict = judge("us-east-1", rows, TOL)
    assert (verdict.state, verdict.reason, verdict.estimator) == (
        RoutingState.MISROUTED, "slower_region", Estimator.FIRST_BYTE)


def test_an_unknown_verdict_without_an_expected_region_rests_on_nothing() -> None:
    assert judge(None, (), TOL).estimator is None


def test_earliest_not_after_of_a_chain() -> None:
    assert earliest_not_after(["Jan  1 00:00:00 3000 GMT", "Jun  1 12:00:00 2027 GMT",
                               "not a date"]) == 1811851200.0
    assert earliest_not_after([]) is None


def test_header_lists_and_region_names_are_parsed_once() -> None:
    headers = (("x-origin-region", "US-East-1, us-east-1"), ("X-Origin-Region", " us-east-1 "),
               ("other", "eu-west-1"), ("x-origin-region", " , "))
    assert header_list(headers, "x-origin-region") == ("US-East-1", "us-east-1", "us-east-1")
    assert region_names(header_list(headers, "X-ORIGIN-REGION")) == ("us-east-1",)
    assert region_names(["eu-west-1", "us-east-1, eu-west-1"]) == ("eu-west-1",
                                                                    "us-east-1, eu-west-1")
    assert region_names([""]) == ()
