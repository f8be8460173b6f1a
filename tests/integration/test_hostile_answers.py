"""Hostile HTTPS answers on real sockets: health bodies that break parsers, compressed and
oversized bodies, status codes that are not an answer, a judge that crashes. Every one is a
typed result on its path; none loses the round, ``check`` or the Lambda invocation.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hostile_peers import CDN, ORIGIN, UNTRUSTED, HostileWorld, http_response

from monitor.aws.lambda_handler import handler
from monitor.config import parse_config
from monitor.core.model import Path as RoutePath
from monitor.core.model import RoutingState, VantageRound
from monitor.core.paths import PATHS
from monitor.domain.reasons import Reason
from monitor.round.run import run_round

ROOT = Path(__file__).parents[2]
EU, US = "127.61.1.1", "127.61.2.1"
HEALTHY = json.dumps({"region": "eu-west-1", "dynamodb_region": "eu-west-1",
                      "dynamodb_read_ms": 2.5}).encode()


def health(body: bytes = HEALTHY, *, status: int = 200, region: str | None = "eu-west-1",
           headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    sent = ((("x-origin-region", region),) if region else ()) + headers
    return http_response(status, body, headers=(("content-type", "application/json"), *sent))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[HostileWorld]:
    peers = HostileWorld(tmp_path, names={ORIGIN: [EU], CDN: [EU]}, https=(EU, US),
                         default=lambda head: health())
    try:
        yield peers
    finally:
        peers.close()


def config_document(world: HostileWorld, *, cdn: bool = False, **probe: Any) -> dict[str, Any]:
    # both regions are the same machine: a tolerance wide enough that no timing decides
    return world.config({"eu-west-1": [EU], "us-east-1": [US]}, cdn=cdn,
                        probe={"allow_addresses": ["127.0.0.0/8"], **probe},
                        tolerance={"absolute_ms": 5000.0})


def one_round(world: HostileWorld, **probe: Any) -> VantageRound:
    config = parse_config(json.dumps(config_document(world, **probe))).config
    return asyncio.run(run_round(config, disturbed_s=UNTRUSTED)).vantage_points[0]


def origin_of(result: VantageRound) -> Any:
    found = result.path(RoutePath.ORIGIN)
    assert found is not None
    return found


DEEP = b"[" * 60_000 + b"]" * 60_000
LONG_NUMBER = b'{"region": "eu-west-1", "dynamodb_read_ms": ' + b"7" * 5000 + b"}"
DEEP_OBJECT = b'{"region": ' + b'{"a": ' * 30_000 + b"1" + b"}" * 30_001


@pytest.mark.parametrize("body", [DEEP, LONG_NUMBER, DEEP_OBJECT],
                         ids=["nested 60,000 deep", "5,000-digit integer", "deep object"])
def test_a_hostile_health_body_is_a_typed_note_on_the_origin_path(
        world: HostileWorld, body: bytes) -> None:
    world.tls.default = lambda head: health(body)
    result = one_round(world, body_limit_bytes=1_000_000)
    origin = origin_of(result)
    assert origin.verdict.state is RoutingState.OK  # the header still says who answered
    assert any(note.startswith("health_json_invalid: ") for note in origin.notes), origin.notes
    assert ("origin", Reason.HEALTH_JSON_INVALID) in {(e.path, e.reason) for e in result.errors}
    assert {p.path for p in result.paths} == {RoutePath.DNS, RoutePath.ORIGIN}


def test_check_and_the_lambda_handler_survive_a_hostile_health_body(
        world: HostileWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world.tls.default = lambda head: health(DEEP)
    path = world.write_config(config_document(world, body_limit_bytes=1_000_000))
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--config", str(path),
                          "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         check=False)
    assert "Traceback" not in run.stderr
    assert run.returncode in (0, 1), run.stderr  # 1 only if the busy machine disturbed timing
    origin = json.loads(run.stdout)["vantage_points"][0]["paths"][1]
    assert origin["reason"] in (None, "measurement_disturbed")
    assert "nested too deep" in " ".join(origin["notes"])

    monkeypatch.setenv("ROUTEWATCH_CONFIG", str(path))
    monkeypatch.delenv("AWS_REGION", raising=False)
    with redirect_stdout(io.StringIO()):
        document = handler({"vantage_point": "here"}, None)
    origin = document["vantage_points"][0]["paths"][1]
    assert origin["reason"] in (None, "measurement_disturbed")
    assert "nested too deep" in " ".join(origin["notes"])


def test_a_crashing_judge_is_that_paths_internal_error(world: HostileWorld) -> None:
    def crash(inputs: Any) -> Any:
        raise RuntimeError("a judge bug")

    table = tuple(replace(spec, judge=crash) if spec.path is RoutePath.ORIGIN else spec
                  for spec in PATHS)
    config = parse_config(json.dumps(config_document(world))).config
    result = asyncio.run(run_round(config, paths=table, disturbed_s=UNTRUSTED)).vantage_points[0]
    origin = origin_of(result)
    assert (origin.verdict.state, origin.verdict.reason) == (RoutingState.UNKNOWN,
                                                            Reason.INTERNAL_ERROR)
    assert ("origin", Reason.INTERNAL_ERROR) in {(e.path, e.reason) for e in result.errors}
    dns = result.path(RoutePath.DNS)
    assert dns is not None
    assert dns.verdict.state is RoutingState.OK


# --- status codes --------------------------------------------------------------------------------


def test_a_redirect_on_the_health_path_is_http_status_and_says_where(
        world: HostileWorld) -> None:
    location = "https://evil.example/\x9b2J" + "x" * 500  # CSI (C1): h11 lets obs-text by
    world.tls.default = lambda head: health(b"", status=302,
                                            headers=(("location", location),))
    result = one_round(world)
    eu = next(r for r in result.regions if r.region == "eu-west-1")
    assert (eu.healthy, eu.reason) == (False, Reason.HTTP_STATUS)
    assert eu.message is not None
    assert "redirect to 'https://evil.example/\\x9b2J" in eu.message
    assert "\x9b" not in eu.message
    assert len(eu.message) < 300
    origin = origin_of(result)
    assert origin.verdict.state is not RoutingState.OK
    assert ("origin", Reason.HTTP_STATUS) in {(e.path, e.reason) for e in result.errors}
    assert [head.split(b" ")[1] for _, head in world.tls.requests].count(b"/health") == \
        len(world.tls.requests)  # never followed


def test_a_404_from_the_closest_region_is_not_ok(world: HostileWorld) -> None:
    world.tls.answers[EU] = lambda head: health(b"not found", status=404)
    result = one_round(world)
    eu = next(r for r in result.regions if r.region == "eu-west-1")
    assert (eu.healthy, eu.reason) == (False, Reason.HTTP_STATUS)  # down, not the closest
    origin = origin_of(result)
    # Route 53 sends us to a region that does not serve: misrouted, with the status recorded
    assert (origin.verdict.state, origin.verdict.reason) == (RoutingState.MISROUTED,
                                                            Reason.SERVED_UNHEALTHY)
    assert "origin answered HTTP 404" in origin.notes
    assert ("origin", Reason.HTTP_STATUS) in {(e.path, e.reason) for e in result.errors}


def test_a_404_with_every_region_down_is_http_status(world: HostileWorld) -> None:
    world.tls.default = lambda head: health(b"not found", status=404)
    origin = origin_of(one_round(world))
    assert (origin.verdict.state, origin.verdict.reason) == (RoutingState.UNKNOWN,
                                                            Reason.HTTP_STATUS)
    assert origin.verdict.served_region == "eu-west-1"


def test_an_edge_answering_5xx_is_http_status_not_unattributed(world: HostileWorld) -> None:
    def answer(head: bytes) -> bytes:
        if b"host: " + CDN.encode() in head.lower():  # the edge: an error page, no region
            return http_response(503, b"<html>error</html>", headers=(
                ("x-amz-cf-pop", "DUB56-P1"), ("x-cache", "Error from cloudfront")))
        return health()

    world.tls.default = answer
    config = parse_config(json.dumps(config_document(world, cdn=True))).config
    result = asyncio.run(run_round(config, disturbed_s=UNTRUSTED)).vantage_points[0]
    cdn = result.path(RoutePath.CDN)
    assert cdn is not None
    assert (cdn.verdict.state, cdn.verdict.reason) == (RoutingState.UNKNOWN, Reason.HTTP_STATUS)
    assert "HTTP 503" in cdn.verdict.detail
    assert ("cdn", Reason.HTTP_STATUS) in {(e.path, e.reason) for e in result.errors}


# --- bodies --------------------------------------------------------------------------------------


def test_a_compressed_health_body_is_decoded(world: HostileWorld) -> None:
    world.tls.default = lambda head: health(gzip.compress(HEALTHY),
                                            headers=(("content-encoding", "gzip"),))
    origin = origin_of(one_round(world))
    assert origin.verdict.state is RoutingState.OK
    assert origin.details.data_path is not None  # the data-path fields were read
    assert origin.notes == ()
    sent = world.tls.requests[-1][1].lower()
    assert b"accept-encoding: identity" in sent


def test_a_gzip_bomb_stops_at_the_limit_and_is_too_large(world: HostileWorld) -> None:
    bomb = zlib.compress(b"[" * 50_000_000, 9)  # 50 MB of JSON-looking text in ~50 kB
    world.tls.default = lambda head: health(bomb, headers=(("content-encoding", "deflate"),))
    result = one_round(world)
    origin = origin_of(result)
    assert origin.verdict.state is RoutingState.OK
    assert any(note.startswith("body_too_large: ") for note in origin.notes), origin.notes
    assert ("origin", Reason.BODY_TOO_LARGE) in {(e.path, e.reason) for e in result.errors}


def test_a_body_over_the_limit_is_too_large_not_not_json(world: HostileWorld) -> None:
    world.tls.default = lambda head: health(HEALTHY[:-1] + b" " * 100_000 + b"}")
    origin = origin_of(one_round(world))
    assert any("larger than 65536 bytes" in note for note in origin.notes), origin.notes
    assert not any("not JSON" in note for note in origin.notes)


# --- what reaches people -------------------------------------------------------------------------


def test_the_check_table_escapes_what_the_origin_sent(world: HostileWorld) -> None:
    """A region header with rich markup and an 8-bit CSI, a health JSON region with ESC, BEL
    and a newline: the table shows them escaped, the JSON document keeps them as they were."""
    header = "[bold red]eu-west-1\x9b2J"
    body = json.dumps({"region": "eu\x1b]0;owned\x07\nforged line"}).encode()
    world.tls.default = lambda head: health(body, region=header)
    path = world.write_config(config_document(world))

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "monitor.cli", "check", "--config",
                               str(path), *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=120, check=False)

    table = check()
    assert "Traceback" not in table.stderr
    shown = table.stdout + table.stderr
    assert not any(c in shown for c in "\x1b\x07\x9b"), repr(shown)
    assert "[bold red]eu-west-1\\x9b2J" in shown  # markup as text, CSI escaped
    assert "eu\\x1b]0;owned\\x07\\nforged line" in shown
    assert not any(line.startswith("forged line") for line in shown.splitlines())
    document = json.loads(check("--json").stdout)
    origin = document["vantage_points"][0]["paths"][1]
    assert origin["attribution"]["region"] == header  # JSON: the value as sent, json-escaped
