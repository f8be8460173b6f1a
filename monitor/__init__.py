"""routewatch: is every client served by the region that is actually closest to it?"""

from __future__ import annotations

__version__ = "0.1.0"
