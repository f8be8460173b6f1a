"""The one vocabulary of reasons: why a verdict is not plainly ``ok``, why a region is down, why a
probe, an AWS call or the CloudWatch export failed. A reason is the ``reason`` of a verdict, of a
region and of an error record, and the ``reason`` label of every metric that has one.

:class:`Reason` includes every :class:`probes.errors.ProbeReason` (probes never import monitor, so
they define theirs; a test keeps the two in step). README.md, docs/runbook.md and docs/metrics.md
list every reason (``python -m monitor.domain.reasons`` prints the table; a test keeps them in
step).
"""

from __future__ import annotations

from enum import StrEnum

from probes.errors import ProbeReason
from probes.records import record

__all__ = ["REASONS", "Reason", "ReasonKind", "ReasonSpec", "reason_of", "reasons_table_markdown"]


class Reason(StrEnum):
    # probe errors (probes.errors.ProbeReason)
    PROBE_ERROR = "probe_error"
    DNS_ERROR = "dns_error"
    DNS_TIMEOUT = "dns_timeout"
    DNS_SERVFAIL = "dns_servfail"
    DNS_NXDOMAIN = "dns_nxdomain"
    DNS_REFUSED = "dns_refused"
    DNS_NO_ANSWER = "dns_no_answer"
    DNS_MALFORMED = "dns_malformed"
    DNS_TRANSPORT = "dns_transport"
    HTTP_ERROR = "http_error"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    BAD_RESPONSE = "bad_response"
    SERVER_TIMING_MALFORMED = "server_timing_malformed"
    POP_MISSING = "pop_missing"
    POP_INVALID = "pop_invalid"
    X_CACHE_UNKNOWN = "x_cache_unknown"
    # what an answer carried
    BODY_TOO_LARGE = "body_too_large"
    HEALTH_JSON_INVALID = "health_json_invalid"
    # verdicts
    SLOWER_REGION = "slower_region"
    SERVED_UNHEALTHY = "served_unhealthy"
    EDGE_ORIGIN_REGION = "edge_origin_region"
    CLOSEST_REGION_DOWN = "closest_region_down"
    UNATTRIBUTED = "unattributed"
    UNCONFIGURED_REGION = "unconfigured_region"
    EVIDENCE_CONFLICT = "evidence_conflict"
    NO_HEALTHY_REGION = "no_healthy_region"
    UNKNOWN_POP = "unknown_pop"
    # findings beside a verdict
    SLOW_APP = "slow_app"
    ECS_SCOPE_ZERO = "ecs_scope_zero"
    # the round
    DEADLINE = "deadline"
    NO_SAMPLES = "no_samples"
    INTERNAL_ERROR = "internal_error"
    ROUND_FAILED = "round_failed"
    NOT_PROBED = "not_probed"
    MEASUREMENT_DISTURBED = "measurement_disturbed"
    # AWS calls and the CloudWatch exporter (monitor.aws.clients.AwsError, exporters.cloudwatch)
    AWS_ERROR = "aws_error"
    AWS_CREDENTIALS = "aws_credentials"
    AWS_ACCESS_DENIED = "aws_access_denied"
    AWS_THROTTLED = "aws_throttled"
    AWS_NOT_FOUND = "aws_not_found"
    AWS_INVALID_REQUEST = "aws_invalid_request"
    AWS_TIMEOUT = "aws_timeout"
    AWS_UNREACHABLE = "aws_unreachable"
    AWS_SDK_MISSING = "aws_sdk_missing"
    BUFFER_FULL = "buffer_full"
    REQUEST_FAILED = "request_failed"
    OTHER = "other"


def reason_of(reason: ProbeReason | str) -> Reason:
    """A probe's reason (or a reason read from a document) as a :class:`Reason`; one this version
    does not know (e.g. from a newer regional probe) is ``other``."""
    try:
        return Reason(reason)
    except ValueError:
        return Reason.OTHER


class ReasonKind(StrEnum):
    """Where a reason shows."""

    PROBE = "probe error"
    MISROUTED = "misrouted"
    FAILOVER = "failover"
    UNKNOWN = "unknown"
    FINDING = "finding"
    ROUND = "round"
    AWS = "AWS / CloudWatch export"


