"""Where AWS regions and airports are, and which configured region is nearest to a place.

Used for the nominal closest region of a vantage point (its ``location``) and for the CDN path's
expected region (a POP's first three letters are an IATA airport code).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache
from typing import Any

__all__ = ["REGION_LOCATIONS", "airport_location", "great_circle_km", "nearest_region"]

# (latitude, longitude) of each region's metro area, from AWS's published region locations.
REGION_LOCATIONS: dict[str, tuple[float, float]] = {
    "us-east-1": (38.95, -77.45),  # N. Virginia
    "us-east-2": (39.96, -83.00),  # Ohio
    "us-west-1": (37.35, -121.96),  # N. California
    "us-west-2": (45.84, -119.70),  # Oregon
    "us-gov-east-1": (39.96, -83.00),
    "us-gov-west-1": (45.84, -119.70),
    "ca-central-1": (45.50, -73.57),  # Montreal
    "ca-west-1": (51.05, -114.07),  # Calgary
    "mx-central-1": (20.59, -100.39),  # Querétaro
    "sa-east-1": (-23.55, -46.63),  # São Paulo
    "eu-west-1": (53.35, -6.26),  # Dublin
    "eu-west-2": (51.51, -0.13),  # London
    "eu-west-3": (48.86, 2.35),  # Paris
    "eu-central-1": (50.11, 8.68),  # Frankfurt
    "eu-central-2": (47.37, 8.54),  # Zurich
    "eu-north-1": (59.33, 18.07),  # Stockholm
    "eu-south-1": (45.46, 9.19),  # Milan
    "eu-south-2": (41.65, -0.88),  # Aragón
    "il-central-1": (32.09, 34.78),  # Tel Aviv
    "me-south-1": (26.07, 50.56),  # Bahrain
    "me-central-1": (24.45, 54.38),  # UAE
    "af-south-1": (-33.92, 18.42),  # Cape Town
    "ap-east-1": (22.32, 114.17),  # Hong Kong
    "ap-south-1": (19.08, 72.88),  # Mumbai
    "ap-south-2": (17.39, 78.49),  # Hyderabad
    "ap-northeast-1": (35.68, 139.69),  # Tokyo
    "ap-northeast-2": (37.57, 126.98),  # Seoul
    "ap-northeast-3": (34.69, 135.50),  # Osaka
    "ap-southeast-1": (1.35, 103.82),  # Singapore
    "ap-southeast-2": (-33.87, 151.21),  # Sydney
    "ap-southeast-3": (-6.21, 106.85),  # Jakarta
    "ap-southeast-4": (-37.81, 144.96),  # Melbourne
    "ap-southeast-5": (3.14, 101.69),  # Malaysia
    "ap-southeast-7": (13.75, 100.50),  # Thailand
    "cn-north-1": (39.90, 116.40),  # Beijing
    "cn-northwest-1": (38.47, 106.27),  # Ningxia
}


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


@cache
def _airports() -> dict[str, Any]:
    import airportsdata  # ~0.2 s to load: only when a location is actually looked up

    return dict(airportsdata.load("IATA"))


def airport_location(code: str) -> tuple[float, float] | None:
    """Coordinates of an IATA airport code, or None when unknown."""
    airport = _airports().get(code.upper())
    if airport is None:
        return None
    return float(airport["lat"]), float(airport["lon"])


def nearest_region(location: tuple[float, float], regions: Iterable[str]) -> str | None:
    """The configured region nearest to a place by great-circle distance (None if none is known)."""
    known = [(great_circle_km(location, REGION_LOCATIONS[r]), r)
             for r in regions if r in REGION_LOCATIONS]
    return min(known)[1] if known else None
