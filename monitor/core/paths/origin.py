"""The ``origin`` path: which region serves the origin name at the address DNS answered.

Measured by one request to the first address the recursive lookup (the ``dns`` path) answered,
with Host and SNI set to the origin name.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from monitor.config import Config, VantagePoint, address_policy
from monitor.core.attribution import attribute, region_name
from monitor.core.evidence import Judgement, MeasureContext, PathInputs, Tick, VantageEvidence
from monitor.core.model import (
    Attribution,
    DataPath,
    ErrorRecord,
    OriginDetails,
    Path,
    PathResult,
    RoutingState,
    TlsInfo,
)
from monitor.core.paths.claims import header_disputes
from monitor.core.paths.http_status import status_problem
from monitor.core.verdict import judge, judge_unknown, unknown_beside_baseline
from monitor.domain.reasons import Reason
from probes.http import HttpEvidence, HttpTarget, probe_http
from probes.records import record

__all__ = ["HealthDocument", "judge_origin", "measure_origin", "origin_attribution",
           "origin_health", "origin_planned_checks", "parse_health", "read_health"]


@record
class HealthDocument:
    """The app contract's health JSON as far as it could be read; ``problem`` (with its typed
    ``reason``) says what was wrong with it."""

    region: str | None = None
    dynamodb_region: str | None = None
    dynamodb_read_ms: float | None = None
    problem: str | None = None
    reason: Reason | None = None


def parse_health(body: bytes) -> HealthDocument:
    """The app contract's health JSON; anything unexpected (not JSON, nested too deep, a number
    too long to convert, not an object) is a typed problem, never a crash."""
    if not body:
        return HealthDocument()
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        what = ("nested too deep" if isinstance(exc, RecursionError)
                else "not JSON" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError)
                else "not readable JSON")
        return HealthDocument(problem=f"health body is {what} ({exc.__class__.__name__})",
                              reason=Reason.HEALTH_JSON_INVALID)
    if not isinstance(document, Mapping):
        return HealthDocument(problem="health body is not a JSON object",
                              reason=Reason.HEALTH_JSON_INVALID)

    def text(key: str) -> str | None:
        value = document.get(key)
        return value[:64] if isinstance(value, str) and value else None

    read_ms = document.get("dynamodb_read_ms")
    number = (float(read_ms) if isinstance(read_ms, int | float) and not isinstance(read_ms, bool)
              and 0 <= read_ms < 1e9 else None)
    return HealthDocument(text("region"), text("dynamodb_region"), number)


def read_health(response: HttpEvidence, limit: int) -> HealthDocument:
    """The health document of a 2xx answer: a body cut at the limit or undecodable is not
    parsed at all (say so), whatever it began with."""
    if response.body_problem is not None:
        return HealthDocument(problem=f"health body: {response.body_problem}",
                              reason=Reason.HEALTH_JSON_INVALID)
    if response.body_truncated:
        return HealthDocument(problem=f"health body is larger than {limit} bytes "
                                      f"(probe.body_limit_bytes): not parsed",
                              reason=Reason.BODY_TOO_LARGE)
    return parse_health(response.body)


def origin_health(config: Config, response: HttpEvidence) -> HealthDocument:
    """The health document of the origin's answer (none for an error status or a redirect)."""
    if status_problem(response) is not None:
        return HealthDocument()
    return read_health(response, config.probe.body_limit_bytes)


def origin_attribution(inputs: PathInputs, response: HttpEvidence,
                       health: HealthDocument) -> Attribution:
    """Which region answered the origin request: its region header (parsed), health JSON and
    address; disputed when they disagree, or, when the address names no region, when another
    region's app sends the same header (measured directly)."""
    address = response.peer_address or response.target.address
    header_regions = response.header_list(inputs.config.service.region_header)
    attribution = attribute(inputs.directory, header_regions=header_regions,
                            body_region=health.region, addresses=[address])
    if attribution.source != "header" or inputs.directory.region_of_address(address)[0]:
        return attribution  # the address is the independent evidence here
    disputes = header_disputes(inputs, header_regions)
    if not disputes:
        return attribution
    return dataclasses.replace(attribution, disputed=True,
                               conflicts=tuple(dict.fromkeys((*attribution.conflicts,
                                                              *disputes))))


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
                local_address=vantage.local_address(evidence.family),
            ),
            ssl_context=context.ssl_context,
            connect_timeout_s=config.probe.connect_timeout_s,
            request_timeout_s=config.probe.request_timeout_s,
            body_limit_bytes=config.probe.body_limit_bytes,
            address_policy=address_policy(config),
        )
    tick()  # the planned request is done, or known never to happen


def judge_origin(inputs: PathInputs) -> Judgement:
    config = inputs.config
    dns_answer = inputs.evidence.recursive
    if dns_answer is not None and dns_answer.error is not None:
        return Judgement(PathResult(Path.ORIGIN, unknown_beside_baseline(
            inputs.regions, dns_answer.error.reason,
            f"origin not requested: {dns_answer.error}")))
    response = inputs.evidence.origin
    if response is None:
        verdict = unknown_beside_baseline(inputs.regions, Reason.DEADLINE,
                                          "no origin answer before the round deadline")
        return Judgement(PathResult(Path.ORIGIN, verdict),
                         (ErrorRecord("origin", Reason.DEADLINE, verdict.detail),))
    phases = dict(response.phases)
    if dns_answer is not None:
        phases["resolve"] = dns_answer.duration_seconds
    address = response.peer_address or response.target.address
    tls = TlsInfo.of(response.tls)
    if response.error is not None:
        attribution = attribute(inputs.directory, addresses=[address])
        failed = unknown_beside_baseline(inputs.regions, response.error.reason,
                                         str(response.error), served=attribution.region)
        return Judgement(PathResult(Path.ORIGIN, failed, attribution, None, phases, address,
                                    tls=tls),
                         (ErrorRecord.of("origin", response.error),))
    status = status_problem(response)
    health = origin_health(config, response)
    notes = [f"{health.reason}: {health.problem}"] if health.problem else []
    errors = ([ErrorRecord("origin", health.reason, health.problem)]
              if health.problem and health.reason else [])
    attribution = origin_attribution(inputs, response, health)
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
    if status is not None:  # an error page or a redirect is no answer, whoever sent it
        errors.append(ErrorRecord("origin", Reason.HTTP_STATUS, status))
        if verdict.state is RoutingState.MISROUTED:
            notes.append(f"origin answered {status}")
        else:
            verdict = judge_unknown(Reason.HTTP_STATUS, f"origin answered {status}",
                                    served=attribution.region, expected=verdict.expected_region)
    data_path = None
    dynamodb_region = region_name(health.dynamodb_region)
    if dynamodb_region is not None:
        read_seconds = (None if health.dynamodb_read_ms is None
                        else health.dynamodb_read_ms / 1000.0)
        data_path = DataPath.observed(dynamodb_region, attribution.region, read_seconds,
                                      disputed=attribution.disputed)
        if data_path.local is None:
            notes.append(f"data path disputed: the app reads DynamoDB in {dynamodb_region}, but "
                         f"which region serves is disputed (see above)")
        elif not data_path.local:
            notes.append(f"data path leaves the serving region: {attribution.region} reads "
                         f"DynamoDB in {dynamodb_region}")
    return Judgement(PathResult(Path.ORIGIN, verdict, attribution, response.first_byte_seconds,
                                phases, address, response.status, tuple(notes),
                                OriginDetails(data_path), tls), tuple(errors))
