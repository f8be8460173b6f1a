"""Address families judged each on its own, table-driven from hand-made evidence (no sockets):
one vantage point's round holds an IPv4 and an IPv6 result per path, the path-level view is its
worst family, and a family with no address anywhere gives no result at all."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import dns.message
import dns.rrset
import pytest

from monitor.config import Config, ConfigError, IpFamily, parse_config
from monitor.core.evidence import VantageEvidence
from monitor.core.model import Path, RoundResult, RoutingState, VantageRound, worst_state
from monitor.core.report import round_document, round_from_document
from monitor.exporters.evidence_log import evidence_line, parse_evidence, round_evidence
from monitor.metrics.catalogue import metric
from monitor.metrics.samples import vantage_samples
from monitor.metrics.snapshot import LabelSpace, VantageSnapshot
from monitor.round.pacing import Pacer
from monitor.round.run import RoundContext, family_addresses, judge_families, planned_checks
from probes.addresses import AddressPolicy
from probes.dns import DnsEvidence, DnsQuery, answer_evidence
from probes.errors import DnsNoAnswer
from probes.http import HttpEvidence, HttpTarget

CONFIG = """
service: {origin_name: global-alb.example.com}
regions:
  us-east-1: {addresses: [127.0.10.1, "fd00:10::1"]}
  eu-west-1: {addresses: [127.0.10.2, "fd00:10::2"]}
vantage_points:
  dub: {resolver: 127.0.0.53, location: DUB, source_address_v6: "fd00:30::1"}
"""
V4_ONLY = """
service: {origin_name: global-alb.example.com}
regions:
  us-east-1: {addresses: [127.0.10.1]}
  eu-west-1: {addresses: [127.0.10.2]}
vantage_points:
  dub: {resolver: 127.0.0.53, location: DUB}
