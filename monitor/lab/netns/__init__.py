"""A packet-level lab: two network namespaces joined by a userspace delay router.

The loopback lab's delay proxy accepts TCP locally, so ``connect`` reads 0 there and TLS
handshakes only see the delay of the bytes the proxy relays. Here, clients (vantage points) live
in one namespace and servers (regions) in another, each namespace's only link a TUN device whose
other end is :mod:`~monitor.lab.netns._router`, which holds every IPv4 packet (SYN, SYN-ACK,
handshake, data, ACKs) for the pair's one-way delay: ``connect``, ``handshake`` and
``first_byte`` are all honest estimators, as on a real network. This kernel has neither netem nor
the fq qdisc, but it has TUN devices and network namespaces.

    with PacketLab({("198.18.1.1", "198.18.2.1"): 0.020}) as lab:
        lab.start_origins(cert, key, {"198.18.2.1": {"region": "us-east-1"}})
        subprocess.run(lab.in_clients([sys.executable, "-c", ...]))

Needs root, ``/dev/net/tun`` and iproute2's ``ip`` (:func:`unavailable_reason` says which is
missing). Every address must be in 198.18.0.0/15 (RFC 2544's benchmarking range), and lives only
inside the namespaces this creates, named ``rwlab-<pid>-<n>-{c,s}`` and removed on ``stop``.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import itertools
import json
import os
import selectors
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from probes.errors import RoutewatchError
from probes.records import record

__all__ = ["BENCH_NETWORK", "NetnsUnavailable", "PacketLab", "RouterStats",
           "unavailable_reason", "write_tls_files"]

BENCH_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
_START_TIMEOUT_S = 20.0
_counter = itertools.count(1)
_running: set[PacketLab] = set()


class NetnsUnavailable(RoutewatchError):
    """This machine (or user) cannot create the namespaces or devices."""


def unavailable_reason() -> str | None:
    """Why a :class:`PacketLab` cannot start here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces and TUN devices are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces and TUN devices needs root"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun (the tun module or the device is missing)"
    if shutil.which("ip") is None:
        return "no `ip` command (Debian package iproute2)"
    return None


@record
class RouterStats:
    """What the router did: packets forwarded and dropped, how late packets left (seconds),
    and the scheduling it got (real-time FIFO as root)."""

    forwarded: int
    dropped: int
    scheduling: str
    lateness_p50_s: float
    lateness_p99_s: float
    lateness_max_s: float


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                            check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _read_line(process: subprocess.Popen[str], what: str) -> dict[str, Any]:
    """The child's next line, bounded: a child that dies or hangs is an error, not a wait."""
    if process.stdout is None:
        raise NetnsUnavailable(f"{what}: no pipe to read")
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(_START_TIMEOUT_S):
            raise NetnsUnavailable(f"{what} did not start within {_START_TIMEOUT_S:g} s")
    line = process.stdout.readline()
    if not line:
        raise NetnsUnavailable(f"{what} exited with {process.wait(5)}")
    document: dict[str, Any] = json.loads(line)
    if "error" in document:
        raise NetnsUnavailable(f"{what}: {document['error']}")
    return document


def _send(process: subprocess.Popen[str], message: dict[str, Any] | str) -> None:
    """One line to a child: a JSON document, or a command."""
    if process.stdin is None:
        raise NetnsUnavailable("no pipe to the child")
    process.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
    process.stdin.flush()


