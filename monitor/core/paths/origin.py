"""The ``origin`` path: which region serves the origin name at the address DNS answered."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.attribution import attribute
from monitor.core.evidence import PathInputs
from monitor.core.model import ErrorRecord, Path, PathResult
from monitor.core.verdict import judge, judge_unknown

__all__ = ["HealthDocument", "judge_origin", "parse_health"]


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


def judge_origin(inputs: PathInputs) -> PathResult:
    config = inputs.config
    dns_answer = inputs.evidence.recursive
    if dns_answer is not None and dns_answer.error is not None:
        return PathResult(Path.ORIGIN, judge_unknown(
            dns_answer.error.reason, f"origin not requested: {dns_answer.error}"))
    response = inputs.evidence.origin
    if response is None:
        verdict = judge_unknown("deadline", "no origin answer before the round deadline")
        inputs.errors.append(ErrorRecord("origin", "deadline", verdict.detail))
        return PathResult(Path.ORIGIN, verdict)
    phases = dict(response.phases)
    if dns_answer is not None:
        phases["resolve"] = dns_answer.duration_seconds
    address = response.peer_address or response.target.address
    if response.error is not None:
        inputs.errors.append(ErrorRecord("origin", response.error.reason, str(response.error)))
        attribution = attribute(inputs.directory, addresses=[address])
        failed = judge_unknown(response.error.reason, str(response.error),
                               served=attribution.region)
        return PathResult(Path.ORIGIN, failed, attribution, None, phases, address)
    health = parse_health(response.body)
    notes = [health.problem] if health.problem else []
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
            "unattributed",
            f"no {config.service.region_header} header and no region owns {address}",
            expected=verdict.expected_region)
    elif attribution.disputed:  # a wrong header is an app bug, not a routing penalty
        verdict = judge_unknown("evidence_conflict", "; ".join(attribution.conflicts),
                                expected=verdict.expected_region)
    if response.status is not None and response.status >= 400:
        notes.append(f"origin answered HTTP {response.status}")
        inputs.errors.append(ErrorRecord("origin", "http_status", f"HTTP {response.status}"))
    extra: dict[str, Any] = {}
    if health.dynamodb_region is not None:
        extra["dynamodb_region"] = health.dynamodb_region
        extra["data_path_local"] = health.dynamodb_region == attribution.region
        if health.dynamodb_read_ms is not None:
            extra["dynamodb_read_seconds"] = health.dynamodb_read_ms / 1000.0
        if not extra["data_path_local"]:
            notes.append(f"data path leaves the serving region: {attribution.region} reads "
                         f"DynamoDB in {health.dynamodb_region}")
    return PathResult(Path.ORIGIN, verdict, attribution, response.first_byte_seconds, phases,
                      address, response.status, tuple(notes), extra)
