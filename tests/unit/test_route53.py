"""``dns explain`` (Route 53's TestDNSAnswer through botocore's Stubber, which checks requests and
responses against the real API model, since moto lacks the call) and ``dns sweep`` (ECS queries
at an authoritative server; against the lab's DNS in tests/test_route53_lab.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from monitor.aws.clients import AwsNotFound, route53_client
from monitor.aws.route53 import (
    SubnetLocation,
    SubnetsFileError,
    ask_route53,
    explain,
    parse_subnets,
    sweep,
)
from monitor.cli import main
from monitor.config import parse_config
from probes.dns import DnsEvidence, DnsQuery
from probes.errors import DnsTimeout

CONFIG_TEXT = """
service: {origin_name: global-alb.example.com}
regions:
  eu-west-1: {addresses: [192.0.2.10], alb_name: app-euw1.eu-west-1.elb.amazonaws.com}
  us-east-1: {addresses: [192.0.2.20]}
vantage_points:
  dublin: {resolver: 1.1.1.1, client_subnet: 198.51.100.0/24}
  virginia: {resolver: 10.0.0.2, client_subnet: 203.0.113.0/24}
authoritative: [192.0.2.53]
alarms: {hosted_zone_id: Z0123456789ABCDEFGHIJ}
"""
CONFIG = parse_config(CONFIG_TEXT).config

# the DNS each test "sees": (server, qname, ECS subnet) → addresses
ANSWERS = {
    ("192.0.2.53", "global-alb.example.com", "198.51.100.0/24"): ("192.0.2.10",),
    ("192.0.2.53", "global-alb.example.com", "203.0.113.0/24"): ("192.0.2.10",),
    ("1.1.1.1", "global-alb.example.com", None): ("192.0.2.10",),
    ("10.0.0.2", "global-alb.example.com", None): ("192.0.2.20",),
}


async def fake_resolve(query: DnsQuery) -> DnsEvidence:
    addresses = ANSWERS.get((query.server, query.qname, query.client_subnet), ())
    error = None if addresses else DnsTimeout("no answer", target=query.server)
    return DnsEvidence(query.qname, f"{query.server}:{query.port}", query.via,
                       query.client_subnet, "NOERROR" if addresses else None, addresses, (),
                       60, 24 if query.client_subnet else None, "udp", 0.001, True, error)


def route53_response(*data: str) -> dict[str, object]:
    return {"Nameserver": "ns-1.awsdns-01.org", "RecordName": "global-alb.example.com",
            "RecordType": "A", "RecordData": list(data), "ResponseCode": "NOERROR",
            "Protocol": "UDP"}


def test_test_dns_answer_request_carries_the_subnet() -> None:
    client = route53_client(endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        stub.add_response("test_dns_answer", route53_response("192.0.2.10"), {
            "HostedZoneId": "Z0123456789ABCDEFGHIJ", "RecordName": "global-alb.example.com",
            "RecordType": "A", "EDNS0ClientSubnetIP": "198.51.100.0",
            "EDNS0ClientSubnetMask": "24"})
        answer = ask_route53(client, hosted_zone_id="Z0123456789ABCDEFGHIJ",
                             record_name="global-alb.example.com",
                             client_subnet="198.51.100.7/24")
        stub.assert_no_pending_responses()
    assert answer.record_data == ("192.0.2.10",)
    assert (answer.response_code, answer.protocol) == ("NOERROR", "UDP")


def test_a_missing_zone_is_a_typed_error_naming_the_call() -> None:
    client = route53_client(endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        stub.add_client_error("test_dns_answer", "NoSuchHostedZone", "No hosted zone found",
                              http_status_code=404)
        with pytest.raises(AwsNotFound) as caught:
            ask_route53(client, hosted_zone_id="Z0123456789ABCDEFGHIJ",
                        record_name="global-alb.example.com")
    assert str(caught.value) == ("route53.TestDNSAnswer in global: NoSuchHostedZone: "
                                 "No hosted zone found")


def test_explain_compares_route53_with_what_the_probe_resolved() -> None:
    client = route53_client(endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        # dublin: a public resolver, so Route 53 is asked to simulate it
        stub.add_response("test_dns_answer", route53_response("192.0.2.10"), {
            "HostedZoneId": ANY, "RecordName": ANY, "RecordType": "A", "ResolverIP": "1.1.1.1",
            "EDNS0ClientSubnetIP": "198.51.100.0", "EDNS0ClientSubnetMask": "24"})
        # virginia: Route 53 says us-east-1 (an alias answer by name) but the probe got eu-west-1
        stub.add_response("test_dns_answer", route53_response("192.0.2.20"), {
            "HostedZoneId": ANY, "RecordName": ANY, "RecordType": "A",
            "EDNS0ClientSubnetIP": "203.0.113.0", "EDNS0ClientSubnetMask": "24"})
        rows = asyncio.run(explain(CONFIG, client, resolve=fake_resolve))
        stub.assert_no_pending_responses()
    dublin, virginia = rows
    assert (dublin.route53_region, dublin.authoritative_region, dublin.recursive_region) == (
        "eu-west-1", "eu-west-1", "eu-west-1")
    assert dublin.agrees is True
    assert (virginia.route53_region, virginia.authoritative_region,
            virginia.recursive_region) == ("us-east-1", "eu-west-1", "us-east-1")
    assert virginia.agrees is False


def test_an_alias_answer_by_name_is_attributed_to_its_region() -> None:
    client = route53_client(endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        stub.add_response("test_dns_answer",
                          route53_response("app-euw1.eu-west-1.elb.amazonaws.com."))
        rows = asyncio.run(explain(CONFIG, client, vantage_points=["virginia"],
                                   resolve=fake_resolve))
    assert rows[0].route53_region == "eu-west-1"
    assert rows[0].agrees is True


def test_explain_cli_needs_a_hosted_zone(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(CONFIG_TEXT.replace("alarms: {hosted_zone_id: Z0123456789ABCDEFGHIJ}", ""),
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["dns", "explain", "--config", str(file)])
    assert result.exit_code == 2
    assert "alarms.hosted_zone_id is not set" in result.output


def test_subnets_file_reads_codes_and_coordinates() -> None:
    rows = parse_subnets("# where our users are\n198.51.100.0/24 DUB  office\n"
                         "203.0.113.7/24 38.9,-77.4\n\n")
    assert [(r.subnet, r.place) for r in rows] == [("198.51.100.0/24", "DUB"),
                                                   ("203.0.113.0/24", "38.9,-77.4")]
    assert rows[1].location == (38.9, -77.4)
    assert abs(rows[0].location[0] - 53.4) < 0.2


@pytest.mark.parametrize(("text", "message"), [
    ("198.51.100.0/24\n", "subnets:1: expected 'SUBNET LOCATION'"),
    ("not-a-subnet DUB\n", "subnets:1: 'not-a-subnet' is not a subnet"),
    ("\n198.51.100.0/24 QQQ\n", "subnets:2: 'QQQ' is not a known IATA airport code"),
    ("198.51.100.0/24 91,0\n", "subnets:1: '91,0' is not a latitude,longitude"),
    ("198.51.100.0/24 Dublin\n", "subnets:1: 'Dublin' is neither an IATA code nor lat,lon"),
    ("# nothing\n", "subnets: no subnets"),
])
def test_subnets_file_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(SubnetsFileError, match="^" + message.replace("(", r"\(")):
        parse_subnets(text)


def test_sweep_flags_the_subnet_answered_from_farther_away() -> None:
    subnets = [SubnetLocation("198.51.100.0/24", "DUB", (53.42, -6.27)),
               SubnetLocation("203.0.113.0/24", "IAD", (38.94, -77.46)),
               SubnetLocation("192.0.2.0/24", "ORD", (41.97, -87.9))]
    rows = asyncio.run(sweep(CONFIG, subnets, resolve=fake_resolve, pace_s=0.0))
    assert [(r.answered_region, r.nearest_region, r.mismatch) for r in rows] == [
        ("eu-west-1", "eu-west-1", False),
        ("eu-west-1", "us-east-1", True),
        (None, "us-east-1", False),
    ]
    assert rows[1].extra_km is not None
    assert rows[1].extra_km > 4000
    assert rows[2].error is not None
    assert rows[2].error.startswith("dns_timeout")


def test_sweep_text_escapes_what_the_network_sent() -> None:
    """An error text or a region a peer put control characters in is shown escaped: the routing
    map cannot move the cursor, recolour the terminal or hide a line."""
    from monitor.aws.route53 import SweepRow
    from monitor.cli.dns import render_sweep

    rows = [SweepRow("198.51.100.0/24", "DUB", None, "eu-west-1", (), None, {},
                     error="bad\x1b[2J\nanswer\u202e"),
            SweepRow("203.0.113.0/24", "JFK", "us-east-1\r", "us-east-1", (), "127.0.0.1", {})]
    text = "\n".join(render_sweep(rows))
    for unsafe in ("\x1b", "\r", "\u202e"):
        assert unsafe not in text
    assert "bad\\x1b[2J\\nanswer\\u202e" in text
    assert "us-east-1\\r" in text
    assert len(text.splitlines()) == 4  # header, two rows, summary: no injected line
