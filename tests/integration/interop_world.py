"""A world built from software nobody on the project wrote, for the interop tests.

* **BIND 9** (``named``) is the zone's authoritative server. Its views, matched by the client's
  source address, are the latency-routing stand-in: each vantage point's resolver gets the answer
  the test gives it, and the vantage point's own (direct) queries get another. BIND ignores EDNS
  Client Subnet and answers scope /0, as any server without ECS support does.
* **unbound** is each vantage point's recursive resolver, forwarding the zone to BIND from its own
  address (so BIND's views see which resolver asks).
* **nginx** serves each region's app contract over HTTPS with a chain root → intermediate → leaf,
  several *backends* per region (TLS 1.3, TLS 1.2 only, a folded or doubled region header, a
  header naming another region, a short-lived certificate); the test picks which one a region's
  address leads to.
* The lab's **delay proxy** (``monitor.lab._proxy``) stands in front of nginx as each region's
  address and holds every chunk for the one-way delay of the client's round trip. It runs in its
  own process, so the probe's event loop and the proxy never wait for each other's GIL.

Address plan (``B`` is random per world, so two test runs on one machine do not meet)::

    BIND                        127.0.0.1 : port tried at random, again on "address in use"
                                (named listens only on interface addresses; lo has 127.0.0.1)
    region i (1-based)          127.B.i.1 : P, the delay proxy (every region shares port P)
    region i's backend k        127.B.i.(10+k) : a socket bound on port 0 that nginx inherits
    vantage point j (1-based)   127.B.(100+j).1 : source address of its probes
    vantage point j's resolver  127.B.(100+j).53 : port tried at random, again on "address in use"

Every server runs as root (the tests run as root; nginx and unbound are told not to drop
privileges so they can read the test's temporary files) and is stopped by its process id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import multiprocessing
import os
import random
import selectors
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml
from system_tools import require_tool

ORIGIN_NAME = "global-alb.example.com"
ZONE = "example.com"
_ATTEMPTS = 20  # ports tried before giving up
_LOG_LINES = 2000  # lines read from a starting server before giving up on it
_STOP_TIMEOUT_S = 10.0
BACKENDS = ("tls13", "tls12", "folded", "two-lines", "liar", "short-cert")
"""What each region's nginx can serve (see :func:`nginx_server_block`)."""
SHORT_CERT_DAYS = 2.0


@dataclass(frozen=True)
class VantageSetup:
    """A vantage point: where it is, its round trip (ms) to each region, and what DNS answers
    its resolver (``None``: the resolver refuses) and its own direct queries."""

    location: str
    latency_ms: Mapping[str, float]
    resolver_answer: str | None
    direct_answer: str
    client_subnet: str


@dataclass
class ServerProcess:
    """A started server: its process and every line it logged (drained by a thread, so a full
    pipe never blocks it)."""

    name: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def drain(self) -> None:
        thread = threading.Thread(target=self._drain, name=f"{self.name}-log", daemon=True)
        thread.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if len(self.log) < 10_000:
                self.log.append(line.rstrip())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(_STOP_TIMEOUT_S)


