"""probes/dns.py against the lab's authoritative DNS server on loopback."""

from __future__ import annotations

import pytest
from conftest import LabWorld

from monitor.config import Config, load_config, split_endpoint
from monitor.lab import LabHandle, region_address
from probes.dns import DnsQuery, probe_dns
from probes.errors import DnsMalformed, DnsNxdomain, DnsRefused, DnsServfail, DnsTimeout


@pytest.fixture
def world(lab_world: LabWorld) -> tuple[LabHandle, Config]:
    handle = lab_world("healthy")
    return handle, load_config(handle.config_path).config


def query(config: Config, vantage: str, qname: str | None = None, *, ecs: bool = False,
          source: bool = True, timeout_s: float = 2.0) -> DnsQuery:
    point = config.vantage_points[vantage]
    host, port = split_endpoint(config.authoritative[0], 53)
    return DnsQuery(qname=qname or config.service.origin_name, server=host, port=port,
                    via="authoritative" if ecs else "recursive",
                    client_subnet=point.client_subnet if ecs else None,
                    source_address=point.source_address if source else None,
                    timeout_s=timeout_s)


def region_index(config: Config, region: str) -> int:
    return list(config.regions).index(region) + 1


async def test_answer_depends_on_the_source_address(world: tuple[LabHandle, Config]) -> None:
    handle, config = world
    for name, spec in handle.scenario.vantage_points.items():
        closest = min(spec.latency_ms, key=spec.latency_ms.__getitem__)
        answer = await probe_dns(query(config, name))
        assert answer.error is None, answer.error
        assert answer.addresses == (region_address(region_index(config, closest)),)
        assert answer.rcode == "NOERROR"
        assert answer.ttl is not None
        assert answer.ttl > 0
        assert answer.transport == "udp"
        assert answer.duration_seconds > 0


async def test_ecs_subnet_decides_the_authoritative_answer(
        world: tuple[LabHandle, Config]) -> None:
    handle, config = world
    # sent from no vantage address at all: only the ECS option says who is asking
    for name, spec in handle.scenario.vantage_points.items():
        closest = min(spec.latency_ms, key=spec.latency_ms.__getitem__)
        answer = await probe_dns(query(config, name, ecs=True, source=False))
        assert answer.addresses == (region_address(region_index(config, closest)),), name
        assert answer.ecs_scope is not None
        assert answer.authoritative_answer


@pytest.mark.parametrize(("fault", "error", "reason"), [
    ("dns_servfail", DnsServfail, "dns_servfail"),
    ("dns_timeout", DnsTimeout, "dns_timeout"),
    ("dns_garbage", DnsMalformed, "dns_malformed"),
])
async def test_faults_become_typed_errors(world: tuple[LabHandle, Config], fault: str,
                                          error: type[Exception], reason: str) -> None:
    handle, config = world
    handle.set_faults([{"kind": fault}])
    answer = await probe_dns(query(config, "nyc", timeout_s=0.5))
    assert isinstance(answer.error, error)
    assert answer.error.reason == reason
    assert answer.addresses == ()


async def test_truncated_udp_answer_falls_back_to_tcp(world: tuple[LabHandle, Config]) -> None:
    handle, config = world
    handle.set_faults([{"kind": "dns_truncate"}])
    answer = await probe_dns(query(config, "nyc"))
    assert answer.error is None
    assert answer.transport == "tcp"
    assert answer.addresses


async def test_unknown_name_and_foreign_zone(world: tuple[LabHandle, Config]) -> None:
    _, config = world
    missing = await probe_dns(query(config, "nyc", "nothing-here.example.com"))
    assert isinstance(missing.error, DnsNxdomain)
    foreign = await probe_dns(query(config, "nyc", "www.example.org"))
    assert isinstance(foreign.error, DnsRefused)
