"""The per-path evidence record: written once, read back into the verdict; the same record from
serve's JSON logs (one call from the scheduler) and from the Lambda handler (tests/
test_lambda_lab.py runs the real handler on a lab world). Before: serve logged one line per round
without detail, address or POP, and the Lambda logged numbers only."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
from cfnlint.decode.decode import decode_str
from rounds import sample_round, vantage_round

from monitor.cli.serve import JsonLogFormatter
from monitor.config import parse_config
from monitor.core import model
from monitor.core.model import Path as RoutePath
from monitor.core.model import RoutingState, VantageRound
from monitor.domain.reasons import Reason
from monitor.exporters.evidence_log import (
    EVENT,
    EvidenceError,
    evidence_line,
    log_round_evidence,
    parse_evidence,
    round_evidence,
    write_round_evidence,
)
from monitor.metrics import SnapshotStore
from monitor.serve.scheduler import RoundScheduler

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"event", "evidence_version", "vantage", "path", "round_started_at", "state",
          "served_region", "expected_region", "penalty_seconds", "reason", "detail", "estimator",
          "address", "pop", "attribution"}


def cdn_round() -> VantageRound:
    """A round whose cdn path came through a POP, with a detail holding quotes and a newline."""
    verdict = model.RoutingVerdict(RoutingState.MISROUTED, "us-east-1", "eu-west-1", 0.0634,
                                   Reason.SLOWER_REGION, 'POP FRA56-P1 reached us-east-1 "x"\nnext')
    cdn = model.PathResult(RoutePath.CDN, verdict, model.Attribution("us-east-1", "header"), 0.02,
                           address="127.30.0.1",
                           details=model.CdnDetails("FRA56-P1", "miss", None, {}, None, None))
    return VantageRound("fra", 1_790_000_000.25, 0.5,
                        (model.RegionLatency("eu-west-1", 0.01, True),), (cdn,))


def test_a_line_reads_back_into_the_verdict() -> None:
    for vantage in (*sample_round().vantage_points, cdn_round()):
        for result, evidence in zip(vantage.paths, round_evidence(vantage), strict=True):
            line = evidence_line(evidence)
            assert "\n" not in line
            record = json.loads(line)
            assert set(record) == FIELDS
            assert record["event"] == EVENT
            back = parse_evidence(line)
            assert back.verdict == result.verdict
            assert (back.vantage, back.path, back.address) == (
                vantage.vantage, result.path, result.address)
            assert back.round_started_at == pytest.approx(vantage.started_at, abs=0.001)
    [cdn] = round_evidence(cdn_round())
    assert json.loads(evidence_line(cdn))["pop"] == "FRA56-P1"
    assert json.loads(evidence_line(cdn))["round_started_at"] == "2026-09-21T14:13:20.250+00:00"


def test_every_path_of_a_round_gets_one_line() -> None:
    out = io.StringIO()
    [vantage] = sample_round().vantage_points
    assert write_round_evidence(vantage, out) == 3
    paths = [parse_evidence(line).path for line in out.getvalue().splitlines()]
    assert paths == [RoutePath.DNS, RoutePath.ORIGIN, RoutePath.CDN]


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "not JSON"),
    ('{"event": "round"}', "not a routewatch_path record"),
    ('{"event": "routewatch_path", "evidence_version": 2}', "evidence_version 2"),
    ('{"event": "routewatch_path", "evidence_version": 1, "path": "smtp", "state": "ok", '
     '"round_started_at": "2026-01-01T00:00:00+00:00", "vantage": "x"}', "'smtp'"),
    ('{"event": "routewatch_path", "evidence_version": 1, "path": "dns", "state": "ok", '
     '"round_started_at": "2026-01-01T00:00:00+00:00", "vantage": "x", "penalty_seconds": "1"}',
     "penalty_seconds"),
])
def test_a_line_that_is_not_evidence_is_a_typed_error(line: str, message: str) -> None:
    with pytest.raises(EvidenceError, match=re.escape(message)):
        parse_evidence(line)


def test_serve_json_log_line_is_the_same_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("test.evidence")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        log_round_evidence(cdn_round(), logger)
    finally:
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    document = json.loads(line)
    assert set(document) == FIELDS | {"time", "level", "logger", "message"}
    assert parse_evidence(document).verdict == cdn_round().paths[0].verdict
    assert document["message"] == (
        'fra cdn misrouted: served by us-east-1, expected eu-west-1 (+63.4 ms); slower_region: '
        'POP FRA56-P1 reached us-east-1 "x"\nnext [address 127.30.0.1, pop FRA56-P1]')


async def test_the_scheduler_logs_one_evidence_record_per_path(
        caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config("""
service: {origin_name: global-alb.example.com}
regions: {us-east-1: {addresses: [127.0.10.1]}, eu-west-1: {addresses: [127.0.10.2]}}
vantage_points: {fra: {resolver: 127.0.0.53}}
""", "test.yaml")

    async def runner(_config: object, name: str) -> VantageRound:
        return cdn_round()

    scheduler = RoundScheduler(config, SnapshotStore(config.config),
                               runner=runner)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, "monitor.evidence"):
        await scheduler.run_vantage("fra")
    records = [r for r in caplog.records if r.name == "monitor.evidence"]
    assert len(records) == 1
    evidence = parse_evidence(records[0].fields)  # type: ignore[attr-defined]
    assert evidence.verdict.state == RoutingState.MISROUTED
    assert evidence.pop == "FRA56-P1"


def template_query() -> str:
    decoded, problems = decode_str((ROOT / "deploy" / "template.yaml").read_text("utf-8"))
    assert not problems
    assert decoded is not None
    [query] = [r["Properties"] for r in decoded["Resources"].values()
               if r["Type"] == "AWS::Logs::QueryDefinition"]
    assert query["LogGroupNames"] == [{"Ref": "ProbeLogGroup"}]
    text: str = query["QueryString"]
    return text


def test_the_saved_query_reads_fields_the_record_has_and_is_the_one_documented() -> None:
    query = template_query()
    assert f'event = "{EVENT}"' in query
    listed = query.split("|")[0].removeprefix("fields")
    named = {name for name in re.findall(r"(@?[a-z_]+)", listed) if not name.startswith("@")}
    assert named <= FIELDS, named - FIELDS
    filtered = set(re.findall(r"\b([a-z_]+) (?:=|!=) ", query))
    assert filtered <= FIELDS
    readme = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    assert query.strip() in readme


def test_a_path_that_needs_a_look_is_logged_as_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """A log pipeline that alerts on levels sees the misroute: WARNING for misrouted and
    unknown paths, INFO for the rest."""
    with caplog.at_level(logging.INFO, "test.levels"):
        log_round_evidence(cdn_round(), logging.getLogger("test.levels"))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # the misrouted cdn path
    caplog.clear()
    with caplog.at_level(logging.INFO, "test.levels"):
        log_round_evidence(vantage_round("nyc"), logging.getLogger("test.levels"))
    assert [r.levelno for r in caplog.records] == [logging.INFO] * 3  # dns, origin, cdn: ok
