"""The ``dns`` path: which region the vantage point's resolver sends it to.

Measured by resolving the origin name through the vantage point's resolver and, beside it, at the
zone's authoritative servers with the vantage point's client subnet (ECS).
"""

from __future__ import annotations

import asyncio

from monitor.config import Config, VantagePoint, split_endpoint
from monitor.core.attribution import attribute
from monitor.core.evidence import Judgement, MeasureContext, PathInputs, Tick, VantageEvidence
from monitor.core.model import (
    DnsDetails,
    DnsFailureDetails,
    ErrorRecord,
    IpFamily,
    Path,
    PathResult,
)
from monitor.core.verdict import judge, judge_unknown, unknown_beside_baseline
from monitor.domain.reasons import Reason
from probes.dns import DnsEvidence, DnsQuery, probe_dns

__all__ = ["dns_planned_checks", "dns_query", "judge_dns", "measure_dns", "subnet_specific"]


def dns_query(config: Config, vantage: VantagePoint, qname: str, *,
              authoritative_server: str | None = None,
              family: IpFamily = IpFamily.IPV4) -> DnsQuery:
    """A query through the vantage point's resolver, or at one authoritative server with ECS,
    for ``family``'s records (A or AAAA; the query itself goes however the server is reached)."""
    host, port = split_endpoint(authoritative_server or vantage.resolver, 53)
    return DnsQuery(
        qname=qname,
        server=host,
        port=port,
        via="authoritative" if authoritative_server else "recursive",
        rdtype=family.rdtype,
        client_subnet=vantage.client_subnet if authoritative_server else None,
        source_address=vantage.source_address,
        timeout_s=config.probe.dns_timeout_s,
    )


def subnet_specific(answer: DnsEvidence) -> bool:
    """Whether an answer to a query with ECS is specific to the subnet sent (RFC 7871): its
    scope is above /0. A missing scope (a server without ECS support) or /0 means the answer is
    the same for every client, whatever the subnet. A query without ECS claims no subnet."""
    return answer.client_subnet is None or bool(answer.ecs_scope)


def dns_planned_checks(config: Config) -> int:
    """The recursive lookup, and the authoritative one when servers are configured."""
    return 1 + (1 if config.authoritative else 0)


async def measure_dns(context: MeasureContext, vantage: VantagePoint,
                      evidence: VantageEvidence, tick: Tick) -> None:
    """Both lookups at once; the recursive answer is announced as soon as it lands (it takes the
    first start slot: the origin request waits for it)."""
    config = context.config

    async def authoritative() -> None:
        await context.slot()
        for server in config.authoritative:  # the first server that answers wins
            evidence.authoritative = await probe_dns(dns_query(
                config, vantage, config.service.origin_name, authoritative_server=server,
                family=evidence.family))
            if evidence.authoritative.rcode is not None:
                break
        tick()

    beside = asyncio.create_task(authoritative()) if config.authoritative else None
    try:
        await context.slot()
        evidence.recursive = await probe_dns(
            dns_query(config, vantage, config.service.origin_name, family=evidence.family))
        evidence.recursive_done.set()
        tick()
        if beside is not None:
            await beside  # cancelling this measurement cancels it too
    except BaseException:
        if beside is not None:
            beside.cancel()
        raise
    finally:
        evidence.recursive_done.set()


def judge_dns(inputs: PathInputs) -> Judgement:
    answer = inputs.evidence.recursive
    if answer is None:
        verdict = unknown_beside_baseline(inputs.regions, Reason.DEADLINE,
                                          "no DNS answer before the round deadline")
        return Judgement(PathResult(Path.DNS, verdict),
                         (ErrorRecord("dns", Reason.DEADLINE, verdict.detail),))
    latency = answer.duration_seconds
    if answer.error is not None:
        failed = unknown_beside_baseline(inputs.regions, answer.error.reason, str(answer.error))
        return Judgement(
            PathResult(Path.DNS, failed, latency_seconds=latency, phases={"resolve": latency},
                       details=DnsFailureDetails(answer.rcode)),
            (ErrorRecord.of("dns", answer.error),))
    attribution = attribute(inputs.directory, addresses=answer.addresses)
    verdict = judge(attribution.region, inputs.regions, inputs.config.tolerance,
                    nominal_closest=inputs.nominal_closest)
    if attribution.region is None:
        verdict = judge_unknown(Reason.UNATTRIBUTED,
                                f"no region owns {', '.join(answer.addresses)}",
                                expected=verdict.expected_region)
    notes = list(attribution.conflicts)
    errors: list[ErrorRecord] = []
    details = DnsDetails(answer.addresses, answer.ttl, answer.cname_chain)
    authoritative = inputs.evidence.authoritative
    if authoritative is not None and authoritative.error is None:
        scope = authoritative.ecs_scope
        if not subnet_specific(authoritative):
            details = DnsDetails(answer.addresses, answer.ttl, answer.cname_chain, True, None,
                                 scope, Reason.ECS_SCOPE_ZERO)
            notes.append(f"{Reason.ECS_SCOPE_ZERO}: the authoritative answer is not specific to "
                         f"subnet {authoritative.client_subnet} (ECS scope "
                         f"{'missing' if scope is None else f'/{scope}'}), so it says nothing "
                         f"about where that subnet is sent")
        else:
            ecs_region = attribute(inputs.directory, addresses=authoritative.addresses).region
            details = DnsDetails(answer.addresses, answer.ttl, answer.cname_chain, True,
                                 ecs_region, scope)
            if ecs_region != attribution.region:
                notes.append(f"the authoritative answer for subnet "
                             f"{authoritative.client_subnet} is {ecs_region}; the resolver "
                             f"answered {attribution.region}")
    elif authoritative is not None and authoritative.error is not None:
        errors.append(ErrorRecord.of("dns", authoritative.error))
        notes.append(f"authoritative query failed: {authoritative.error}")
    return Judgement(PathResult(Path.DNS, verdict, attribution, latency, {"resolve": latency},
                                answer.addresses[0], None, tuple(notes), details), tuple(errors))
