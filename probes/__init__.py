"""Measurement only: each probe returns frozen evidence and never a verdict.

``probes`` never imports ``monitor``. One module per probe type (``dns``, ``http``, ``cdn``), one
function each; the paths that use them are listed in :data:`monitor.core.paths.PATHS`.
"""

from __future__ import annotations

from probes.cdn import probe_cdn
from probes.dns import probe_dns
from probes.http import probe_http

__all__ = ["probe_cdn", "probe_dns", "probe_http"]
