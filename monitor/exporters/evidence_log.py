"""Evidence a person can read after the fact: one flat record per path per round.

A scheduled Lambda round returns its document to nobody, and metrics say *that* a path was
misrouted, not *why*. So every round writes, per path, the verdict and the evidence it rests on::

    {"event": "routewatch_path", "evidence_version": 1, "vantage": "eu-west-1", "service": "api",
     "round_started_at": "2026-11-27T03:11:02.120+00:00", "path": "origin", "state": "misrouted",
     "served_region": "us-east-1", "expected_region": "eu-west-1", "penalty_seconds": 0.0634,
     "reason": "slower_region", "detail": "us-east-1 answered, eu-west-1 is 63.4 ms closer",
     "address": "203.0.113.7", "pop": null, "attribution": "header"}

One formatter, two writers: the Lambda handler prints :func:`evidence_line` on stdout (CloudWatch
Logs stores each line as an event and Logs Insights discovers its fields; the saved query
``routewatch/<stack>/paths-not-ok`` of ``deploy/template.yaml`` reads them), and ``serve`` logs
:func:`log_round_evidence` records, which ``--log-format json`` writes as the same keys on one JSON
line. :func:`parse_evidence` reads a line (or a parsed log event) back into the verdict.

Fields are flat (Logs Insights filters on top-level keys) and taken from the ``--json`` document's
path entry (:func:`monitor.core.report.path_document`), so they mean what they mean there
(``penalty_seconds`` in seconds, ``pop`` the cdn path's edge).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from monitor.config import DEFAULT_SERVICE, Estimator
from monitor.core.model import (
    PROBLEM_STATES,
    IpFamily,
    Path,
    PathResult,
    RoutingState,
    RoutingVerdict,
    VantageRound,
)
from monitor.core.report import path_document
from monitor.domain.reasons import reason_of
from probes.errors import RoutewatchError
from probes.records import record

__all__ = [
    "EVENT",
    "EVIDENCE_VERSION",
    "EvidenceError",
    "PathEvidence",
    "evidence_line",
    "evidence_message",
    "log_round_evidence",
    "parse_evidence",
    "path_evidence",
    "round_evidence",
    "write_round_evidence",
]

EVENT = "routewatch_path"
"""The ``event`` of every record: what a query filters on."""
EVIDENCE_VERSION = 1

evidence_log = logging.getLogger("monitor.evidence")


class EvidenceError(RoutewatchError, ValueError):
    """A line that is not an evidence record of this version; the message says what is wrong."""


@record
class PathEvidence:
    """One path's verdict in one round, with where it was measured from and what answered (a
    record read back by :func:`parse_evidence`)."""

    vantage: str
    path: Path
    round_started_at: float
    verdict: RoutingVerdict
    address: str | None
    pop: str | None
    attribution: str | None
    family: IpFamily = IpFamily.IPV4
    service: str = DEFAULT_SERVICE



_FROM_PATH_DOCUMENT = ("path", "state", "served_region", "expected_region", "penalty_seconds",
                       "reason", "detail", "estimator", "address")
"""The record's keys taken as they are from the ``--json`` document's path entry."""


def path_evidence(vantage: VantageRound, result: PathResult) -> dict[str, Any]:
    """The flat record of one path of a vantage point's round (JSON-ready, in reading order),
    built from the same path entry as the ``--json`` document."""
    document = path_document(result)
    attribution = document.get("attribution")
    pop = document.get("pop")
    return {
        "event": EVENT,
        "evidence_version": EVIDENCE_VERSION,
        "vantage": vantage.vantage,
        "service": vantage.service,
        "round_started_at": datetime.fromtimestamp(vantage.started_at, UTC).isoformat(
            timespec="milliseconds"),
        **{key: document.get(key) for key in _FROM_PATH_DOCUMENT},
        "pop": pop if isinstance(pop, str) else None,
        "attribution": attribution.get("source") if isinstance(attribution, Mapping) else None,
        # like blackbox_exporter's probe_ip_protocol; only where the round has IPv6 results
        **({"family": result.family.value} if vantage.dual_stack else {}),
    }


def evidence_message(record: Mapping[str, Any]) -> str:
    """A record in one readable line (``serve``'s text logs)."""
    served, expected = record.get("served_region"), record.get("expected_region")
    penalty = record.get("penalty_seconds")
    service = record.get("service")
    who = record.get("vantage") if service in (None, DEFAULT_SERVICE) else (
        f"{record.get('vantage')} · {service}")
    family = f" {record['family']}" if record.get("family") else ""
    parts = [f"{who} {record.get('path')}{family} {record.get('state')}",
             f": served by {served}" if served else "",
             f", expected {expected}" if expected and expected != served else "",
             f" (+{penalty * 1000:.1f} ms)" if isinstance(penalty, float) and penalty else "",
             f"; {record['reason']}" if record.get("reason") else "",
             f": {record['detail']}" if record.get("detail") else ""]
    where = ", ".join(f"{key} {record[key]}" for key in ("address", "pop") if record.get(key))
    return "".join(parts) + (f" [{where}]" if where else "")


def round_evidence(vantage: VantageRound) -> Iterator[dict[str, Any]]:
    """One record per judged path, in the round's order."""
    for result in vantage.paths:
        yield path_evidence(vantage, result)


def evidence_line(record: Mapping[str, Any]) -> str:
    """One JSON line (no newline): what the Lambda handler prints."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def write_round_evidence(vantage: VantageRound, out: TextIO | None = None) -> int:
    """Print one JSON line per path (the Lambda handler; ``out`` defaults to stdout, read at
    call time); returns how many."""
    stream = out if out is not None else sys.stdout
    lines = [evidence_line(record) for record in round_evidence(vantage)]
    for line in lines:
        stream.write(line + "\n")
    stream.flush()
    return len(lines)


def log_round_evidence(vantage: VantageRound, logger: logging.Logger = evidence_log) -> None:
    """Log one record per path (``serve``); the JSON log formatter writes its ``fields``."""
    for entry in round_evidence(vantage):
        logger.log(_level(entry), evidence_message(entry), extra={"fields": entry})


def _level(record: Mapping[str, Any]) -> int:
    """WARNING for a path that needs a person (misrouted, unknown), INFO otherwise, so a log
    pipeline that alerts on levels sees what the alarms see."""
    return logging.WARNING if record.get("state") in PROBLEM_STATES else logging.INFO


# --- reading back --------------------------------------------------------------------------------


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise EvidenceError(f"{key}: expected a string, not {value!r}")
    return value


def _required(record: Mapping[str, Any], key: str) -> str:
    value = _text(record, key)
    if value is None:
        raise EvidenceError(f"{key} is missing")
    return value


def parse_evidence(line: str | Mapping[str, Any]) -> PathEvidence:
    """A record (a JSON line, or a log event already parsed, e.g. ``serve``'s JSON log line with
    its extra keys) back into the path's evidence and verdict."""
    if isinstance(line, str):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise EvidenceError(f"not JSON: {exc}") from None
    else:
        record = line
    if not isinstance(record, Mapping) or record.get("event") != EVENT:
        raise EvidenceError(f"not a {EVENT} record")
    if record.get("evidence_version") != EVIDENCE_VERSION:
        raise EvidenceError(f"evidence_version {record.get('evidence_version')!r}: "
                            f"this routewatch reads version {EVIDENCE_VERSION}")
    try:
        path = Path(_required(record, "path"))
        state = RoutingState(_required(record, "state"))
        started = datetime.fromisoformat(_required(record, "round_started_at"))
        family = IpFamily(_text(record, "family") or IpFamily.IPV4.value)
    except ValueError as exc:
        raise EvidenceError(str(exc)) from None
    penalty = record.get("penalty_seconds")
    if penalty is not None and (isinstance(penalty, bool) or not isinstance(penalty, int | float)):
        raise EvidenceError(f"penalty_seconds: expected a number, not {penalty!r}")
    reason = _text(record, "reason")
    estimator = _text(record, "estimator")
    verdict = RoutingVerdict(state, _text(record, "served_region"),
                             _text(record, "expected_region"),
                             None if penalty is None else float(penalty),
                             None if reason is None else reason_of(reason),
                             _text(record, "detail") or "",
                             Estimator(estimator) if estimator in set(Estimator) else None)
    return PathEvidence(_required(record, "vantage"), path,
                        started.timestamp(), verdict, _text(record, "address"),
                        _text(record, "pop"), _text(record, "attribution"), family,
                        _text(record, "service") or DEFAULT_SERVICE)
