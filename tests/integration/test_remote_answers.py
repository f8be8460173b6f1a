"""``check --remote`` with hostile regional answers: each answer is validated against the round
document's schema, a wrong-typed field rejects that region alone and the local round (measured
here, on real sockets) is kept, and what a region says reaches the table escaped."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hostile_peers import ORIGIN, UNTRUSTED, HostileWorld, http_response
from rich.console import Console

from monitor.aws.remote import InvokeAnswer, run_remote
from monitor.cli.render import render_round
from monitor.config import Config, parse_config
from monitor.core.model import RoundResult
from monitor.core.report import round_document
from monitor.round.run import run_round

REGION = "127.64.1.1"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, RoundResult]]:
    world = HostileWorld(tmp_path_factory.mktemp("remote"), names={ORIGIN: [REGION]},
                         https=(REGION,), dns_address="127.64.0.53",
                         default=lambda head: http_response(
                             200, b'{"region": "eu-west-1"}',
                             headers=(("x-origin-region", "eu-west-1"),)))
    try:
        document = world.config({"eu-west-1": [REGION], "us-east-1": ["127.64.2.1"]})
        document["alarms"] = {"function_name": "routewatch-probe"}
        config = parse_config(json.dumps(document)).config
        yield config, asyncio.run(run_round(config, disturbed_s=UNTRUSTED))
    finally:
        world.close()


def regional(result: RoundResult, name: str) -> dict[str, Any]:
    """A regional probe's answer: this round's document, under another vantage point's name."""
    document = copy.deepcopy(round_document(result))
    document["vantage_points"][0]["name"] = name
    return document


def merged(config: Config, local_round: RoundResult,
           answers: dict[str, Any]) -> tuple[RoundResult, list[Any]]:
    def invoke(region: str, payload: bytes, timeout_s: float) -> InvokeAnswer:
        return InvokeAnswer(json.dumps(answers[region]).encode())

    return asyncio.run(run_remote(config, local_round, 5.0, invoker=invoke))


@pytest.mark.parametrize(("where", "value"), [
    (("regions", 0, "latency_seconds"), "fast"),
    (("paths", 0, "penalty_seconds"), "x"),
    (("regions", 0, "region"), 5),
    (("paths", 1, "notes"), "not a list"),
    (("name",), ["a"]),
])
def test_a_wrong_typed_field_rejects_that_region_alone(
        local: tuple[Config, RoundResult], where: tuple[Any, ...], value: object) -> None:
    config, local_round = local
    good = regional(local_round, "probe-us")
    bad = regional(local_round, "probe-eu")
    target = bad["vantage_points"][0]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    result, failures = merged(config, local_round, {"us-east-1": good, "eu-west-1": bad})
    assert [f.region for f in failures] == ["eu-west-1"]
    assert failures[0].reason == "bad_answer"
    assert str(where[-1]) in failures[0].message
    assert [v.vantage for v in result.vantage_points] == ["here", "probe-us"]  # local kept
    output = io.StringIO()
    render_round(result, Console(file=output, width=120))
    assert "probe-us" in output.getvalue()
    json.dumps(round_document(result))


def test_what_a_region_says_is_escaped_in_the_table(local: tuple[Config, RoundResult]) -> None:
    config, local_round = local
    hostile = regional(local_round, "[bold]probe\x1b[2J")
    path = hostile["vantage_points"][0]["paths"][1]
    path["state"], path["reason"] = "unknown", "unattributed"
    path["detail"] = "nothing\x1b]0;owned\x07\n2026-01-01 forged line"
    path["notes"] = ["\x9b31mred\u202e"]
    hostile["vantage_points"][0]["regions"][0]["region"] = "eu-west-1\r"
    result, failures = merged(config, local_round, {"us-east-1": hostile,
                                                    "eu-west-1": regional(local_round, "b")})
    assert failures == []
    output = io.StringIO()
    render_round(result, Console(file=output, width=200))
    text = output.getvalue()
    assert not any(c in text for c in "\x1b\x07\x9b\r\u202e"), repr(text)
    assert "[bold]probe\\x1b[2J" in text  # markup shown as text, not applied
    assert "nothing\\x1b]0;owned\\x07\\n2026-01-01 forged line" in text
    assert "\n2026-01-01 forged" not in text


def test_an_answer_nested_too_deep_is_a_bad_answer(local: tuple[Config, RoundResult]) -> None:
    config, local_round = local

    def invoke(region: str, payload: bytes, timeout_s: float) -> InvokeAnswer:
        return InvokeAnswer(b"[" * 100_000 + b"]" * 100_000)

    result, failures = asyncio.run(run_remote(config, local_round, 5.0, invoker=invoke))
    assert {f.reason for f in failures} == {"bad_answer"}
    assert [v.vantage for v in result.vantage_points] == ["here"]
