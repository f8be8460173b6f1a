"""The ``dns`` path: which region the vantage point's resolver sends it to."""

from __future__ import annotations

from typing import Any

from monitor.core.attribution import attribute
from monitor.core.evidence import PathInputs
from monitor.core.model import ErrorRecord, Path, PathResult
from monitor.core.verdict import judge, judge_unknown


def judge_dns(inputs: PathInputs) -> PathResult:
    answer = inputs.evidence.recursive
    if answer is None:
        verdict = judge_unknown("deadline", "no DNS answer before the round deadline")
        inputs.errors.append(ErrorRecord("dns", "deadline", verdict.detail))
        return PathResult(Path.DNS, verdict)
    latency = answer.duration_seconds
    if answer.error is not None:
        inputs.errors.append(ErrorRecord("dns", answer.error.reason, str(answer.error)))
        return PathResult(Path.DNS, judge_unknown(answer.error.reason, str(answer.error)),
                          latency_seconds=latency, phases={"resolve": latency},
                          extra={"rcode": answer.rcode})
    attribution = attribute(inputs.directory, addresses=answer.addresses)
    verdict = judge(attribution.region, inputs.regions, inputs.config.tolerance,
                    nominal_closest=inputs.nominal_closest)
    if attribution.region is None:
        verdict = judge_unknown("unattributed", f"no region owns {', '.join(answer.addresses)}",
                                expected=verdict.expected_region)
    notes = list(attribution.conflicts)
    extra: dict[str, Any] = {"addresses": list(answer.addresses), "ttl": answer.ttl,
                             "cname_chain": list(answer.cname_chain)}
    authoritative = inputs.evidence.authoritative
    if authoritative is not None and authoritative.error is None:
        ecs_region = attribute(inputs.directory, addresses=authoritative.addresses).region
        extra["ecs_region"] = ecs_region
        if ecs_region != attribution.region:
            notes.append(f"the authoritative answer for subnet {authoritative.client_subnet} is "
                         f"{ecs_region}; the resolver answered {attribution.region}")
    elif authoritative is not None and authoritative.error is not None:
        inputs.errors.append(ErrorRecord("dns", authoritative.error.reason,
                                         str(authoritative.error)))
        notes.append(f"authoritative query failed: {authoritative.error}")
    return PathResult(Path.DNS, verdict, attribution, latency, {"resolve": latency},
                      answer.addresses[0], None, tuple(notes), extra)
