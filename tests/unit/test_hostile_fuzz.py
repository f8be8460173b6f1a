"""Fuzzing what reads hostile input: the scenario loader, the CDN headers (Server-Timing, POP,
x-cache), the health JSON and region header (through the origin judge), and DNS answers from the
wire. Each gives a typed result or a typed error, never another exception (bounded example
counts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import dns.message
import dns.rrset
import yaml
from hypothesis import given
from hypothesis import strategies as st
from unit.test_config_fuzz import BOUNDED, documents, scalars

from monitor.config import parse_config
from monitor.core.attribution import RegionDirectory
from monitor.core.evidence import PathInputs, VantageEvidence
from monitor.core.model import PathResult, RegionLatency
from monitor.core.paths.origin import HealthDocument, judge_origin, parse_health
from monitor.domain.reasons import Reason
from monitor.domain.text import printable
from monitor.lab import ScenarioError, parse_scenario
from probes.cdn import MAX_SERVER_TIMING_MS, CdnHeaders, parse_cdn_headers, parse_server_timing
from probes.dns import DnsEvidence, DnsQuery, evidence_from_wire
from probes.errors import DnsError
from probes.http import HttpEvidence, HttpTarget

HEALTHY = (Path(__file__).parents[2] / "monitor" / "lab" / "scenarios" / "healthy.yaml").read_text()
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=120)


# --- the scenario loader -------------------------------------------------------------------------


def _scenario_or_error(text: str) -> None:
    problems = []
    try:
        parse_scenario(text, "<fuzz>")
    except ScenarioError as exc:
        problems = exc.problems
        assert problems, "a ScenarioError always says what is wrong"
    assert all(str(problem) for problem in problems)


@BOUNDED
@given(st.text(max_size=400))
def test_any_text_is_a_scenario_or_a_scenario_error(text: str) -> None:
    _scenario_or_error(text)


@BOUNDED
@given(st.sampled_from(["regions", "vantage_points", "edges", "faults", "service", "probe",
                        "tolerance", "description"]), documents)
def test_any_value_under_a_scenario_key_is_a_scenario_or_an_error(key: str,
                                                                  value: object) -> None:
    document = yaml.safe_load(HEALTHY)
    document[key] = value
    _scenario_or_error(yaml.safe_dump(document))


@BOUNDED
@given(st.lists(documents, max_size=3))
def test_any_faults_are_a_scenario_or_an_error(faults: list[object]) -> None:
    document = yaml.safe_load(HEALTHY)
    document["faults"] = faults
    _scenario_or_error(yaml.safe_dump(document))


# --- the CDN headers -----------------------------------------------------------------------------

timing_entry = st.builds(
    lambda name, dur, desc, junk: f"{name};dur={dur};desc={desc}{junk}",
    st.sampled_from(["cdn-upstream-fbl", "cdn-cache-miss", "cdn-pop", "x", "", "a b", '"q"']),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
              st.sampled_from(["1e308", "-1", "NaN", "inf", "1e6", "1000001", '"12"', ""]),
              header_text),
    header_text, header_text)


@BOUNDED
@given(st.lists(st.tuples(st.sampled_from(["server-timing", "x-amz-cf-pop", "x-cache",
                                           "x-amz-cf-id", "x-origin-region", "Server-Timing"]),
                          st.one_of(header_text, timing_entry)), max_size=8))
def test_any_cdn_headers_parse_into_typed_headers(headers: list[tuple[str, str]]) -> None:
    parsed = parse_cdn_headers(headers, "x-origin-region")
    assert isinstance(parsed, CdnHeaders)
    assert parsed.pop is None or parsed.pop == "other" or parsed.pop.isascii()
    for seconds in parsed.server_timing.values():
        assert math.isfinite(seconds)
        assert 0 <= seconds <= MAX_SERVER_TIMING_MS / 1000
    assert all(p.reason in {"server_timing_malformed", "pop_missing", "pop_invalid",
                            "x_cache_unknown"} for p in parsed.problems)


def test_implausible_durations_are_dropped_with_a_problem() -> None:
    entries, problems = parse_server_timing(
        ["cdn-upstream-fbl;dur=1e308, cdn-upstream-dns;dur=-1, cdn-upstream-connect;dur=NaN, "
         "cdn-downstream-fbl;dur=inf, cdn-a;dur=1000001, cdn-b;dur=12.5"])
    assert {e.name: e.duration_seconds for e in entries if e.duration_seconds is not None} == \
        {"cdn-b": 0.0125}
    assert len(problems) == 5
    assert all("out of range" in p.message for p in problems)


# --- the health JSON and region header, through the origin judge ---------------------------------

CONFIG = parse_config("""
service: {origin_name: global-alb.example.com}
regions: {eu-west-1: {addresses: [127.0.10.2]}, us-east-1: {addresses: [127.0.10.1]}}
vantage_points: {dub: {resolver: 127.0.0.53, location: DUB}}
""").config
ROW = (RegionLatency("us-east-1", 0.08, True, (0.08,)), RegionLatency("eu-west-1", 0.01, True,
                                                                      (0.01,)))
bodies = st.one_of(
    st.binary(max_size=300),
    documents.map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.sampled_from(["region", "dynamodb_region", "dynamodb_read_ms"]),
                    scalars, max_size=3).map(lambda d: json.dumps(d).encode()),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=4000, max_value=6000).map(lambda n: b'{"dynamodb_read_ms": '
                                                    + b"9" * n + b"}"),
)


@BOUNDED
@given(bodies)
def test_any_health_body_is_a_document_or_a_typed_problem(body: bytes) -> None:
    health = parse_health(body)
    assert isinstance(health, HealthDocument)
    assert (health.problem is None) == (health.reason is None)
    if health.reason is not None:
        assert health.reason is Reason.HEALTH_JSON_INVALID
    assert health.dynamodb_read_ms is None or math.isfinite(health.dynamodb_read_ms)


@BOUNDED
@given(body=bodies, header=st.one_of(st.none(), header_text),
       status=st.sampled_from([200, 204, 301, 302, 404, 500, 503, 999]),
       truncated=st.booleans())
def test_the_origin_judge_gives_a_typed_verdict_for_any_answer(
        body: bytes, header: str | None, status: int, truncated: bool) -> None:
    headers = (("x-origin-region", header),) if header is not None else ()
    response = HttpEvidence(HttpTarget("global-alb.example.com", "127.0.10.2"), status,
                            {"processing": 0.01}, 0.02, peer_address="127.0.10.2",
                            headers=headers, body=body, body_truncated=truncated)
    evidence = VantageEvidence(recursive=DnsEvidence(
        "global-alb.example.com", "127.0.0.53:53", "recursive", None, "NOERROR",
        ("127.0.10.2",), (), 60, None, "udp", 0.004), origin=response)
    directory = RegionDirectory(frozenset(CONFIG.regions),
                                {r: frozenset(s.addresses) for r, s in CONFIG.regions.items()})
    judgement = judge_origin(PathInputs(CONFIG, "dub", CONFIG.vantage_points["dub"], evidence,
                                        ROW, directory, "eu-west-1"))
    result = judgement.result
    assert isinstance(result, PathResult)
    assert isinstance(result.verdict.reason, Reason | None)
    assert all(isinstance(error.reason, Reason) for error in judgement.errors)
    for text in (result.verdict.detail, *result.notes):
        assert printable(text).isprintable()
    json.dumps([result.verdict.detail, *result.notes])


# --- DNS answers from the wire -------------------------------------------------------------------

QUERY = DnsQuery("global-alb.example.com", "127.0.0.53")


def _answer_wire() -> bytes:
    query = dns.message.make_query("global-alb.example.com", "A")
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("global-alb.example.com.", 60, "IN", "CNAME",
                                               "alias.example.com."))
    response.answer.append(dns.rrset.from_text("alias.example.com.", 30, "IN", "A",
                                               "127.20.1.1", "127.20.2.1"))
    return response.to_wire()


ANSWER = _answer_wire()
mutated = st.lists(st.tuples(st.integers(min_value=0, max_value=len(ANSWER) - 1),
                             st.integers(min_value=0, max_value=255)), min_size=1, max_size=6)


def _typed(evidence: DnsEvidence) -> None:
    assert isinstance(evidence, DnsEvidence)
    assert evidence.error is None or isinstance(evidence.error, DnsError)
    assert evidence.error is not None or evidence.addresses
    assert len(evidence.cname_chain) <= 16


@BOUNDED
@given(st.binary(max_size=600))
def test_any_bytes_are_dns_evidence_or_a_dns_error(wire: bytes) -> None:
    _typed(evidence_from_wire(QUERY, wire))


@BOUNDED
@given(mutated)
def test_a_mangled_answer_is_dns_evidence_or_a_dns_error(edits: list[tuple[int, int]]) -> None:
    wire = bytearray(ANSWER)
    for index, value in edits:
        wire[index] = value
    _typed(evidence_from_wire(QUERY, bytes(wire)))


def test_the_unmangled_answer_follows_the_chain() -> None:
    evidence = evidence_from_wire(QUERY, ANSWER)
    assert evidence.error is None
    assert evidence.addresses == ("127.20.1.1", "127.20.2.1")
    assert evidence.cname_chain == ("alias.example.com",)
    assert evidence.ttl == 30
