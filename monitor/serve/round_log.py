"""What ``serve`` says about every round: one log record per vantage point's round, its fields the
structured (JSON) form of the same line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from monitor.config import DEFAULT_SERVICE
from monitor.core.model import PROBLEM_STATES, VantageRound
from monitor.metrics import VantageSnapshot

__all__ = ["log_round", "round_log_fields", "round_message"]

round_log = logging.getLogger("monitor.rounds")


def round_log_fields(result: VantageRound, entry: VantageSnapshot | None) -> dict[str, Any]:
    """The structured log record of one vantage point's round (one JSON line in json mode)."""
    paths = []
    dual_stack = result.dual_stack
    for path_result in result.paths:
        verdict = path_result.verdict
        stable = entry.routing.get(path_result.path) if entry else None
        paths.append({
            "path": path_result.path.value,
            **({"family": path_result.family.value} if dual_stack else {}),
            "state": verdict.state.value,
            "stable_state": stable.stable.value if stable else None,
            "streak": stable.streak if stable else None,
            "served_region": verdict.served_region,
            "expected_region": verdict.expected_region,
            "penalty_seconds": verdict.penalty_seconds,
            "reason": verdict.reason,
        })
    return {
        "event": "round",
        "vantage": result.vantage,
        "service": result.service,
        "success": result.success,
        "started_at": datetime.fromtimestamp(result.started_at, UTC).isoformat(
            timespec="milliseconds"),
        "duration_seconds": round(result.duration_seconds, 6),
        "paths": paths,
        "regions": {r.region: r.latency_seconds if r.healthy else None
                    for r in result.primary_regions},
        "errors": [{"path": e.path, "reason": e.reason, "message": e.message}
                   for e in result.errors],
        "round": entry.rounds_total if entry else None,
    }


def round_message(result: VantageRound, entry: VantageSnapshot | None) -> str:
    """The same round as one line for people."""
    parts = []
    dual_stack = result.dual_stack
    for path_result in result.paths:
        verdict = path_result.verdict
        family = f" {path_result.family}" if dual_stack else ""
        text = f"{path_result.path}{family} {verdict.state}"
        if verdict.served_region:
            text += f" {verdict.served_region}"
        if verdict.expected_region and verdict.expected_region != verdict.served_region:
            text += f" (expected {verdict.expected_region}"
            text += (f", +{verdict.penalty_seconds * 1000:.1f} ms)"
                     if verdict.penalty_seconds is not None else ")")
        stable = entry.routing.get(path_result.path) if entry else None
        if stable is not None and stable.pending:
            text += f" [stable {stable.stable}, {stable.streak}/{stable.rounds_required}]"
        parts.append(text)
    for error in result.errors:
        if error.path == "round":
            parts.append(f"{error.reason}: {error.message}")
    # not success: a path is unknown or the deadline hit; the parts above say which
    outcome = "finished" if result.success else "incomplete"
    who = result.vantage if result.service == DEFAULT_SERVICE else (
        f"{result.vantage} · {result.service}")
    return (f"{who}: round {outcome} in {result.duration_seconds:.2f}s"
            + (": " + ", ".join(parts) if parts else ""))


def log_round(result: VantageRound, entry: VantageSnapshot | None) -> None:
    # WARNING when the round needs a look (a path misrouted or unknown, the round incomplete)
    needs_a_look = not result.success or any(
        p.verdict.state in PROBLEM_STATES for p in result.paths)
    round_log.log(logging.WARNING if needs_a_look else logging.INFO, round_message(result, entry),
                  extra={"fields": round_log_fields(result, entry)})
