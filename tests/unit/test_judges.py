"""The path judges, table-driven from hand-made evidence: pure functions, no sockets.

Each case builds a vantage point's evidence by hand (what the probes would have returned), runs
the path's judge and checks its verdict, the typed details and the probe errors it reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from monitor.config import Config, parse_config
from monitor.core.attribution import RegionDirectory
from monitor.core.evidence import Judgement, PathInputs, VantageEvidence
from monitor.core.model import (
    CdnDetails,
    DataPath,
    DnsDetails,
    DnsFailureDetails,
    OriginDetails,
    PathDetails,
    RegionLatency,
    RoutingState,
)
from monitor.core.paths.cdn import judge_cdn
from monitor.core.paths.dns import judge_dns
from monitor.core.paths.origin import judge_origin
from probes.cdn import CdnEvidence, CdnTarget, parse_cdn_headers
from probes.dns import DnsEvidence
from probes.errors import DnsError, DnsServfail, DnsTimeout, HttpError, ProbeTimeout
from probes.http import HttpEvidence, HttpTarget

CONFIG = """
service: {origin_name: global-alb.example.com, cdn_name: app.example.com}
regions:
  us-east-1: {addresses: [127.0.10.1]}
  eu-west-1: {addresses: [127.0.10.2]}
vantage_points:
  dub: {resolver: 127.0.0.53, location: DUB}
