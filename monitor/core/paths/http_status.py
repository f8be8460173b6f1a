"""What an HTTP answer's status says, for every path that requests the health path: only 2xx is
an answer; anything else is ``http_status``, and a redirect (never followed) says where it
pointed."""

from __future__ import annotations

from monitor.domain.text import printable
from probes.http import HttpEvidence

__all__ = ["LOCATION_LIMIT", "status_ok", "status_problem"]

LOCATION_LIMIT = 120
"""A redirect's Location is quoted up to this many characters (escaped: it came from the peer)."""


def status_ok(status: int | None) -> bool:
    """A 2xx status (None: no response at all, not ok either)."""
    return status is not None and 200 <= status < 300


def status_problem(evidence: HttpEvidence) -> str | None:
    """``HTTP 302, redirect to '…' (not followed)`` — None when the status is 2xx."""
    if status_ok(evidence.status):
        return None
    text = f"HTTP {evidence.status}"
    if evidence.status is not None and 300 <= evidence.status < 400:
        location = evidence.header("location")
        text += (f", redirect to '{printable(location, LOCATION_LIMIT)}' (not followed)"
                 if location else ", a redirect without Location")
    return text
