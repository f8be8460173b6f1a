"""Name patterns every layer shares, each defined once. The POP code lives in
:mod:`probes.patterns` (probes validate POPs and never import monitor) and is re-exported here."""

from __future__ import annotations

import re

from probes.patterns import POP_CODE

__all__ = ["POP_CODE", "REGION_NAME"]

REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
"""An AWS region name: eu-west-1, us-gov-west-1, us-isob-east-1, ap-southeast-7 …"""