authoritative: [127.0.0.54]
"""
US, EU, NOWHERE = "127.0.10.1", "127.0.10.2", "127.0.99.9"
ROW = (RegionLatency("us-east-1", 0.080, True, (0.080,)),
       RegionLatency("eu-west-1", 0.010, True, (0.010,)))
EU_DOWN = (RegionLatency("us-east-1", 0.080, True, (0.080,)),
           RegionLatency("eu-west-1", None, False, (), "timeout", "no answer"))


def config(text: str = CONFIG) -> Config:
    return parse_config(text).config


def lookup(*addresses: str, error: DnsError | None = None, via: str = "recursive",
           rcode: str | None = "NOERROR", scope: int | None = 24) -> DnsEvidence:
    """A lookup; an authoritative one carries ECS for 198.18.0.0/24 and answers ``scope``."""
    authoritative = via == "authoritative"
    return DnsEvidence("global-alb.example.com", "127.0.0.53:53", via,
                       "198.18.0.0/24" if authoritative else None, rcode,
                       tuple(addresses), (), 60, scope if authoritative else None, "udp", 0.004,
                       error=error)


def response(address: str = EU, status: int | None = 200, *, region: str | None = "eu-west-1",
             body: bytes = b"", error: HttpError | None = None,
             headers: tuple[tuple[str, str], ...] = ()) -> HttpEvidence:
    sent = ((("x-origin-region", region),) if region else ()) + headers
    return HttpEvidence(HttpTarget("global-alb.example.com", address), status,
                        {"connect": 0.001, "tls": 0.01, "processing": 0.011}, 0.03,
                        peer_address=address, headers=sent, body=body, error=error)


def baseline(**claims: str) -> dict[str, list[HttpEvidence]]:
    """Baseline samples: each region's own address answering with the region header given
    (``eu_west_1="us-east-1"``: eu-west-1's app says it is us-east-1), honest otherwise."""
    said = {"us-east-1": "us-east-1", "eu-west-1": "eu-west-1",
            **{k.replace("_", "-"): v for k, v in claims.items()}}
    return {region: [response(US if region == "us-east-1" else EU, region=header)]
            for region, header in said.items()}


def edge(pop: str | None = "DUB56-P1", region: str | None = "eu-west-1", *,
         error: HttpError | None = None, dns_error: DnsError | None = None) -> CdnEvidence:
    target = CdnTarget("app.example.com", "127.0.0.53")
    if dns_error is not None:
        return CdnEvidence(target, lookup(error=dns_error, rcode="SERVFAIL"))
    headers = [("x-cache", "Miss from cloudfront"),
               ("server-timing", "cdn-upstream-fbl;dur=12")]
    if pop:
        headers.append(("x-amz-cf-pop", pop))
    if region:
        headers.append(("x-origin-region", region))
    first = HttpEvidence(HttpTarget("app.example.com", "127.0.40.1"), None if error else 200,
                         {"processing": 0.02}, 0.03, headers=tuple(headers), error=error)
    parsed = None if error else parse_cdn_headers(first.headers, "x-origin-region")
    return CdnEvidence(target, lookup("127.0.40.1"), first, parsed)


@dataclass(frozen=True)
class Case:
    """What a judge sees and what it must answer."""

    evidence: VantageEvidence
    state: RoutingState | None  # None: the judge gives no result (path not configured)
    reason: str | None = None
    served: str | None = None
    details: PathDetails | None = None
    errors: tuple[str, ...] = ()  # reasons of the probe errors reported
    notes: tuple[str, ...] = ()  # a fragment of each expected note
    regions: tuple[RegionLatency, ...] = ROW
    config_text: str = CONFIG
    check_details: bool = field(default=True)
    expected: str | None = None  # the expected region, when the case checks it


def run(judge: Callable[[PathInputs], Judgement | None], case: Case) -> None:
    loaded = config(case.config_text)
    directory = RegionDirectory(frozenset(loaded.regions),
                                {r: frozenset(s.addresses) for r, s in loaded.regions.items()})
    inputs = PathInputs(loaded, "dub", loaded.vantage_points["dub"], case.evidence,
                        case.regions, directory, "eu-west-1")
    judgement = judge(inputs)
    if case.state is None:
        assert judgement is None
        return
    assert judgement is not None
    result = judgement.result
    assert (result.verdict.state, result.verdict.reason) == (case.state, case.reason), result
    if case.served is not None:
        assert result.verdict.served_region == case.served
    if case.expected is not None:
        assert result.verdict.expected_region == case.expected
    if case.check_details:
        assert result.details == case.details
    assert tuple(e.reason for e in judgement.errors) == case.errors
    assert len(result.notes) == len(case.notes), result.notes
    for fragment, note in zip(case.notes, result.notes, strict=True):
        assert fragment in note


DNS_CASES = {
    "deadline": Case(VantageEvidence(), RoutingState.UNKNOWN, "deadline",
                     errors=("deadline",), expected="eu-west-1"),
    # the baseline measured eu-west-1 closest; a failed lookup does not unlearn that
    "servfail": Case(VantageEvidence(recursive=lookup(error=DnsServfail("SERVFAIL"),
                                                      rcode="SERVFAIL")),
                     RoutingState.UNKNOWN, "dns_servfail", details=DnsFailureDetails("SERVFAIL"),
                     errors=("dns_servfail",), expected="eu-west-1"),
    "closest region": Case(
        VantageEvidence(recursive=lookup(EU), authoritative=lookup(EU, via="authoritative")),
        RoutingState.OK, None, "eu-west-1", DnsDetails((EU,), 60, (), True, "eu-west-1", 24)),
    "slower region": Case(
        VantageEvidence(recursive=lookup(US)), RoutingState.MISROUTED, "slower_region",
        "us-east-1", DnsDetails((US,), 60)),
    "no region owns the address": Case(
        VantageEvidence(recursive=lookup(NOWHERE)), RoutingState.UNKNOWN, "unattributed",
        details=DnsDetails((NOWHERE,), 60)),
    "authoritative answer differs": Case(
        VantageEvidence(recursive=lookup(US), authoritative=lookup(EU, via="authoritative")),
        RoutingState.MISROUTED, "slower_region", "us-east-1",
        DnsDetails((US,), 60, (), True, "eu-west-1", 24), notes=("authoritative answer",)),
    # RFC 7871: scope /0 (BIND, any server without ECS) or none says nothing about the subnet
    "authoritative answer with ECS scope /0": Case(
        VantageEvidence(recursive=lookup(US),
                        authoritative=lookup(EU, via="authoritative", scope=0)),
        RoutingState.MISROUTED, "slower_region", "us-east-1",
        DnsDetails((US,), 60, (), True, None, 0, "ecs_scope_zero"),
        notes=("ecs_scope_zero: the authoritative answer is not specific to subnet",)),
    "authoritative answer without ECS scope": Case(
        VantageEvidence(recursive=lookup(EU),
                        authoritative=lookup(EU, via="authoritative", scope=None)),
        RoutingState.OK, None, "eu-west-1",
        DnsDetails((EU,), 60, (), True, None, None, "ecs_scope_zero"),
        notes=("ECS scope missing",)),
    "authoritative query failed": Case(
        VantageEvidence(recursive=lookup(EU), authoritative=lookup(
            error=DnsTimeout("no answer"), via="authoritative", rcode=None)),
        RoutingState.OK, None, "eu-west-1", DnsDetails((EU,), 60), errors=("dns_timeout",),
        notes=("authoritative query failed",)),
    "closest region down: failover": Case(
        VantageEvidence(recursive=lookup(US)), RoutingState.FAILOVER, "closest_region_down",
        "us-east-1", DnsDetails((US,), 60), regions=EU_DOWN),
}

HEADER_CASES = {
    "folded header of one region": ((("x-origin-region", "eu-west-1, eu-west-1"),), "eu-west-1"),
    "two lines of one region": ((("x-origin-region", "eu-west-1"),
                                 ("X-Origin-Region", "eu-west-1")), "eu-west-1"),
    "case and whitespace": ((("x-origin-region", "  EU-West-1 "),), "eu-west-1"),
}

ORIGIN_CASES = {
    "dns failed: not requested": Case(
        VantageEvidence(recursive=lookup(error=DnsServfail("SERVFAIL"), rcode="SERVFAIL")),
        RoutingState.UNKNOWN, "dns_servfail"),
    "deadline": Case(VantageEvidence(recursive=lookup(EU)), RoutingState.UNKNOWN, "deadline",
                     errors=("deadline",)),
    "timeout": Case(
        VantageEvidence(recursive=lookup(EU), origin=response(
            status=None, region=None, error=ProbeTimeout("timed out"))),
        RoutingState.UNKNOWN, "timeout", "eu-west-1", errors=("timeout",)),
    "closest region": Case(
        VantageEvidence(recursive=lookup(EU), origin=response()), RoutingState.OK, None,
        "eu-west-1", OriginDetails()),
    "header and address disagree": Case(
        VantageEvidence(recursive=lookup(EU), origin=response(region="us-east-1")),
        RoutingState.UNKNOWN, "evidence_conflict", details=OriginDetails(),
        notes=("header says us-east-1",)),
    "slower region": Case(
        VantageEvidence(recursive=lookup(US), origin=response(US, region="us-east-1")),
        RoutingState.MISROUTED, "slower_region", "us-east-1", OriginDetails()),
    "HTTP 503": Case(  # an error page is no answer, even from the closest region
        VantageEvidence(recursive=lookup(EU), origin=response(status=503)),
        RoutingState.UNKNOWN, "http_status", "eu-west-1", OriginDetails(),
        errors=("http_status",)),
    "data path leaves the region": Case(
        VantageEvidence(recursive=lookup(EU), origin=response(
            body=b'{"region": "eu-west-1", "dynamodb_region": "us-east-1", '
                 b'"dynamodb_read_ms": 80}')),
        RoutingState.OK, None, "eu-west-1",
        OriginDetails(DataPath("us-east-1", False, 0.08)), notes=("data path leaves",)),
    "health body is not JSON": Case(
        VantageEvidence(recursive=lookup(EU), origin=response(body=b"<html>")),
        RoutingState.OK, None, "eu-west-1", OriginDetails(), errors=("health_json_invalid",),
        notes=("not JSON",)),
    **{f"region header: {name}": Case(
        VantageEvidence(recursive=lookup(EU), origin=response(
            region=None, headers=headers,
            body=b'{"region": "EU-WEST-1", "dynamodb_region": " eu-west-1"}')),
        RoutingState.OK, None, served, OriginDetails(DataPath("eu-west-1", True)))
       for name, (headers, served) in HEADER_CASES.items()},
    "region header naming two regions": Case(
        VantageEvidence(recursive=lookup(EU), origin=response(
            region="eu-west-1, us-east-1",
            body=b'{"dynamodb_region": "eu-west-1"}')),
        RoutingState.UNKNOWN, "evidence_conflict",
        details=OriginDetails(DataPath("eu-west-1", None)),
        notes=("header says eu-west-1, header says us-east-1", "data path disputed")),
    # the header names us-east-1 at eu-west-1's address: no note "eu-west-1 reads DynamoDB in
    # us-east-1" from the disputed header, and no alert-worthy data_path_local false
    "disputed attribution: the data path is disputed too": Case(
        VantageEvidence(recursive=lookup(EU), origin=response(
            region="us-east-1", body=b'{"dynamodb_region": "eu-west-1"}')),
        RoutingState.UNKNOWN, "evidence_conflict",
        details=OriginDetails(DataPath("eu-west-1", None)),
        notes=("header says us-east-1", "data path disputed")),
    "another region's app sends the same header": Case(
        VantageEvidence(recursive=lookup(NOWHERE), origin=response(NOWHERE, region="us-east-1"),
                        baseline=baseline(eu_west_1="us-east-1")),
        RoutingState.UNKNOWN, "evidence_conflict", details=OriginDetails(),
        notes=("x-origin-region us-east-1 is also what eu-west-1 sends",)),
    "dns failed: the baseline's closest region stays expected": Case(
        VantageEvidence(recursive=lookup(error=DnsTimeout("no answer"), rcode=None)),
        RoutingState.UNKNOWN, "dns_timeout", expected="eu-west-1"),
}

CDN_DETAILS = CdnDetails("DUB56-P1", "miss", None, {"cdn-upstream-fbl": 0.012}, "127.0.40.1",
                         None)
CDN_CASES = {
    "no CDN configured": Case(VantageEvidence(), None,
                              config_text=CONFIG.replace(", cdn_name: app.example.com", "")),
    "deadline": Case(VantageEvidence(), RoutingState.UNKNOWN, "deadline", errors=("deadline",)),
    "CDN name does not resolve": Case(
        VantageEvidence(cdn=edge(dns_error=DnsServfail("SERVFAIL"))), RoutingState.UNKNOWN,
        "dns_servfail", errors=("dns_servfail",)),
    "edge times out": Case(
        VantageEvidence(cdn=edge(error=ProbeTimeout("timed out"))), RoutingState.UNKNOWN,
        "timeout", errors=("timeout",)),
    "edge reaches the region closest to it": Case(
        VantageEvidence(cdn=edge()), RoutingState.OK, None, "eu-west-1", CDN_DETAILS),
    "edge reaches a farther region": Case(
        VantageEvidence(cdn=edge(region="us-east-1")), RoutingState.MISROUTED,
        "edge_origin_region", "us-east-1", CDN_DETAILS),
    "no POP header": Case(
        VantageEvidence(cdn=edge(pop=None)), RoutingState.UNKNOWN, "pop_missing",
        errors=("pop_missing",), notes=("pop_missing",), check_details=False),
    "POP of an unknown airport": Case(
        VantageEvidence(cdn=edge(pop="QQQ5-C1")), RoutingState.UNKNOWN, "unknown_pop",
        check_details=False),
    "no region header through the edge": Case(
        VantageEvidence(cdn=edge(region=None)), RoutingState.UNKNOWN, "unattributed",
        check_details=False),
    "region header folded through the edge": Case(
        VantageEvidence(cdn=edge(region="EU-West-1, eu-west-1")), RoutingState.OK, None,
        "eu-west-1", CDN_DETAILS),
    # eu-west-1's app says us-east-1: the edge that passes us-east-1 may have reached either
    "the edge passes a header another region's app also sends": Case(
        VantageEvidence(cdn=edge(region="us-east-1"), baseline=baseline(eu_west_1="us-east-1")),
        RoutingState.UNKNOWN, "evidence_conflict", expected="eu-west-1",
        details=CDN_DETAILS, notes=("also what eu-west-1 sends",)),
    "the origin request saw the edge's header disputed": Case(
        VantageEvidence(cdn=edge(region="us-east-1"), recursive=lookup(EU),
                        origin=response(region="us-east-1")),
        RoutingState.UNKNOWN, "evidence_conflict", details=CDN_DETAILS,
        notes=("origin path: header says us-east-1",)),
}


@pytest.mark.parametrize("case", DNS_CASES.values(), ids=DNS_CASES)
def test_judge_dns(case: Case) -> None:
    run(judge_dns, case)


@pytest.mark.parametrize("case", ORIGIN_CASES.values(), ids=ORIGIN_CASES)
def test_judge_origin(case: Case) -> None:
    run(judge_origin, case)


@pytest.mark.parametrize("case", CDN_CASES.values(), ids=CDN_CASES)
def test_judge_cdn(case: Case) -> None:
    run(judge_cdn, case)


def test_a_judge_leaves_its_inputs_alone() -> None:
    """Judging twice gives the same answer: nothing is appended anywhere in between."""
    case = DNS_CASES["authoritative query failed"]
    run(judge_dns, case)
    run(judge_dns, case)
