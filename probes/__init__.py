"""Measurement only: each probe returns frozen evidence and never a verdict.

``probes`` never imports ``monitor``.
"""

from __future__ import annotations
