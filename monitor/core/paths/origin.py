"""The ``origin`` path: which region serves the origin name at the address DNS answered.

Measured by one request to the first address the recursive lookup (the ``dns`` path) answered,
with Host and SNI set to the origin name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.config import Config, VantagePoint
from monitor.core.attribution import attribute
from monitor.core.evidence import Judgement, MeasureContext, PathInputs, Tick, VantageEvidence
from monitor.core.model import DataPath, ErrorRecord, OriginDetails, Path, PathResult
from monitor.core.verdict import judge, judge_unknown
from monitor.domain.reasons import Reason
from probes.http import HttpTarget, probe_http

__all__ = ["HealthDocument", "judge_origin", "measure_origin", "origin_planned_checks",
           "parse_health"]


@dataclass(frozen=True)
class HealthDocument:
    region: str | None = None
    dynamodb_region: str | None = None
    dynamodb_read_ms: float | None = None
    problem: str | None = None


def parse_health(body: bytes) -> HealthDocument:
    """The app contract's health JSON; anything unexpected becomes a problem note, never a crash."""
    if not body:
        return HealthDocument()
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return HealthDocument(problem=f"health body is not JSON ({exc.__class__.__name__})")
    if not isinstance(document, Mapping):
        return HealthDocument(problem="health body is not a JSON object")

    def text(key: str) -> str | None:
        value = document.get(key)
        return value[:64] if isinstance(value, str) and value else None

    read_ms = document.get("dynamodb_read_ms")
    number = (float(read_ms) if isinstance(read_ms, int | float) and not isinstance(read_ms, bool)
              and 0 <= read_ms < 1e9 else None)
    return HealthDocument(text("region"), text("dynamodb_region"), number)


def origin_planned_checks(config: Config) -> int:
    return 1


async def measure_origin(context: MeasureContext, vantage: VantagePoint,
                         evidence: VantageEvidence, tick: Tick) -> None:
    """One request where the recursive answer points (none when the lookup failed)."""
    config = context.config
    await evidence.recursive_done.wait()
    answer = evidence.recursive
    if answer is not None and answer.error is None and answer.addresses:
        await context.slot()
        evidence.origin = await probe_http(
            HttpTarget(
                host=config.service.origin_name,
                address=answer.addresses[0],
                port=config.service.port,
                path=config.service.health_path,
                local_address=vantage.source_address,
            ),
            ssl_context=context.ssl_context,
            connect_timeout_s=config.probe.connect_timeout_s,
            request_timeout_s=config.probe.request_timeout_s,
            body_limit_bytes=config.probe.body_limit_bytes,
        )
    tick()  # the planned request is done, or known never to happen


def judge_origin(inputs: PathInputs) -> Judgement:
    config = inputs.config
    dns_answer = inputs.evidence.recursive
    if dns_answer is not None and dns_answer.error is not None:
        return Judgement(PathResult(Path.ORIGIN, judge_unknown(
            dns_answer.error.reason, f"origin not requested: {dns_answer.error}")))
    response = inputs.evidence.origin
    if response is None:
        verdict = judge_unknown(Reason.DEADLINE, "no origin answer before the round deadline")
        return Judgement(PathResult(Path.ORIGIN, verdict),
                         (ErrorRecord("origin", Reason.DEADLINE, verdict.detail),))
    phases = dict(response.phases)
    if dns_answer is not None:
        phases["resolve"] = dns_answer.duration_seconds
    address = response.peer_address or response.target.address
    if response.error is not None:
        attribution = attribute(inputs.directory, addresses=[address])
        failed = judge_unknown(response.error.reason, str(response.error),
                               served=attribution.region)
        return Judgement(PathResult(Path.ORIGIN, failed, attribution, None, phases, address),
                         (ErrorRecord.of("origin", response.error),))
    health = parse_health(response.body)
    notes = [health.problem] if health.problem else []
    errors: list[ErrorRecord] = []
    attribution = attribute(
        inputs.directory,
        header_region=response.header(config.service.region_header),
        body_region=health.region,
        addresses=[address],
    )
    notes.extend(attribution.conflicts)
    verdict = judge(attribution.region, inputs.regions, config.tolerance,
                    nominal_closest=inputs.nominal_closest)
    if attribution.region is None:
        verdict = judge_unknown(
            Reason.UNATTRIBUTED,
            f"no {config.service.region_header} header and no region owns {address}",
            expected=verdict.expected_region)
    elif attribution.disputed:  # a wrong header is an app bug, not a routing penalty
        verdict = judge_unknown(Reason.EVIDENCE_CONFLICT, "; ".join(attribution.conflicts),
                                expected=verdict.expected_region)
    if response.status is not None and response.status >= 400:
        notes.append(f"origin answered HTTP {response.status}")
        errors.append(ErrorRecord("origin", Reason.HTTP_STATUS, f"HTTP {response.status}"))
    data_path = None
    if health.dynamodb_region is not None:
        read_seconds = (None if health.dynamodb_read_ms is None
                        else health.dynamodb_read_ms / 1000.0)
        data_path = DataPath.observed(health.dynamodb_region, attribution.region, read_seconds)
        if not data_path.local:
            notes.append(f"data path leaves the serving region: {attribution.region} reads "
                         f"DynamoDB in {health.dynamodb_region}")
    return Judgement(PathResult(Path.ORIGIN, verdict, attribution, response.first_byte_seconds,
                                phases, address, response.status, tuple(notes),
                                OriginDetails(data_path)), tuple(errors))
