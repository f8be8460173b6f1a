"""The routewatch configuration for a running lab world (what `routewatch check` reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.lab._addresses import (
    LAB_IPV6_NETWORK,
    region_address,
    region_address_v6,
    vantage_address,
    vantage_address_v6,
)
from monitor.lab._scenario import Scenario

__all__ = ["lab_config", "write_config"]


def lab_config(scenario: Scenario, *, https_port: int, dns: str, ca_file: Path) -> dict[str, Any]:
    """A config document for the world: its names, port, CA, addresses and resolvers."""
    service = scenario.service
    vantage_points: dict[str, Any] = {}
    subnets = scenario.client_subnets()
    for j, (name, vantage) in enumerate(scenario.vantage_points.items(), start=1):
        entry: dict[str, Any] = {
            "resolver": dns,  # the lab's DNS answers a vantage point's own address like ECS
            "client_subnet": subnets[name],
            "source_address": vantage_address(j),
            **({"source_address_v6": vantage_address_v6(j)} if scenario.ipv6 else {}),
        }
        if vantage.location is not None:
            entry["location"] = vantage.location
        if vantage.region is not None:
            entry["region"] = vantage.region
        vantage_points[name] = entry
    shared = {"port": https_port, "health_path": service.health_path,
              "region_header": service.region_header, "ca_file": str(ca_file)}
    services: dict[str, Any] = {"service": {
        "origin_name": service.origin_name,
        # a world without edges has no CDN: leave the name out so no cdn path is probed
        **({"cdn_name": service.cdn_name} if scenario.edges else {}),
        **shared,
    }}
    if scenario.services is not None:  # every region's origin serves every name: no CDN path
        services = {"services": {name: {"origin_name": own.origin_name, **shared}
                                 for name, own in scenario.services.items()}}
    document: dict[str, Any] = {
        **services,
        "regions": {name: {"addresses": [region_address(i),
                                         *([region_address_v6(i)] if scenario.ipv6 else [])]}
                    for i, name in enumerate(scenario.regions, start=1)},
        "vantage_points": vantage_points,
        "authoritative": [dns],
    }
    # every address of the world is on loopback, which a probe refuses unless allowed; the delay
    # proxy accepts TCP locally (connect reads ~0), so the world pins the estimate it is judged
    # by: `auto` detects the proxy, but not in a row whose every region is a few ms away
    document["probe"] = {"allow_addresses": ["127.0.0.0/8",
                                             *([LAB_IPV6_NETWORK] if scenario.ipv6 else [])],
                         "estimator": "first_byte"}
    if scenario.probe is not None:
        document["probe"].update(scenario.probe.model_dump(mode="json", exclude_unset=True))
    if scenario.tolerance is not None:
        document["tolerance"] = scenario.tolerance.model_dump(mode="json", exclude_unset=True)
    return document


def write_config(path: Path, document: dict[str, Any], scenario: Scenario) -> None:
    """Write the config atomically, with a header saying where it comes from."""
    header = (f"# routewatch config written by `routewatch lab` for scenario "
              f"{scenario.name or 'unnamed'}; valid while that lab world runs.\n")
    text = header + yaml.safe_dump(document, sort_keys=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
