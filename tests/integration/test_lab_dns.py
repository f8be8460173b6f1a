"""The lab's authoritative DNS over real UDP/TCP: latency-policy answers per source address and
per ECS subnet, failover, misroutes and DNS faults."""

from __future__ import annotations

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from conftest import LabWorld

from monitor.lab import LabHandle, parse_scenario, start_lab

ORIGIN = "global-alb.example.com"


def ask(lab: LabHandle, qname: str = ORIGIN, *, source: str = "127.0.0.1",
        subnet: str | None = None, rdtype: str = "A", edns: bool = True,
        timeout: float = 2.0) -> dns.message.Message:
    options = []
    if subnet is not None:
        address, _, prefix = subnet.partition("/")
        options.append(dns.edns.ECSOption(address, int(prefix)))
    query = dns.message.make_query(qname, rdtype, use_edns=0 if edns else False,
                                   options=options or None)
    return dns.query.udp(query, lab.dns_host, timeout=timeout, port=lab.dns_port, source=source)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


def region_of(lab: LabHandle, response: dns.message.Message) -> list[str]:
    by_address = {a: r for r, a in lab.regions.items()}
    return sorted(by_address[a] for a in addresses(response))


def subnet_of(lab: LabHandle, vantage: str) -> str:
    return lab.scenario.client_subnets()[vantage]


@pytest.fixture
def healthy(lab_world: LabWorld) -> LabHandle:
    return lab_world("healthy")


def test_answers_the_nearest_region_per_source_address(healthy: LabHandle) -> None:
    for vantage, source in healthy.vantage_points.items():
        response = ask(healthy, source=source)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA
        assert region_of(healthy, response) == [healthy.scenario.nearest_region(vantage)]
        assert response.answer[0].ttl == 60


def test_answers_per_ecs_subnet_and_echoes_the_scope(healthy: LabHandle) -> None:
    for vantage in healthy.vantage_points:
        # from nyc's address, but the ECS subnet names another vantage point: ECS wins
        response = ask(healthy, source=healthy.vantage_points["nyc"],
                       subnet=subnet_of(healthy, vantage))
        assert region_of(healthy, response) == [healthy.scenario.nearest_region(vantage)]
        [ecs] = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
        assert (ecs.srclen, ecs.scopelen) == (24, 24)


def test_unknown_ecs_subnet_falls_back_to_the_source(healthy: LabHandle) -> None:
    response = ask(healthy, source=healthy.vantage_points["dub"], subnet="203.0.113.0/24")
    assert region_of(healthy, response) == ["eu-west-1"]
    [ecs] = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
    assert ecs.scopelen == 0


def test_names_outside_the_records(healthy: LabHandle) -> None:
    missing = ask(healthy, "nothing.example.com")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.authority[0].rdtype == dns.rdatatype.SOA
    assert ask(healthy, "example.org").rcode() == dns.rcode.REFUSED
    nodata = ask(healthy, rdtype="AAAA")
    assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])
    assert ask(healthy, "example.com", rdtype="NS").answer


def test_misrouted_scenario_answers_the_wrong_region_for_dub_only(lab_world: LabWorld) -> None:
    lab = lab_world("misrouted")
    assert region_of(lab, ask(lab, source=lab.vantage_points["dub"])) == ["us-east-1"]
    assert region_of(lab, ask(lab, subnet=subnet_of(lab, "dub"))) == ["us-east-1"]
    assert region_of(lab, ask(lab, source=lab.vantage_points["nyc"])) == ["us-east-1"]
    assert region_of(lab, ask(lab, source=lab.vantage_points["sin"])) == ["ap-southeast-1"]