def start_server(name: str, command: list[str], *, ready: str, failed: tuple[str, ...],
                 env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = ()) -> tuple[ServerProcess | None, list[str]]:
    """Start ``command`` and read its log until a line holds ``ready`` (started: the server and
    its log) or one of ``failed`` or the process exits (None and the log read so far)."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env, pass_fds=pass_fds)
    server = ServerProcess(name, process)
    assert process.stderr is not None
    for _ in range(_LOG_LINES):
        line = process.stderr.readline()
        if not line:  # the process exited
            break
        server.log.append(line.rstrip())
        if any(marker in line for marker in failed):
            break
        if ready in line:
            server.drain()
            return server, server.log
    server.stop()
    return None, server.log


# --- the delay proxies, in their own process ------------------------------------------------------


def run_proxies(conn: Connection, regions: dict[str, tuple[str, str, int]],
                delays_ms: dict[str, dict[str, float]]) -> None:
    """The proxy process: one delay proxy per region (public address → upstream), all on one
    port; then obey ``("upstream", region, host, port)`` and ``"stop"`` from the pipe."""
    from monitor.lab._proxy import ConnectionPolicy, DelayProxy, listen_shared

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # select() sleeps to the microsecond; epoll rounds up to whole milliseconds (as in the lab)
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    asyncio.set_event_loop(loop)

    def policy(region: str, client: str) -> ConnectionPolicy:
        return ConnectionPolicy(delays_ms.get(client, {}).get(region, 0.0) / 2000.0)

    proxies = {name: DelayProxy(loop, public, host, port,
                                lambda client, name=name: policy(name, client))
               for name, (public, host, port) in regions.items()}

    stop = asyncio.Event()

    def on_message() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = "stop"
        if message == "stop":
            stop.set()
            return
        _, region, host, port = message
        proxies[region].upstream_host, proxies[region].upstream_port = host, port
        proxies[region].drop_connections()
        conn.send("ok")

    async def main() -> None:
        conn.send(await listen_shared(list(proxies.values())))
        loop.add_reader(conn.fileno(), on_message)
        await stop.wait()
        for proxy in proxies.values():
            proxy.close_listener()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        conn.close()


# --- configuration files ------------------------------------------------------------------------


def zone_file(answer: str) -> str:
    return (f"$TTL 60\n@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 60 60 600 60\n"
            f"@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n"
            f"{ORIGIN_NAME.removesuffix('.' + ZONE)} IN A {answer}\n")


def nginx_server_block(address: str, port: int, *, region: str, backend: str, liar_claims: str,
                       workdir: Path) -> str:
    """One backend of a region: which TLS versions, which certificate, which region header
    line(s) and health JSON."""
    claims = liar_claims if backend == "liar" else region
    headers = {"folded": [f"{region.upper()}, {region}"],
               "two-lines": [region, region]}.get(backend, [claims])
    body = json.dumps({"region": claims, "dynamodb_region": region, "dynamodb_read_ms": 2.5})
    cert = "short" if backend == "short-cert" else "leaf"
    protocols = "TLSv1.2" if backend == "tls12" else "TLSv1.2 TLSv1.3"
    add_headers = "".join(f'      add_header x-origin-region "{h}";\n' for h in headers)
    return (f"  server {{\n"
            f"    listen {address}:{port} ssl;\n"
            f"    ssl_certificate {workdir}/{cert}-chain.pem;\n"
            f"    ssl_certificate_key {workdir}/{cert}-key.pem;\n"
            f"    ssl_protocols {protocols};\n"
            f"    location = /health {{\n"
            f"      default_type application/json;\n{add_headers}"
            f"      return 200 '{body}';\n"
            f"    }}\n"
            f"    location / {{ return 404; }}\n"
            f"  }}\n")


class InteropWorld:
    """BIND, one unbound per vantage point, nginx and the delay proxies; see the module doc."""

    def __init__(self, workdir: Path, regions: tuple[str, ...],
                 vantage_points: Mapping[str, VantageSetup]) -> None:
        self.workdir = workdir
        self.regions = regions
        self.vantage_points = dict(vantage_points)
        self.block = random.randrange(64, 128)
        self.servers: list[ServerProcess] = []
        self.backend_sockets: dict[tuple[str, str], Any] = {}
        self.bind_port = 0
        self.resolver_ports: dict[str, int] = {}
        self.https_port = 0
        self.short_cert_not_after = 0.0
        self.leaf_not_after = 0.0
        self._proxy_process: Any = None
        self._proxy_conn: Connection | None = None

    # --- addresses -----------------------------------------------------------------------------

    def region_address(self, region: str) -> str:
        return f"127.{self.block}.{self.regions.index(region) + 1}.1"

    def backend_address(self, region: str, backend: str) -> str:
        return f"127.{self.block}.{self.regions.index(region) + 1}.{10 + BACKENDS.index(backend)}"

    def _vantage_index(self, name: str) -> int:
        return list(self.vantage_points).index(name) + 1

    def vantage_address(self, name: str) -> str:
        return f"127.{self.block}.{100 + self._vantage_index(name)}.1"

    def resolver_address(self, name: str) -> str:
        return f"127.{self.block}.{100 + self._vantage_index(name)}.53"

    def liar_claims(self, region: str) -> str:
        """The region a region's ``liar`` backend names: the next one in order."""
        return self.regions[(self.regions.index(region) + 1) % len(self.regions)]

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> InteropWorld:
        tools = {"named": "bind9", "unbound": "unbound", "nginx": "nginx"}
        self.paths = {tool: require_tool(tool, package) for tool, package in tools.items()}
        try:
            self._certificates()
            self._start_nginx()
            self._start_proxies()
            self._start_bind()
            for name in self.vantage_points:
                self._start_unbound(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proxy_conn is not None:
            with contextlib.suppress(OSError):
                self._proxy_conn.send("stop")
            self._proxy_process.join(_STOP_TIMEOUT_S)
            if self._proxy_process.is_alive():
                self._proxy_process.terminate()
                self._proxy_process.join(_STOP_TIMEOUT_S)
            self._proxy_conn.close()
            self._proxy_conn = None
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        for sock in self.backend_sockets.values():
            sock.close()
        self.backend_sockets.clear()

    def __enter__(self) -> InteropWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _certificates(self) -> None:
        import trustme

        root = trustme.CA(organization_name="routewatch interop root")
        intermediate = root.create_child_ca()
        now = datetime.datetime.now(datetime.UTC)
        leaf_until = now + datetime.timedelta(days=400)
        short_until = now + datetime.timedelta(days=SHORT_CERT_DAYS)
        leaf = intermediate.issue_cert(ORIGIN_NAME, not_after=leaf_until)
        short = intermediate.issue_cert(ORIGIN_NAME, not_after=short_until)
        # X.509 keeps whole seconds
        self.leaf_not_after = float(int(leaf_until.timestamp()))
        self.short_cert_not_after = float(int(short_until.timestamp()))
        for name, cert in (("leaf", leaf), ("short", short)):
            cert.private_key_pem.write_to_path(str(self.workdir / f"{name}-key.pem"))
            (self.workdir / f"{name}-chain.pem").write_bytes(
                b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        root.cert_pem.write_to_path(str(self.workdir / "ca.pem"))

    def _start_nginx(self) -> None:
        import socket

        blocks = []
        for region in self.regions:
            for backend in BACKENDS:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((self.backend_address(region, backend), 0))
                sock.listen(128)
                sock.set_inheritable(True)
                self.backend_sockets[region, backend] = sock
                blocks.append(nginx_server_block(
                    self.backend_address(region, backend), sock.getsockname()[1],
                    region=region, backend=backend, liar_claims=self.liar_claims(region),
                    workdir=self.workdir))
        temp = self.workdir / "nginx-temp"
        temp.mkdir(exist_ok=True)
        temp_paths = "".join(f"  {kind}_temp_path {temp};\n"
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n"
            f"pid {self.workdir}/nginx.pid;\nerror_log stderr notice;\n"
            f"events {{ worker_connections 512; }}\n"
            f"http {{\n  access_log off;\n{temp_paths}{''.join(blocks)}}}\n", encoding="utf-8")
        fds = tuple(sock.fileno() for sock in self.backend_sockets.values())
        # nginx takes listening sockets from NGINX="fd;fd;..." (its binary-upgrade hand-over):
        # every socket was bound on port 0 here, so no port is ever chosen and released
        env = dict(os.environ, NGINX="".join(f"{fd};" for fd in fds))
        server, log = start_server(
            "nginx", [self.paths["nginx"], "-c", str(conf), "-p", str(self.workdir)],
            ready="start worker process", failed=("[emerg]",), env=env, pass_fds=fds)
        if server is None:
            raise RuntimeError("nginx did not start:\n" + "\n".join(log[-20:]))
        self.servers.append(server)

    def _start_proxies(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=True)
        regions = {}
        for region in self.regions:
            host, port = self.backend_sockets[region, "tls13"].getsockname()
            regions[region] = (self.region_address(region), host, port)
        delays = {self.vantage_address(name): dict(setup.latency_ms)
                  for name, setup in self.vantage_points.items()}
        self._proxy_process = context.Process(target=run_proxies, args=(child, regions, delays),
                                              name="interop-proxies", daemon=True)
        self._proxy_process.start()
        child.close()
        self._proxy_conn = parent
        self.https_port = parent.recv()

    def _start_bind(self) -> None:
        views = []
        for name, setup in self.vantage_points.items():
            for kind, client, answer in (
                    ("resolver", self.resolver_address(name), setup.resolver_answer),
                    ("direct", self.vantage_address(name), setup.direct_answer)):
                if answer is None:
                    continue
                view = f"{name}-{kind}"
                (self.workdir / f"{view}.zone").write_text(
                    zone_file(self.region_address(answer)), encoding="utf-8")
                views.append(f'view "{view}" {{\n  match-clients {{ {client}/32; }};\n'
                             f'  zone "{ZONE}" {{ type primary; file "{self.workdir}/{view}.zone";'
                             f' }};\n}};\n')
        (self.workdir / "default.zone").write_text(
            zone_file(self.region_address(self.regions[0])), encoding="utf-8")
        views.append(f'view "default" {{\n  match-clients {{ any; }};\n'
                     f'  zone "{ZONE}" {{ type primary; file "{self.workdir}/default.zone"; }};\n'
                     f'}};\n')
        conf = self.workdir / "named.conf"
        for _ in range(_ATTEMPTS):
            port = random.randrange(20000, 32000)  # below the kernel's ephemeral range
            conf.write_text(
                f'options {{\n  directory "{self.workdir}";\n'
                f'  pid-file "{self.workdir}/named.pid";\n'
                f'  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n'
                f"  recursion no;\n  reuseport no;\n  dnssec-validation no;\n"
                f'  session-keyfile "{self.workdir}/session.key";\n'
                f'  managed-keys-directory "{self.workdir}";\n}};\n'
                f"controls {{ }};\n{''.join(views)}", encoding="utf-8")
            server, log = start_server(
                "named", [self.paths["named"], "-g", "-c", str(conf)], ready=" running",
                failed=("address in use", "loading configuration: failure", "exiting"))
            if server is not None:
                self.servers.append(server)
                self.bind_port = port
                return
            if not any("address in use" in line for line in log):
                raise RuntimeError("named did not start:\n" + "\n".join(log[-20:]))
        raise RuntimeError("named found no free port")

    def _start_unbound(self, name: str) -> None:
        setup = self.vantage_points[name]
        address = self.resolver_address(name)
        refuse = ("" if setup.resolver_answer is not None
                  else f'  local-zone: "{ORIGIN_NAME}." refuse\n')
        conf = self.workdir / f"unbound-{name}.conf"
        for _ in range(_ATTEMPTS):
            port = random.randrange(20000, 32000)
            conf.write_text(
                f"server:\n  interface: {address}\n  port: {port}\n  do-ip6: no\n"
                f'  username: ""\n  chroot: ""\n  directory: "{self.workdir}"\n'
                f'  pidfile: "{self.workdir}/unbound-{name}.pid"\n  logfile: ""\n'
                f"  use-syslog: no\n  verbosity: 1\n  so-reuseport: no\n"
                f"  outgoing-interface: {address}\n  access-control: 127.0.0.0/8 allow\n"
                f'  do-not-query-localhost: no\n  module-config: "iterator"\n'
                f"  cache-max-ttl: 0\n{refuse}"
                f"remote-control:\n  control-enable: no\n"
                f'forward-zone:\n  name: "{ZONE}."\n  forward-addr: 127.0.0.1@{self.bind_port}\n',
                encoding="utf-8")
            server, log = start_server(
                f"unbound-{name}", [self.paths["unbound"], "-d", "-c", str(conf)],
                ready="start of service", failed=("Address already in use", "fatal error"))
            if server is not None:
                self.servers.append(server)
                self.resolver_ports[name] = port
                return
            if not any("Address already in use" in line for line in log):
                raise RuntimeError(f"unbound ({name}) did not start:\n" + "\n".join(log[-20:]))
        raise RuntimeError(f"unbound ({name}) found no free port")

    # --- run-time changes ----------------------------------------------------------------------

    def use_backend(self, region: str, backend: str) -> None:
        """Make the region's address lead to another nginx backend (open connections drop)."""
        assert self._proxy_conn is not None
        host, port = self.backend_sockets[region, backend].getsockname()
        self._proxy_conn.send(("upstream", region, host, port))
        assert self._proxy_conn.recv() == "ok"

    @contextlib.contextmanager
    def backends(self, chosen: Mapping[str, str]) -> Iterator[None]:
        """Regions lead to the given backends for the block, then back to ``tls13``."""
        try:
            for region, backend in chosen.items():
                self.use_backend(region, backend)
            yield
        finally:
            for region in chosen:
                self.use_backend(region, "tls13")

    # --- routewatch's view of it ---------------------------------------------------------------

    def config_document(self, **probe: Any) -> dict[str, Any]:
        """A routewatch configuration for this world; ``ca_file`` is relative to the file."""
        return {
            "service": {"origin_name": ORIGIN_NAME, "port": self.https_port,
                        "ca_file": "ca.pem"},
            "regions": {r: {"addresses": [self.region_address(r)]} for r in self.regions},
            "vantage_points": {
                name: {"resolver": f"{self.resolver_address(name)}:{self.resolver_ports[name]}",
                       "source_address": self.vantage_address(name),
                       "client_subnet": setup.client_subnet, "location": setup.location}
                for name, setup in self.vantage_points.items()},
            "authoritative": [f"127.0.0.1:{self.bind_port}"],
            "probe": {"samples": 4, "round_deadline_s": 20.0,
                      "allow_addresses": ["127.0.0.0/8"], **probe},
        }

    def write_config(self, name: str = "interop.yaml", **probe: Any) -> Path:
        path = self.workdir / name
        path.write_text(yaml.safe_dump(self.config_document(**probe), sort_keys=False),
                        encoding="utf-8")
        return path
