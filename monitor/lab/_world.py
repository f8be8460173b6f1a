"""The lab's world, run in its own process: origins, delay proxies, DNS and the control endpoint,
all on one asyncio loop that is never the probe's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import gc
import ipaddress
import os
import selectors
import signal
import socket
import ssl
import textwrap
import time
import urllib.parse
from dataclasses import field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from monitor.config import IpFamily
from monitor.config.loader import ConfigProblem
from monitor.lab._addresses import (
    CONTROL_ADDRESS,
    DNS_ADDRESS,
    edge_address,
    edge_address_v6,
    edge_origin_address,
    ipv6_addresses,
    origin_address,
    region_address,
    region_address_v6,
    vantage_address,
    vantage_address_v6,
)
from monitor.lab._control import ControlServer
from monitor.lab._dns import DnsDecision, LabDns, ZoneData
from monitor.lab._edge import EdgeServer, EdgeSettings
from monitor.lab._origin import OriginBehaviour, OriginServer
from monitor.lab._proxy import (
    LATENESS_BUCKET_S,
    ConnectionPolicy,
    DelayProxy,
    LatenessLog,
    WakeEstimate,
    listen_shared,
    tight_timer_slack,
)
from monitor.lab._scenario import Fault, FaultKind, Scenario, ScenarioError
from monitor.lab.netns._router import raise_priority  # the world runs as the router does
from probes.records import record

__all__ = ["FaultState", "World", "run_world"]

_DNS_FAULTS = (FaultKind.DNS_SERVFAIL, FaultKind.DNS_TIMEOUT, FaultKind.DNS_GARBAGE,
               FaultKind.DNS_TRUNCATE)
_DEFAULT_REMOTE_READ_MS = 75.0
CDN_ALIAS = "d111111abcdef8.cloudfront.net"  # the lab distribution's own name
_PARENT_POLL_S = 0.5
_LATENESS_WINDOW_S = 60.0
# relayed connections open at once, world-wide: each holds up to three descriptors (client
# side, upstream side, origin side; one where the origin runs inline) and select() cannot watch
# descriptors above 1023
MAX_OPEN_CONNECTIONS = 250


@record
class FaultState:
    """The active faults, indexed the way the servers ask about them."""

    faults: tuple[Fault, ...] = ()
    down: frozenset[str] = frozenset()
    blackholed: frozenset[str] = frozenset()
    dns_unhealthy: frozenset[str] = frozenset()
    misroute: dict[tuple[str, IpFamily | None], str] = field(default_factory=dict)
    # (service, vantage point, family): a misroute of one of the world's services alone
    service_misroute: dict[tuple[str, str, IpFamily | None], str] = field(default_factory=dict)
    http_status: dict[str, int] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)
    dynamodb: dict[str, tuple[str, float]] = field(default_factory=dict)
    edges_down: frozenset[str] = frozenset()
    stale_edges: dict[str, str | None] = field(default_factory=dict)
    bad_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, faults: list[Fault]) -> FaultState:
        down, blackholed, unhealthy, edges_down = set(), set(), set(), set()
        misroute: dict[tuple[str, IpFamily | None], str] = {}
        service_misroute: dict[tuple[str, str, IpFamily | None], str] = {}
        http_status: dict[str, int] = {}
        claims: dict[str, str] = {}
        dynamodb: dict[str, tuple[str, float]] = {}
        stale: dict[str, str | None] = {}
        bad_headers: dict[str, str] = {}
        for fault in faults:
            kind, region = fault.kind, fault.region or ""
            if kind in (FaultKind.REGION_DOWN, FaultKind.BLACKHOLE, FaultKind.HTTP_5XX):
                if not fault.dns_healthy:
                    unhealthy.add(region)
                if kind == FaultKind.REGION_DOWN:
                    down.add(region)
                elif kind == FaultKind.BLACKHOLE:
                    blackholed.add(region)
                else:
                    http_status[region] = fault.status or 503
            elif kind == FaultKind.MISROUTE and fault.service is not None:
                service_misroute[(fault.service, fault.vantage or "", fault.family)] = \
                    fault.answer or ""
            elif kind == FaultKind.MISROUTE:
                misroute[(fault.vantage or "", fault.family)] = fault.answer or ""
            elif kind == FaultKind.HEADER_MISMATCH:
                claims[region] = fault.claims or region
            elif kind == FaultKind.DYNAMODB_REMOTE:
                read_ms = _DEFAULT_REMOTE_READ_MS if fault.read_ms is None else fault.read_ms
                dynamodb[region] = (fault.dynamodb_region or region, read_ms)
            elif kind == FaultKind.EDGE_DOWN:
                edges_down.add(fault.edge or "")
            elif kind == FaultKind.EDGE_STALE_ORIGIN:
                stale[fault.edge or ""] = fault.answer
            elif kind == FaultKind.EDGE_BAD_HEADERS:
                bad_headers[fault.edge or ""] = str(fault.headers)
        return cls(tuple(faults), frozenset(down), frozenset(blackholed), frozenset(unhealthy),
                   misroute, service_misroute, http_status, claims, dynamodb,
                   frozenset(edges_down), stale, bad_headers)

    def extra_ms(self, region: str, client: str | None,
                 family: IpFamily = IpFamily.IPV4) -> float:
        """Extra round trip from ``slow`` faults for this client to this region."""
        return sum(f.extra_ms or 0.0 for f in self.faults
                   if f.kind == FaultKind.SLOW and f.region == region
                   and (f.vantage is None or f.vantage == client)
                   and f.family in (None, family))

    def misrouted(self, client: str, family: IpFamily, service: str | None = None) -> str | None:
        """The region a ``misroute`` fault answers for this client in this family (for the
        origin name of ``service``, one of the world's services), if any."""
        if service is not None:
            own = (self.service_misroute.get((service, client, family))
                   or self.service_misroute.get((service, client, None)))
            if own:
                return own
        return self.misroute.get((client, family)) or self.misroute.get((client, None))

    def dns_fault(self, client: str | None) -> str | None:
        for fault in self.faults:
            if fault.kind in _DNS_FAULTS and (fault.vantage is None or fault.vantage == client):
                return str(fault.kind)
        return None


class World:
    """Every server of one scenario, on the running loop."""

    def _header_fault(self, edge: str) -> str | None:
        return self.state.bad_headers.get(edge)

    def __init__(self, scenario: Scenario, *, ca_path: Path, control_port: int = 0) -> None:
        self.scenario = scenario
        self.ca_path = ca_path
        self._control_port = control_port
        self.regions = list(scenario.regions)
        self.region_index = {name: i for i, name in enumerate(self.regions, start=1)}
        self.latency: dict[str, dict[str, float]] = {}
        self.latency_v6: dict[str, dict[str, float]] = {}
        self.clients: dict[str, str] = {}  # source address → vantage point or edge
        for j, (name, vantage) in enumerate(scenario.vantage_points.items(), start=1):
            self.clients[vantage_address(j)] = name
            self.latency[name] = vantage.latency_ms
            if scenario.ipv6:
                self.clients[vantage_address_v6(j)] = name
                self.latency_v6[name] = scenario.latency(name, IpFamily.IPV6)
        for k, (name, edge) in enumerate(scenario.edges.items(), start=1):
            self.clients[edge_address(k)] = name
            self.latency[name] = edge.latency_ms
        self.subnets = [(ipaddress.ip_network(subnet), name)
                        for name, subnet in scenario.client_subnets().items()]
        self.state = FaultState()
        self.https_port = 0
        self.origins: dict[str, OriginServer] = {}
        # each region's and edge's listeners: its IPv4 one, and in a dual-stack world its IPv6
        self.region_proxies: dict[str, list[DelayProxy]] = {}
        self.edge_index = {name: k for k, name in enumerate(scenario.edges, start=1)}
        self.edges: dict[str, EdgeServer] = {}
        self.edge_proxies: dict[str, list[DelayProxy]] = {}
        self._all_proxies: list[DelayProxy] = []
        self.origin_names = scenario.origin_names()  # origin name → its service
        self._stale_pins: dict[str, str | None] = {}  # edge → origin address it keeps using
        self._stale_faults: dict[str, str | None] = {}  # edge → the answer its pin came from
        self.dns: LabDns | None = None
        self.control: ControlServer | None = None
        self._lock = asyncio.Lock()
        self.lateness = LatenessLog()
        self.wake = WakeEstimate()
        self.scheduling = "normal"  # how the world's process is scheduled (raise_priority)

    # --- start and stop ------------------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if self.scenario.ipv6:
            _check_ipv6_addresses(len(self.regions), len(self.scenario.vantage_points),
                                  len(self.scenario.edges))
        service = self.scenario.service
        authority = self._authority()
        origin_names = tuple(self.origin_names)
        server_tls = self._server_tls(authority, (*origin_names, service.cdn_name))
        for name in self.regions:
            spec = self.scenario.regions[name]
            region_tls = server_tls
            if spec.tls_max_version != "1.3" or spec.cert_valid_days is not None:
                region_tls = self._server_tls(authority, origin_names,
                                              spec.tls_max_version, spec.cert_valid_days)
            origin = OriginServer(
                name, health_path=service.health_path, region_header=service.region_header,
                ssl_context=region_tls, behaviour=functools.partial(self.origin_behaviour, name))
            index = self.region_index[name]
            port = await origin.start(origin_address(index))
            self.origins[name] = origin
            # the origin runs inside its proxy (inline): a sample costs one connection, not
            # two; its own listener stays up for anything that connects to it directly
            self.region_proxies[name] = [
                DelayProxy(loop, address, origin_address(index), port,
                           functools.partial(self.region_policy, name, family),
                           admit=self.admit_connection, lateness=self.lateness, wake=self.wake,
                           inline=origin.inline)
                for address, family in self._listen_on(region_address(index),
                                                       region_address_v6(index))]
        self.dns = LabDns(DNS_ADDRESS, self._zone_data(), self.dns_decision)
        await self.dns.start()
        origin_tls = ssl.create_default_context(cafile=str(self.ca_path))
        for name, k in self.edge_index.items():
            edge = EdgeServer(
                EdgeSettings(name, self.scenario.edges[name].pop, edge_address(k),
                             service.origin_name, 0, DNS_ADDRESS, self.dns.port),
                server_tls=server_tls, origin_tls=origin_tls,
                pinned_address=functools.partial(self._stale_pins.get, name),
                header_fault=functools.partial(self._header_fault, name))
            port = await edge.start(edge_origin_address(k))
            self.edges[name] = edge
            self.edge_proxies[name] = [
                DelayProxy(loop, address, edge_origin_address(k), port,
                           functools.partial(self.edge_policy, name), admit=self.admit_connection,
                           lateness=self.lateness, wake=self.wake)
                for address, _ in self._listen_on(edge_address(k), edge_address_v6(k))]
        self._all_proxies = [proxy for proxies in (*self.region_proxies.values(),
                                                   *self.edge_proxies.values())
                             for proxy in proxies]
        self.https_port = await listen_shared(self._all_proxies)
        for edge in self.edges.values():
            edge.settings = dataclasses.replace(edge.settings, origin_port=self.https_port)
        self.control = ControlServer(CONTROL_ADDRESS, self.control_request)
        await self.control.start(self._control_port)
        await self.apply_faults(list(self.scenario.faults))
        return self.info()

    def info(self) -> dict[str, Any]:
        if self.dns is None or self.control is None:
            raise RuntimeError("the lab world is not started")
        return {
            "pid": os.getpid(),
            "scenario": self.scenario.name,
            "https_port": self.https_port,
            "dns": f"{DNS_ADDRESS}:{self.dns.port}",
            "control": f"{CONTROL_ADDRESS}:{self.control.port}",
            "regions": {n: region_address(i) for n, i in self.region_index.items()},
            **({"regions_v6": {n: region_address_v6(i) for n, i in self.region_index.items()}}
               if self.scenario.ipv6 else {}),
            # the IPv4 addresses (a dual-stack world's clients also hold the IPv6 ones)
            "vantage_points": {n: vantage_address(j)
                               for j, n in enumerate(self.scenario.vantage_points, start=1)},
            "edges": {n: edge_address(k) for n, k in self.edge_index.items()},
            "pops": {n: self.scenario.edges[n].pop for n in self.scenario.edges},
            "open_connections": self.open_connections(),
        }

    def stats(self) -> dict[str, Any]:
        """The world's CPU time so far and its delivery-lateness histogram (cumulative)."""
        return {"cpu_seconds": time.process_time(), "bucket_seconds": LATENESS_BUCKET_S,
                "lateness_histogram": list(self.lateness.histogram),
                "scheduling": self.scheduling}

    def _listen_on(self, address: str, address_v6: str) -> list[tuple[str, IpFamily]]:
        """Where one region's (or edge's) proxies listen: its IPv4 address, and its IPv6 one in
        a dual-stack world."""
        return [(address, IpFamily.IPV4),
                *([(address_v6, IpFamily.IPV6)] if self.scenario.ipv6 else [])]

    def open_connections(self) -> int:
        return sum(len(p.relays) + len(p.sinks) for p in self._all_proxies)

    def close(self) -> None:
        for proxy in self._all_proxies:
            proxy.close_listener()
        for origin in self.origins.values():
            origin.close()
        for edge in self.edges.values():
            edge.close()
        if self.dns is not None:
            self.dns.close()
        if self.control is not None:
            self.control.close()

    def _authority(self) -> Any:
        """The lab's CA (trustme), its certificate written where the config points."""
        import trustme  # local: only the world's process needs the CA machinery

        authority = trustme.CA(organization_name="routewatch lab")
        tmp = self.ca_path.with_name(self.ca_path.name + ".tmp")
        authority.cert_pem.write_to_path(str(tmp))
        tmp.replace(self.ca_path)
        return authority

    @staticmethod
    def _server_tls(authority: Any, names: tuple[str, ...], max_version: str = "1.3",
                    valid_days: float | None = None) -> ssl.SSLContext:
        """A server context with a leaf for ``names`` (expiring ``valid_days`` from now, when
        given) that accepts TLS up to ``max_version``."""
        not_after = None
        if valid_days is not None:
            not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=valid_days)
        leaf = authority.issue_cert(*names, not_after=not_after)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if max_version == "1.2":
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        leaf.configure_cert(context)
        return context

    def _zone_data(self) -> ZoneData:
        service = self.scenario.service
        apexes = {n.split(".", 1)[1] for n in (*self.origin_names, service.cdn_name)}
        if self.scenario.edges:
            apexes.add(CDN_ALIAS.split(".", 1)[1])
        origin_apex = service.origin_name.split(".", 1)[1]
        strings = [f"routewatch lab scenario {self.scenario.name or 'unnamed'}"]
        strings += textwrap.wrap(self.scenario.description, 200)
        return ZoneData(tuple(sorted(apexes)), {origin_apex: tuple(strings)}, DNS_ADDRESS)

    # --- what each server asks ----------------------------------------------------------------

    def admit_connection(self) -> bool:
        return self.open_connections() < MAX_OPEN_CONNECTIONS

    def region_policy(self, region: str, family: IpFamily,
                      client_address: str) -> ConnectionPolicy:
        """The delay for a client of ``region``'s listener of ``family``."""
        if region in self.state.blackholed:
            return ConnectionPolicy(0.0, blackhole=True)
        client = self.clients.get(client_address)
        if client is None:
            return ConnectionPolicy(0.0)  # an unknown client gets no injected delay
        table = self.latency_v6 if family is IpFamily.IPV6 else self.latency
        rtt_ms = table[client][region] + self.state.extra_ms(region, client, family)
        return ConnectionPolicy(rtt_ms / 2000.0)

    def edge_policy(self, edge: str, client_address: str) -> ConnectionPolicy:
        client = self.clients.get(client_address)
        rtt_ms = self.scenario.edges[edge].vantage_latency_ms.get(client or "", 0.0)
        return ConnectionPolicy(rtt_ms / 2000.0)

    def origin_behaviour(self, region: str) -> OriginBehaviour:
        spec = self.scenario.regions[region]
        dynamodb_region, read_ms = self.state.dynamodb.get(region, (region, spec.dynamodb_read_ms))
        return OriginBehaviour(
            claimed_region=self.state.claims.get(region, region),
            dynamodb_region=dynamodb_region,
            dynamodb_read_ms=read_ms,
            processing_ms=spec.processing_ms,
            error_status=self.state.http_status.get(region),
        )

    def client_of(self, source: str, ecs_address: str | None) -> tuple[str | None, int]:
        """The vantage point (or edge) a query is for, and the ECS scope to echo."""
        if ecs_address is not None:
            try:
                address = ipaddress.ip_address(ecs_address)
            except ValueError:
                address = None
            for network, name in self.subnets:
                if address is not None and address in network:
                    return name, network.prefixlen
        return self.clients.get(source), 0

    def dns_regions(self, client: str | None, family: IpFamily = IpFamily.IPV4,
                    service: str | None = None) -> list[str]:
        """The latency policy: the healthy region nearest the client (over ``family``); all
        when none is healthy (``service``: whose origin name was asked, for a misroute of that
        service alone)."""
        healthy = [r for r in self.regions if r not in self.state.dns_unhealthy]
        if not healthy:
            return list(self.regions)  # Route 53 answers every record when all checks fail
        misrouted = self.state.misrouted(client or "", family, service)
        if misrouted in healthy:
            return [misrouted]
        if client is None:
            return healthy[:1]
        table = self.latency_v6 if family is IpFamily.IPV6 and client in self.latency_v6 \
            else self.latency
        return [min(healthy, key=lambda r: table[client][r])]

    def dns_edge(self, client: str | None) -> str | None:
        """The edge the CDN name sends a client to: its nearest (an edge asking: itself)."""
        if not self.edge_index:
            return None
        if client in self.edge_index:
            return client
        return (self.scenario.nearest_edge(client) if client else None) or next(
            iter(self.edge_index))

    def dns_decision(self, qname: str, source: str, ecs_address: str | None) -> DnsDecision | None:
        service = self.scenario.service
        alias = CDN_ALIAS if self.edge_index else None
        origins = self.origin_names
        if qname not in origins and qname not in (service.cdn_name, alias):
            return None
        client, scope = self.client_of(source, ecs_address)
        fault = self.state.dns_fault(client)
        if qname in origins:
            addresses = tuple(region_address(self.region_index[r])
                              for r in self.dns_regions(client, service=origins[qname]))
            addresses_v6 = tuple(region_address_v6(self.region_index[r])
                                 for r in self.dns_regions(client, IpFamily.IPV6,
                                                           origins[qname])
                                 ) if self.scenario.ipv6 else ()
            return DnsDecision(addresses, fault=fault, ecs_scope=scope,
                               addresses_v6=addresses_v6)
        edge = self.dns_edge(client)
        if edge is None:
            return DnsDecision((), fault=fault, ecs_scope=scope)  # no edges: NODATA
        # like a CloudFront distribution: the CDN name is an alias of the distribution's name
        k = self.edge_index[edge]
        return DnsDecision((edge_address(k),), fault=fault, ecs_scope=scope,
                           cname=alias if qname == service.cdn_name else None,
                           addresses_v6=(edge_address_v6(k),) if self.scenario.ipv6 else ())

    # --- run-time control ----------------------------------------------------------------------

    async def apply_faults(self, faults: list[Fault]) -> None:
        """Make ``faults`` the active set: open or close listeners to match."""
        async with self._lock:
            self.state = FaultState.build(faults)
            for proxies, down in ((self.region_proxies, self.state.down),
                                  (self.edge_proxies, self.state.edges_down)):
                for name, listeners in proxies.items():
                    for proxy in listeners:
                        if name in down:
                            proxy.close_listener()
                        elif not proxy.listening:
                            await proxy.listen(self.https_port)
            for name, edge in self.edges.items():
                if name not in self.state.stale_edges:
                    self._stale_pins.pop(name, None)
                    self._stale_faults.pop(name, None)
                elif self._stale_faults.get(name, "") != self.state.stale_edges[name]:
                    # a new (or changed) stale fault pins the edge again; an unchanged one keeps
                    self._stale_pins[name] = None
                    self._stale_pins[name] = await self._stale_address(
                        edge, self.state.stale_edges[name])
                    self._stale_faults[name] = self.state.stale_edges[name]

    async def _stale_address(self, edge: EdgeServer, answer: str | None) -> str | None:
        """The origin address a stale edge keeps: the given region, else its last answer."""
        if answer is not None:
            return region_address(self.region_index[answer])
        if edge.last_address is None:
            with contextlib.suppress(Exception):
                await edge.resolve()
        return edge.last_address

    async def control_request(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        path, _, query = target.partition("?")
        if path == "/world" and method == "GET":
            return 200, self.info()
        if path == "/lateness" and method == "GET":  # the last minute of the lab's lateness
            after = urllib.parse.parse_qs(query).get("after", [""])[0]
            late = (self.lateness.after(int(after)) if after.isdigit()  # recorded after a cursor
                    else self.lateness.since(time.monotonic() - _LATENESS_WINDOW_S))
            return 200, {"late": late, "next": self.lateness.recorded}
        if path == "/stats" and method == "GET":  # what the lab costs, and how late it delivers
            return 200, self.stats()
        if path != "/faults":
            return 404, {"errors": [f"no such resource {path}"]}
        current = [f.as_dict() for f in self.state.faults]
        if method == "GET":
            return 200, {"faults": current}
        if method == "DELETE":
            wanted: list[Any] = []
        elif method == "PUT" and isinstance(body, list):
            wanted = body
        elif method == "POST" and isinstance(body, (list, dict)):
            wanted = current + (body if isinstance(body, list) else [body])
        else:
            return 400, {"errors": [f"{method} /faults needs a JSON list (PUT) or a fault "
                                    f"or list (POST)"]}
        try:
            faults = self.scenario.check_faults(wanted)
        except ScenarioError as exc:
            return 400, {"errors": [str(p) for p in exc.problems]}
        try:
            await self.apply_faults(faults)
        except OSError as exc:
            return 500, {"errors": [f"cannot apply the faults: {exc}"]}
        return 200, {"faults": [f.as_dict() for f in self.state.faults]}


def _check_ipv6_addresses(regions: int, vantage_points: int, edges: int) -> None:
    """A dual-stack world binds its IPv6 addresses: say which are missing, and where they go."""
    missing = []
    for address in ipv6_addresses(regions, vantage_points, edges):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((address, 0))
            except OSError:
                missing.append(address)
    if missing:
        raise ScenarioError("lab world", [ConfigProblem("ipv6", (
            f"this dual-stack world needs {', '.join(missing)} on lo: run it in a network "
            f"namespace of its own with those addresses added (ip -6 addr add ADDRESS/128 "
            f"dev lo), never on the host"))])


def run_world(conn: Connection, scenario_doc: dict[str, Any], ca_path: str,
              control_port: int, parent_pid: int) -> None:
    """The world process: start every server, report to the parent, run until told to stop,
    the pipe closes or the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    tight_timer_slack()  # the proxies' timers are the world's injected delays
    # ahead of the processes it serves, as a network and remote servers would be: a lab
    # descheduled by a busy machine delivers late, and every sample then in flight is disturbed
    scheduling = raise_priority()
    # select() sleeps to the microsecond; epoll rounds its timeout up to whole milliseconds
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(conn, scenario_doc, Path(ca_path), control_port,
                                       parent_pid, scheduling))
    finally:
        loop.close()
        conn.close()


async def _serve(conn: Connection, scenario_doc: dict[str, Any], ca_path: Path,
                 control_port: int, parent_pid: int, scheduling: str = "normal") -> None:
    loop = asyncio.get_running_loop()
    world = World(Scenario.model_validate(scenario_doc), ca_path=ca_path,
                  control_port=control_port)
    world.scheduling = scheduling
    try:
        info = await world.start()
    except Exception as exc:
        world.close()
        # a mistake the world can name says so itself; anything else names its type
        conn.send({"error": str(exc) if isinstance(exc, ScenarioError)
                   else f"{type(exc).__name__}: {exc}"})
        return
    gc.collect()
    gc.freeze()  # the servers' long-lived objects out of every later full collection's way
    conn.send({"ready": info})
    stop = asyncio.Event()

    def on_pipe() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = "stop"  # the parent closed the pipe or died
        if message == "stop":
            stop.set()

    loop.add_reader(conn.fileno(), on_pipe)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), _PARENT_POLL_S)
            except TimeoutError:
                if os.getppid() != parent_pid:
                    break
    finally:
        loop.remove_reader(conn.fileno())
        world.close()
        await asyncio.sleep(0.01)  # let the closes and aborts run