class PacketLab:
    """Client and server namespaces and the delay router between them (see the module doc).

    ``rtt_s`` maps (client address, server address) to the pair's round trip in seconds, half
    of it applied to each direction."""

    def __init__(self, rtt_s: Mapping[tuple[str, str], float]) -> None:
        if not rtt_s:
            raise ValueError("give at least one (client, server) round trip")
        for pair, seconds in rtt_s.items():
            for address in pair:
                if ipaddress.IPv4Address(address) not in BENCH_NETWORK:
                    raise ValueError(f"{address} is not in {BENCH_NETWORK} (benchmarking range)")
            if not 0 <= seconds <= 10:
                raise ValueError(f"{pair}: round trip {seconds} s is not between 0 and 10 s")
        self.rtt_s = dict(rtt_s)
        self.clients = sorted({c for c, _ in rtt_s}, key=ipaddress.IPv4Address)
        self.servers = sorted({s for _, s in rtt_s}, key=ipaddress.IPv4Address)
        if set(self.clients) & set(self.servers):
            raise ValueError("an address cannot be both a client and a server")
        number = next(_counter)
        self.namespaces = {"client": f"rwlab-{os.getpid()}-{number}-c",
                           "server": f"rwlab-{os.getpid()}-{number}-s"}
        token = f"{os.getpid() % 100000}{number}"
        self._devices = {"client": f"rwc{token}"[:15], "server": f"rws{token}"[:15]}
        self._router: subprocess.Popen[str] | None = None
        self._origins: subprocess.Popen[str] | None = None
        self._created: list[str] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PacketLab:
        reason = unavailable_reason()
        if reason is not None:
            raise NetnsUnavailable(reason)
        _running.add(self)
        try:
            for namespace in self.namespaces.values():
                _ip("netns", "add", namespace)
                self._created.append(namespace)
            self._start_router()
            self._wire("client", self.clients, self.servers)
            self._wire("server", self.servers, self.clients)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_router(self) -> None:
        one_way = [[c, s, rtt / 2] for (c, s), rtt in self.rtt_s.items()]
        one_way += [[s, c, rtt / 2] for (c, s), rtt in self.rtt_s.items()]
        self._router = subprocess.Popen(
            [sys.executable, "-m", "monitor.lab.netns._router"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[3])
        _send(self._router, {"devices": [self._devices["client"], self._devices["server"]],
                             "one_way_s": one_way})
        _read_line(self._router, "the delay router")

    def _wire(self, side: Literal["client", "server"], own: Sequence[str],
              far: Sequence[str]) -> None:
        namespace, device = self.namespaces[side], self._devices[side]
        _ip("link", "set", device, "netns", namespace)
        for address in own:
            _ip("-n", namespace, "addr", "add", f"{address}/32", "dev", device)
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "link", "set", device, "up")
        for address in far:
            _ip("-n", namespace, "route", "add", f"{address}/32", "dev", device)

    def start_origins(self, cert: Path, key: Path, origins: Mapping[str, Mapping[str, Any]], *,
                      health_path: str = "/health",
                      region_header: str = "x-origin-region") -> dict[str, int]:
        """HTTPS origins (the lab's app contract) in the server namespace, one per address
        (``{"region": ..., "processing_ms": 0, "tls": "1.3" | "1.2"}``); their ports."""
        unknown = set(origins) - set(self.servers)
        if unknown:
            raise ValueError(f"not server addresses of this lab: {sorted(unknown)}")
        self._origins = subprocess.Popen(
            self.in_servers([sys.executable, "-m", "monitor.lab.netns._origins"]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).parents[3])
        _send(self._origins, {"cert": str(cert), "key": str(key), "health_path": health_path,
                              "region_header": region_header, "origins": origins})
        ports: dict[str, int] = _read_line(self._origins, "the origins")["ports"]
        return ports

    def in_clients(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the client namespace."""
        return ["ip", "netns", "exec", self.namespaces["client"], *argv]

    def in_servers(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the server namespace."""
        return ["ip", "netns", "exec", self.namespaces["server"], *argv]

    def router_stats(self) -> RouterStats:
        if self._router is None:
            raise NetnsUnavailable("the router is not running")
        _send(self._router, "stats")
        return RouterStats(**_read_line(self._router, "the delay router"))

    def stop(self) -> None:
        """Stop the origins and the router, remove the namespaces (and so the devices)."""
        for process in (self._origins, self._router):
            if process is None:
                continue
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()  # both exit at end of input
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        self._origins = self._router = None
        while self._created:
            subprocess.run(["ip", "netns", "del", self._created.pop()], capture_output=True,
                           timeout=30, check=False)
        _running.discard(self)

    def __enter__(self) -> PacketLab:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for lab in list(_running):
        lab.stop()


def write_tls_files(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for ``name`` (trustme), for :meth:`PacketLab.start_origins`
    to serve and its probes to trust: the chain, its private key and the CA, in ``folder``."""
    import trustme  # the lab's own certificates; not needed to build the namespaces

    ca = trustme.CA()
    issued = ca.issue_cert(name)
    cert, key, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return cert, key, ca_file
