"""Patterns the probes validate against (light: no network stack imported)."""

from __future__ import annotations

import re

__all__ = ["POP_CODE"]

POP_CODE = re.compile(r"^[A-Z]{3}\d{1,3}(-[A-Z0-9]{1,3})?$")
"""A CloudFront POP code such as FRA56-P1 (an IATA airport code, a number, a suffix)."""