def test_faults_change_the_answers_at_run_time(healthy: LabHandle) -> None:
    dub = healthy.vantage_points["dub"]
    healthy.set_faults([{"kind": "misroute", "vantage": "dub", "answer": "ap-southeast-1"}])
    assert region_of(healthy, ask(healthy, source=dub)) == ["ap-southeast-1"]
    # the dead region's health check fails: DNS fails over to the next best
    healthy.set_faults([{"kind": "region_down", "region": "eu-west-1"}])
    assert region_of(healthy, ask(healthy, source=dub)) == ["us-east-1"]
    # ... unless its health check still passes
    healthy.set_faults([{"kind": "blackhole", "region": "eu-west-1", "dns_healthy": True}])
    assert region_of(healthy, ask(healthy, source=dub)) == ["eu-west-1"]
    # a misroute to an unhealthy region is not answered: Route 53 honours health first
    healthy.set_faults([{"kind": "misroute", "vantage": "dub", "answer": "ap-southeast-1"},
                        {"kind": "http_5xx", "region": "ap-southeast-1"}])
    assert region_of(healthy, ask(healthy, source=dub)) == ["eu-west-1"]
    # every health check failing: every record is answered
    healthy.set_faults([{"kind": "region_down", "region": r} for r in healthy.regions])
    assert region_of(healthy, ask(healthy, source=dub)) == sorted(healthy.regions)
    healthy.clear_faults()
    assert healthy.faults() == []
    assert region_of(healthy, ask(healthy, source=dub)) == ["eu-west-1"]


def test_servfail_scenario_fails_dub_only(lab_world: LabWorld) -> None:
    lab = lab_world("dns-servfail")
    assert ask(lab, source=lab.vantage_points["dub"]).rcode() == dns.rcode.SERVFAIL
    assert ask(lab, subnet=subnet_of(lab, "dub")).rcode() == dns.rcode.SERVFAIL
    assert ask(lab, source=lab.vantage_points["nyc"]).rcode() == dns.rcode.NOERROR


def test_timeout_and_garbage_faults(healthy: LabHandle) -> None:
    nyc, dub = healthy.vantage_points["nyc"], healthy.vantage_points["dub"]
    healthy.set_faults([{"kind": "dns_timeout", "vantage": "dub"},
                        {"kind": "dns_garbage", "vantage": "nyc"}])
    with pytest.raises(dns.exception.Timeout):
        ask(healthy, source=dub, timeout=0.3)
    with pytest.raises(dns.exception.FormError):
        ask(healthy, source=nyc)
    fra = ask(healthy, source=healthy.vantage_points["fra"])
    assert region_of(healthy, fra) == ["eu-west-1"]


def test_truncation_fault_sends_the_client_to_tcp(healthy: LabHandle) -> None:
    healthy.set_faults([{"kind": "dns_truncate"}])
    source = healthy.vantage_points["nyc"]
    truncated = ask(healthy, source=source)
    assert truncated.flags & dns.flags.TC
    assert truncated.answer == []
    query = dns.message.make_query(ORIGIN, "A", use_edns=0)
    response, used_tcp = dns.query.udp_with_fallback(
        query, healthy.dns_host, timeout=2.0, port=healthy.dns_port, source=source)
    assert used_tcp
    assert region_of(healthy, response) == ["us-east-1"]


def test_answers_too_big_for_udp_are_truncated() -> None:
    text = ("regions: {us-east-1: {}}\n"
            "vantage_points: {nyc: {latency_ms: {us-east-1: 8}}}\n"
            f"description: {'a long description that will not fit into 512 bytes ' * 12}\n")
    with start_lab(parse_scenario(text, name="long")) as lab:
        small = ask(lab, "example.com", rdtype="TXT", edns=False)
        assert small.flags & dns.flags.TC
        large = ask(lab, "example.com", rdtype="TXT", edns=True)  # EDNS payload 1232
        assert not large.flags & dns.flags.TC
        query = dns.message.make_query("example.com", "TXT")
        over_tcp = dns.query.tcp(query, lab.dns_host, timeout=2.0, port=lab.dns_port)
        assert over_tcp.answer == large.answer