"""
ADDRESS = {(IpFamily.IPV4, "us-east-1"): "127.0.10.1", (IpFamily.IPV4, "eu-west-1"): "127.0.10.2",
           (IpFamily.IPV6, "us-east-1"): "fd00:10::1", (IpFamily.IPV6, "eu-west-1"): "fd00:10::2"}
RTT = {"us-east-1": 0.070, "eu-west-1": 0.006}  # from dub
US, EU = "us-east-1", "eu-west-1"


def config(text: str = CONFIG) -> Config:
    return parse_config(text).config


def lookup(*addresses: str, family: IpFamily = IpFamily.IPV4) -> DnsEvidence:
    error = None if addresses else DnsNoAnswer(f"no {family.rdtype} record")
    return DnsEvidence("global-alb.example.com", "127.0.0.53:53", "recursive", None, "NOERROR",
                       addresses, (), 60, None, "udp", 0.002, error=error)


def sample(address: str, region: str, rtt: float) -> HttpEvidence:
    return HttpEvidence(HttpTarget("global-alb.example.com", address), 200,
                        {"connect": 0.0, "processing": rtt}, rtt, peer_address=address,
                        headers=(("x-origin-region", region),))


def evidence(family: IpFamily, answered: str | None, *, regions: tuple[str, ...] = (US, EU)
             ) -> VantageEvidence:
    """A family's evidence: the origin name answered ``answered`` (None: no record of the
    family), every region in ``regions`` measured at its address of the family."""
    found = VantageEvidence(family=family)
    if answered is None:
        found.recursive = lookup(family=family)
    else:
        address = ADDRESS[(family, answered)]
        found.recursive = lookup(address, family=family)
        found.origin = sample(address, answered, RTT[answered])
    for region in regions:
        found.baseline[region] = [sample(ADDRESS[(family, region)], region, RTT[region])
                                  for _ in range(3)]
    return found


def judged(loaded: Config, v4: VantageEvidence, v6: VantageEvidence) -> VantageRound:
    context = RoundContext(loaded, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), Pacer(0.0),
                           {"dub": EU})
    return judge_families(context, "dub", {IpFamily.IPV4: v4, IpFamily.IPV6: v6}, 0.0, 0.1,
                          timed_out=False)


@dataclass(frozen=True)
class Case:
    v4: str | None  # the region the A answer names (None: no A record)
    v6: str | None  # the region the AAAA answer names (None: no AAAA record)
    states: dict[tuple[Path, IpFamily], tuple[RoutingState, str | None]]
    config_text: str = CONFIG
    v6_regions: tuple[str, ...] = (US, EU)
    v6_rows: bool = False  # IPv6 latency rows without IPv6 paths


OK = (RoutingState.OK, None)
MISROUTED = (RoutingState.MISROUTED, "slower_region")
CASES = {
    "v6 misrouted, v4 right": Case(EU, US, {
        (Path.DNS, IpFamily.IPV4): OK, (Path.ORIGIN, IpFamily.IPV4): OK,
        (Path.DNS, IpFamily.IPV6): MISROUTED, (Path.ORIGIN, IpFamily.IPV6): MISROUTED}),
    "v4 misrouted, v6 right": Case(US, EU, {
        (Path.DNS, IpFamily.IPV4): MISROUTED, (Path.ORIGIN, IpFamily.IPV4): MISROUTED,
        (Path.DNS, IpFamily.IPV6): OK, (Path.ORIGIN, IpFamily.IPV6): OK}),
    "both right": Case(EU, EU, {
        (Path.DNS, IpFamily.IPV4): OK, (Path.ORIGIN, IpFamily.IPV4): OK,
        (Path.DNS, IpFamily.IPV6): OK, (Path.ORIGIN, IpFamily.IPV6): OK}),
    # the regions are dual-stack, the name is not published over IPv6: the IPv6 latency row
    # is measured, no IPv6 path exists (a choice, not a routing problem)
    "dual-stack regions, no AAAA for the name": Case(EU, None, {
        (Path.DNS, IpFamily.IPV4): OK, (Path.ORIGIN, IpFamily.IPV4): OK}, v6_rows=True),
    "IPv4 only anywhere: no IPv6 result": Case(EU, None, {
        (Path.DNS, IpFamily.IPV4): OK, (Path.ORIGIN, IpFamily.IPV4): OK},
        config_text=V4_ONLY, v6_regions=()),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_family_is_judged_on_its_own(case: Case) -> None:
    loaded = config(case.config_text)
    result = judged(loaded, evidence(IpFamily.IPV4, case.v4),
                    evidence(IpFamily.IPV6, case.v6, regions=case.v6_regions))
    got = {(p.path, p.family): (p.verdict.state, p.verdict.reason) for p in result.paths}
    assert got == case.states
    for path in (Path.DNS, Path.ORIGIN):  # the path-level view: the worst family
        found = result.path(path)
        assert found is not None
        assert found.verdict.state is worst_state(
            state for (p, _), (state, _) in case.states.items() if p is path)
    families = {family for _, family in case.states} | (
        {IpFamily.IPV6} if case.v6_rows else set())
    assert {r.family for r in result.regions} == families
    assert result.dual_stack is (IpFamily.IPV6 in families)
    assert not [e for e in result.errors if e.message.startswith("ipv6: ")]
    assert result.success


def test_the_family_key_is_only_where_ipv6_is() -> None:
    dual = judged(config(), evidence(IpFamily.IPV4, EU), evidence(IpFamily.IPV6, US))
    single = judged(config(V4_ONLY), evidence(IpFamily.IPV4, EU),
                    evidence(IpFamily.IPV6, None, regions=()))
    documents = [round_document(RoundResult((v,), 0.0, 0.1)) for v in (dual, single)]
    dual_doc, single_doc = (d["vantage_points"][0] for d in documents)
    assert [(p["path"], p["family"]) for p in dual_doc["paths"]] == [
        ("dns", "ipv4"), ("origin", "ipv4"), ("dns", "ipv6"), ("origin", "ipv6")]
    assert all("family" in r for r in dual_doc["regions"])
    assert not any("family" in item for item in (*single_doc["paths"], *single_doc["regions"]))
    back = round_from_document(documents[0]).vantage_points[0]
    assert [(p.path, p.family) for p in back.paths] == [(p.path, p.family) for p in dual.paths]
    assert [d["exit_code"] for d in documents] == [1, 0]
    # the evidence lines (Lambda, serve) name the family where IPv6 is, and read back
    lines = [evidence_line(record) for record in round_evidence(dual)]
    assert [(e.path, e.family, e.verdict.state) for e in map(parse_evidence, lines)] == [
        (p.path, p.family, p.verdict.state) for p in dual.paths]
    assert all('"family"' not in evidence_line(r) for r in round_evidence(single))


def test_family_series_exist_only_with_ipv6_and_path_series_follow_the_worst() -> None:
    loaded = config()
    dual = judged(loaded, evidence(IpFamily.IPV4, EU), evidence(IpFamily.IPV6, US))
    space = LabelSpace.from_config(loaded)
    samples = list(vantage_samples(space, VantageSnapshot.single(dual, space.paths)))
    observed = {s.labels[2:4]: s.labels[4] for s in samples  # after probe and service
                if s.spec is metric("family_routing_observed_state") and s.value == 1}
    assert observed == {("dns", "ipv4"): "ok", ("origin", "ipv4"): "ok",
                        ("dns", "ipv6"): "misrouted", ("origin", "ipv6"): "misrouted"}
    stable = {s.labels[2] for s in samples
              if s.spec is metric("routing_state") and s.value == 1 and s.labels[3] == "misrouted"}
    assert stable == {"dns", "origin"}  # an IPv6 misroute is the path's misroute
    latency = {(s.labels[2], s.labels[3]) for s in samples
               if s.spec is metric("family_region_latency_seconds")}
    assert latency == {(f, r) for f in ("ipv4", "ipv6") for r in (US, EU)}
    plain = [s for s in samples if s.spec is metric("region_latency_seconds")]
    assert len(plain) == 2  # one per region: the IPv4 row

    single = judged(config(V4_ONLY), evidence(IpFamily.IPV4, EU),
                    evidence(IpFamily.IPV6, None, regions=()))
    names = {s.spec.name for s in vantage_samples(
        space, VantageSnapshot.single(single, space.paths))}
    assert not any(name.startswith("routewatch_family_") for name in names)


def test_worst_state_orders_a_misroute_over_a_doubt_over_a_failover() -> None:
    order = [RoutingState.OK, RoutingState.FAILOVER, RoutingState.UNKNOWN,
             RoutingState.MISROUTED]
    for index, state in enumerate(order):
        assert worst_state(order[:index + 1]) is state
        assert worst_state(reversed(order[:index + 1])) is state
    assert worst_state([]) is RoutingState.OK


def test_where_each_family_is_sent_from_and_what_is_planned() -> None:
    loaded = config()
    dub = loaded.vantage_points["dub"]
    assert dub.local_address(IpFamily.IPV4) is None
    assert dub.local_address(IpFamily.IPV6) == "fd00:30::1"
    v4_only = parse_config(V4_ONLY + "probe: {families: [ipv4]}\n").config
    samples = loaded.probe.samples
    # IPv4: every region's samples, dns and origin; IPv6 the same (both regions have an address)
    assert planned_checks(loaded) == 2 * (2 * samples + 2)
    assert planned_checks(v4_only) == 2 * samples + 2
    assert family_addresses(loaded, IpFamily.IPV4) == {US: ["127.0.10.1"], EU: ["127.0.10.2"]}
    assert family_addresses(loaded, IpFamily.IPV6) == {US: ["fd00:10::1"], EU: ["fd00:10::2"]}
    written_v6 = parse_config(CONFIG.replace('127.0.10.1, "fd00:10::1"', '"fd00:10::1"')
                              + "probe: {families: [ipv4]}\n").config
    assert family_addresses(written_v6, IpFamily.IPV4)[US] == ["fd00:10::1"]  # as written
    with pytest.raises(Exception, match="each family once"):
        parse_config(V4_ONLY + "probe: {families: [ipv4, ipv4]}\n")
    # IPv6 first would measure the written (IPv4) addresses as the first family and call
    # them IPv6: refused, with where
    for families in ("[ipv6, ipv4]", "[ipv6]"):
        with pytest.raises(ConfigError, match=r"probe\.families: must start with ipv4"):
            parse_config(V4_ONLY + f"probe: {{families: {families}}}\n", "f.yaml")
    assert parse_config(V4_ONLY + "probe: {families: ipv4}\n").config.probe.families == (
        IpFamily.IPV4,)
    with pytest.raises(Exception, match="not an IPv6 address"):
        parse_config(V4_ONLY.replace("location: DUB", "source_address_v6: 127.0.0.9"))


def _aaaa_answer(*addresses: str) -> DnsEvidence:
    query = DnsQuery("global-alb.example.com", "127.0.0.53", rdtype="AAAA")
    request = dns.message.make_query(query.qname, "AAAA")
    response = dns.message.make_response(request)
    # a hostile server adds an A record for the same name: not an AAAA answer, not read
    response.answer.append(dns.rrset.from_text_list(
        "global-alb.example.com.", 60, "IN", "A", ["169.254.169.254"]))
    if addresses:
        response.answer.append(dns.rrset.from_text_list(
            "global-alb.example.com.", 30, "IN", "AAAA", list(addresses)))
    return answer_evidence(query, response, transport="udp", duration=0.001)


def test_an_aaaa_answer_is_read_and_its_special_addresses_refused() -> None:
    found = _aaaa_answer("2600:1f18::1", "fd00:10::1")
    assert (found.addresses, found.ttl, found.error) == (("2600:1f18::1", "fd00:10::1"), 30, None)
    nothing = _aaaa_answer()
    assert nothing.addresses == ()
    assert isinstance(nothing.error, DnsNoAnswer)  # the stray A record is no AAAA answer
    policy = AddressPolicy.allowing("127.0.0.0/8")
    for hostile in ("::ffff:169.254.169.254", "fe80::1", "fd00:ec2::254", "::1",
                    "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "ff02::1"):
        assert policy.refusal(hostile) is not None, hostile
    assert policy.refusal("2600:1f18::1") is None
    assert AddressPolicy.allowing("fd00::/16").refusal("fd00:10::1") is None
