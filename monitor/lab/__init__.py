"""The lab: a simulated multi-region world on loopback, speaking the real protocols.

Regions are HTTPS origins behind delay proxies that apply a latency matrix per client address;
an authoritative DNS server gives latency-policy answers per source address or ECS subnet with
health-based failover; faults switch at run time. The world runs in a child process, never on
the caller's event loop. See ``_addresses`` for the address plan.

    with start_lab("misrouted") as lab:
        run a check with lab.config_path; lab.set_faults([...]) to change the world
"""

from __future__ import annotations

from monitor.lab._addresses import (
    CONTROL_ADDRESS,
    DEFAULT_CONTROL_PORT,
    DNS_ADDRESS,
    edge_address,
    edge_address_v6,
    ipv6_addresses,
    region_address,
    region_address_v6,
    vantage_address,
    vantage_address_v6,
)
from monitor.lab._control import LabControlError, control_request, one_fault_errors
from monitor.lab._handle import (
    LabError,
    LabHandle,
    LabStats,
    load_lab_scenario,
    looks_like_routewatch_config,
    start_lab,
)
from monitor.lab._scenario import (
    EdgeSpec,
    Fault,
    FaultKind,
    RegionSpec,
    Scenario,
    ScenarioError,
    VantageSpec,
    builtin_scenarios,
    fault_usage,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "CONTROL_ADDRESS",
    "DEFAULT_CONTROL_PORT",
    "DNS_ADDRESS",
    "EdgeSpec",
    "Fault",
    "FaultKind",
    "LabControlError",
    "LabError",
    "LabHandle",
    "LabStats",
    "RegionSpec",
    "Scenario",
    "ScenarioError",
    "VantageSpec",
    "builtin_scenarios",
    "control_request",
    "edge_address",
    "edge_address_v6",
    "fault_usage",
    "ipv6_addresses",
    "load_lab_scenario",
    "load_scenario",
    "looks_like_routewatch_config",
    "one_fault_errors",
    "parse_scenario",
    "region_address",
    "region_address_v6",
    "start_lab",
    "vantage_address",
    "vantage_address_v6",
]