@record
class ReasonSpec:
    reason: Reason
    kind: ReasonKind
    meaning: str


_P, _M, _F, _U, _N, _R, _A = (ReasonKind.PROBE, ReasonKind.MISROUTED, ReasonKind.FAILOVER,
                              ReasonKind.UNKNOWN, ReasonKind.FINDING, ReasonKind.ROUND,
                              ReasonKind.AWS)

REASONS: tuple[ReasonSpec, ...] = (
    ReasonSpec(Reason.DNS_TIMEOUT, _P, "no DNS answer within `probe.dns_timeout_s`"),
    ReasonSpec(Reason.DNS_SERVFAIL, _P, "the DNS server answered SERVFAIL"),
    ReasonSpec(Reason.DNS_NXDOMAIN, _P, "the name does not exist (NXDOMAIN)"),
    ReasonSpec(Reason.DNS_REFUSED, _P, "the DNS server refused the query (REFUSED)"),
    ReasonSpec(Reason.DNS_NO_ANSWER, _P, "NOERROR, but no address record for the name"),
    ReasonSpec(Reason.DNS_MALFORMED, _P, "the DNS response could not be parsed"),
    ReasonSpec(Reason.DNS_TRANSPORT, _P, "the DNS query could not be sent or received"),
    ReasonSpec(Reason.DNS_ERROR, _P, "the DNS answer carried another error rcode"),
    ReasonSpec(Reason.ADDRESS_NOT_ALLOWED, _P,
               "a DNS answer pointed at a link-local, loopback, private or other special address: "
               "refused before connecting (allow it with `probe.allow_addresses`)"),
    ReasonSpec(Reason.CONNECT_ERROR, _P, "the TCP connection was refused, reset or unreachable"),
    ReasonSpec(Reason.TLS_ERROR, _P,
               "the TLS handshake or the certificate check (against the origin name) failed"),
    ReasonSpec(Reason.TIMEOUT, _P,
               "no complete HTTP answer within `probe.connect_timeout_s` / "
               "`probe.request_timeout_s`"),
    ReasonSpec(Reason.HTTP_STATUS, _P,
               "a status other than 2xx on the health path or from an edge (redirects are never "
               "followed; the detail says where they pointed)"),
    ReasonSpec(Reason.BAD_RESPONSE, _P, "the HTTP response could not be read (protocol error)"),
    ReasonSpec(Reason.HTTP_ERROR, _P, "the HTTP request failed in another way"),
    ReasonSpec(Reason.PROBE_ERROR, _P, "a measurement failed in a way no other reason covers"),
    ReasonSpec(Reason.SERVER_TIMING_MALFORMED, _P,
               "an edge's `Server-Timing` entry could not be parsed"),
    ReasonSpec(Reason.POP_MISSING, _P, "the edge sent no `x-amz-cf-pop` header"),
    ReasonSpec(Reason.POP_INVALID, _P, "`x-amz-cf-pop` is not a POP code such as FRA56-P1"),
    ReasonSpec(Reason.X_CACHE_UNKNOWN, _P, "the edge's `x-cache` value is not one CloudFront uses"),
    ReasonSpec(Reason.BODY_TOO_LARGE, _P,
               "the response body (decompressed, if compressed) exceeds `probe.body_limit_bytes`: "
               "it was not read further nor parsed"),
    ReasonSpec(Reason.HEALTH_JSON_INVALID, _P,
               "the health body is not a JSON object (not JSON, nested too deep, a number too "
               "long …): the region header alone attributes the answer"),
    ReasonSpec(Reason.SLOWER_REGION, _M,
               "a region slower than the closest healthy one answered, beyond the tolerance"),
    ReasonSpec(Reason.SERVED_UNHEALTHY, _M,
               "a region that fails this vantage point's baseline answered"),
    ReasonSpec(Reason.EDGE_ORIGIN_REGION, _M,
               "the CloudFront edge reached a region other than the one closest to its POP"),
    ReasonSpec(Reason.CLOSEST_REGION_DOWN, _F,
               "the nominally closest region is down and the best healthy one answered"),
    ReasonSpec(Reason.UNATTRIBUTED, _U,
               "no header, health JSON, ALB address or ip-ranges prefix names the region that "
               "answered"),
    ReasonSpec(Reason.UNCONFIGURED_REGION, _U, "the region that answered is not configured"),
    ReasonSpec(Reason.EVIDENCE_CONFLICT, _U,
               "the region header names one region, the address another (or another region's "
               "app sends the same header, so it cannot name the region): fix the header or the "
               "target groups before trusting either"),
    ReasonSpec(Reason.NO_HEALTHY_REGION, _U, "no configured region answered the baseline"),
    ReasonSpec(Reason.UNKNOWN_POP, _U,
               "the POP's airport code is unknown (pin it in `cdn.pop_regions`)"),
    ReasonSpec(Reason.MEASUREMENT_DISTURBED, _U,
               "too few of a region's samples were taken while the event loop (or the lab) ran "
               "on time: its latency, and every verdict resting on it, is not given"),
    ReasonSpec(Reason.SLOW_APP, _N,
               "the serving region is near by network round trip, but its app takes more than "
               "`tolerance.slow_app_ms` longer than the quickest region's (first byte minus the "
               "handshake's round trip): not a misroute; the path's state stays `ok`"),
    ReasonSpec(Reason.ECS_SCOPE_ZERO, _N,
               "the authoritative answer's ECS scope is /0 or missing (RFC 7871): it is not "
               "specific to the client subnet, so nothing is claimed about that subnet "
               "(`ecs_region` null; `dns sweep` and `dns explain` cannot tell)"),
    ReasonSpec(Reason.DEADLINE, _R,
               "not finished before `probe.round_deadline_s` (what was measured is judged)"),
    ReasonSpec(Reason.NO_SAMPLES, _R, "no baseline sample was taken for the region"),
    ReasonSpec(Reason.INTERNAL_ERROR, _R, "a measurement crashed: a bug, see the logs"),
    ReasonSpec(Reason.ROUND_FAILED, _R, "the vantage point's round failed before judging the path"),
    ReasonSpec(Reason.NOT_PROBED, _R, "the path was not measured in the vantage point's round"),
    ReasonSpec(Reason.AWS_CREDENTIALS, _A, "no AWS credentials, or they are expired"),
    ReasonSpec(Reason.AWS_ACCESS_DENIED, _A, "the credentials may not call the AWS action"),
    ReasonSpec(Reason.AWS_THROTTLED, _A, "AWS throttled the call (after botocore's retries)"),
    ReasonSpec(Reason.AWS_NOT_FOUND, _A, "the AWS resource does not exist (function, hosted zone)"),
    ReasonSpec(Reason.AWS_INVALID_REQUEST, _A, "AWS rejected the request's parameters"),
    ReasonSpec(Reason.AWS_TIMEOUT, _A, "the AWS call timed out"),
    ReasonSpec(Reason.AWS_UNREACHABLE, _A, "the AWS endpoint could not be reached"),
    ReasonSpec(Reason.AWS_SDK_MISSING, _A, "boto3 is not installed (install the aws extra)"),
    ReasonSpec(Reason.AWS_ERROR, _A, "another AWS service error"),
    ReasonSpec(Reason.BUFFER_FULL, _A,
               "the CloudWatch exporter's buffer was full: the oldest datapoints were dropped"),
    ReasonSpec(Reason.REQUEST_FAILED, _A,
               "a PutMetricData request failed: its datapoints were dropped"),
    ReasonSpec(Reason.OTHER, _R,
               "a reason this version does not know (e.g. from a newer regional probe)"),
)
"""Every reason, what it means and where it shows, in the order the docs list them."""


def reasons_table_markdown() -> str:
    """The reason table of README.md, docs/runbook.md and docs/metrics.md."""
    lines = ["| reason | shows as | meaning |", "| --- | --- | --- |"]
    lines.extend(f"| `{spec.reason}` | {spec.kind} | {spec.meaning} |" for spec in REASONS)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reasons_table_markdown(), end="")
