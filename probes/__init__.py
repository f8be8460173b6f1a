"""Measurement only: each probe returns frozen evidence and never a verdict.

``probes`` never imports ``monitor``. One function per probe type, listed in :data:`PROBERS`.
"""

from __future__ import annotations

from probes.cdn import probe_cdn
from probes.dns import probe_dns
from probes.http import probe_http

__all__ = ["PROBERS", "probe_cdn", "probe_dns", "probe_http"]

PROBERS = {"dns": probe_dns, "http": probe_http, "cdn": probe_cdn}
