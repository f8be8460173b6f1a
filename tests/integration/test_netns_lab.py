"""The packet-level lab: the delay router holds every packet for its pair's one-way delay, so
TCP connect, the TLS handshake and the first byte all read the injected round trip.

The router's logic runs on datagram socket pairs (no root needed); the whole lab, with network
namespaces and TUN devices this test creates and removes, runs only as root with /dev/net/tun.
Lower bounds are exact (a held packet cannot arrive early); the one upper-bound check allows a
bounded number of extra samples on a busy machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from monitor.lab.netns import PacketLab, unavailable_reason, write_tls_files
from monitor.lab.netns._router import DelayRouter

ROOT = Path(__file__).parents[2]
NAME = "global-alb.example.com"
CLIENT, NEAR, FAR = "198.18.1.1", "198.18.2.1", "198.18.2.2"
RTT = {(CLIENT, NEAR): 0.030, (CLIENT, FAR): 0.090}


def _ipv4(source: str, destination: str, payload: bytes) -> bytes:
    return (bytes([0x45]) + bytes(11) + socket.inet_aton(source) + socket.inet_aton(destination)
            + payload)


def test_the_router_holds_each_packet_for_its_pair_and_keeps_their_order() -> None:
    client_side, client_far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    server_side, server_far = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    control_read, control_write = os.pipe()
    for sock in (client_side, server_side):
        sock.setblocking(False)
    router = DelayRouter(client_side.fileno(), server_side.fileno(),
                         {(CLIENT, NEAR): 0.015, (NEAR, CLIENT): 0.015})
    thread = threading.Thread(target=router.run, args=(control_read,), daemon=True)
    thread.start()
    try:
        sent = time.perf_counter()
        for index in range(5):
            client_far.send(_ipv4(CLIENT, NEAR, bytes([index])))
        client_far.send(bytes([0x60]) + bytes(39))  # IPv6: not this world's, dropped
        client_far.send(_ipv4(CLIENT, FAR, b"no delay set"))  # a pair without a delay
        server_far.settimeout(5)
        arrived = [server_far.recv(2048) for _ in range(6)]
        first_held = time.perf_counter()
        assert arrived[0][20:] == b"no delay set"  # forwarded at once, ahead of the held ones
        assert [p[20:] for p in arrived[1:]] == [bytes([i]) for i in range(5)]
        assert first_held - sent >= 0.015  # held for the one-way delay, never less
        server_far.send(_ipv4(NEAR, CLIENT, b"back"))
        client_far.settimeout(5)
        assert client_far.recv(2048)[20:] == b"back"
    finally:
        os.close(control_write)  # end of input: the router returns
        thread.join(5)
        os.close(control_read)
        for sock in (client_side, client_far, server_side, server_far):
            sock.close()
    assert not thread.is_alive()
    stats = router.stats()
    assert (stats["forwarded"], stats["dropped"]) == (7, 1)
    assert stats["lateness_p50_s"] >= 0


# In the client namespace: probe_http from the client address, `count` times per server.
_SAMPLE = """
import asyncio, json, sys
from probes.http import HttpTarget, probe_http, ssl_context_for
async def main(ca, ports, count):
    found = {}
    for address, port in ports.items():
        for _ in range(count):
            e = await probe_http(HttpTarget(sys.argv[4], address, port, "/health", sys.argv[5]),
                                 ssl_context=ssl_context_for(ca))
            found.setdefault(address, []).append(
                {"error": str(e.error) if e.error else None, "version": e.tls_version, **e.phases})
    print(json.dumps(found))
asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])))
"""


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return write_tls_files(tmp_path_factory.mktemp("netns-ca"), NAME)


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_connect_handshake_and_first_byte_all_pay_the_round_trip(
        certificates: tuple[Path, Path, Path]) -> None:
    cert, key, ca_file = certificates
    with PacketLab(RTT) as lab:
        ports = lab.start_origins(cert, key, {NEAR: {"region": "us-east-1"},
                                              FAR: {"region": "eu-west-1", "tls": "1.2"}})
        found: dict[str, list[dict[str, float]]] = {NEAR: [], FAR: []}
        for _ in range(4):  # a busy machine may need more samples for the ordering check
            run = subprocess.run(
                lab.in_clients([sys.executable, "-c", _SAMPLE, str(ca_file), json.dumps(ports),
                                "3", NAME, CLIENT]),
                capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
            assert run.returncode == 0, run.stderr[-2000:]
            for address, samples in json.loads(run.stdout).items():
                found[address] += samples
            if min(s["connect"] for s in found[NEAR]) < RTT[(CLIENT, FAR)]:
                break
        stats = lab.router_stats()
    for address, version, trips in ((NEAR, "TLSv1.3", 1), (FAR, "TLSv1.2", 2)):
        rtt = RTT[(CLIENT, address)]
        for sample in found[address]:
            assert sample["error"] is None, sample
            assert sample["version"] == version
            # every packet was held half the round trip each way: never less than it
            assert sample["connect"] >= rtt * 0.99, (address, sample)  # SYN, SYN-ACK
            assert sample["tls"] >= trips * rtt * 0.99, (address, sample)  # 1.2: two trips
            assert sample["processing"] >= rtt * 0.99, (address, sample)
    # on the loopback lab connect reads ~0 whatever the distance; here it tells near from far
    assert min(s["connect"] for s in found[NEAR]) < RTT[(CLIENT, FAR)]
    assert stats.forwarded > 0
    assert stats.scheduling
