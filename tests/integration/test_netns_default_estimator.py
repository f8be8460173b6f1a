"""The default estimator (``auto``) on the packet-level lab, where every packet — SYN included —
is held for its pair's one-way delay, as on a real network: it picks ``connect`` (the server's
kernel answers it), reads the injected round trip as closely as a raw TCP connect timed in the
same moment (the control), and an app that takes 15 ms longer does not move it — while the first
byte pays those 15 ms in full. Root only (network namespaces, TUN devices); skipped otherwise.

No absolute wall-clock bound: each reading is compared with its control's floor (a busy machine
that disturbs even the control makes the test skip, naming the figures); the only fixed bounds
are floors a held packet cannot beat.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lab_client import Converged, accuracy_ms, assert_agrees

from monitor.lab.netns import PacketLab, unavailable_reason, write_tls_files

ROOT = Path(__file__).parents[2]
NAME = "global-alb.example.com"
CLIENT = "198.18.1.1"
ORIGINS = {  # address: (region, round trip s, app ms)
    "198.18.2.1": ("us-east-1", 0.020, 0.0),
    "198.18.2.2": ("us-west-2", 0.020, 15.0),  # as near, its app 15 ms slower
    "198.18.2.3": ("eu-west-1", 0.070, 0.0),
}
ROUNDS = 6

# In the client namespace: per round, for each origin a raw TCP connect (the control) and a
# routewatch sample interleaved; then each round's row summarised by the default config.
_SAMPLE = """
import asyncio, json, socket, sys, time
from monitor.config import parse_config
from monitor.round.baseline import summarise_row
from probes.http import HttpTarget, probe_http, ssl_context_for
ca, name, source, origins, rounds = (sys.argv[1], sys.argv[2], sys.argv[3],
                                     json.loads(sys.argv[4]), int(sys.argv[5]))
config = parse_config(json.dumps({
    "service": {"origin_name": name},
    "regions": {o["region"]: {"addresses": [a]} for a, o in origins.items()},
    "vantage_points": {"lab": {"resolver": "127.0.0.53"}}})).config
def control(address, port):
    started = time.perf_counter()
    with socket.create_connection((address, port), timeout=10, source_address=(source, 0)):
        return time.perf_counter() - started
async def main():
    context = ssl_context_for(ca)
    out = []
    for _ in range(rounds + 1):  # the first round warms up (imports, first handshakes)
        samples, controls = {}, {}
        for address, origin in origins.items():
            for _ in range(3):
                controls.setdefault(origin["region"], []).append(control(address, origin["port"]))
                samples.setdefault(origin["region"], []).append(await probe_http(
                    HttpTarget(name, address, origin["port"], "/health", source),
                    ssl_context=context))
        out.append({"control": {r: min(c) for r, c in controls.items()},
                    "rows": [{"region": r.region, "estimator": r.estimator,
                              "reason": r.estimator_reason, "latency": r.latency_seconds,
                              "first_byte": r.first_byte_seconds, "connect": r.connect_seconds,
                              "healthy": r.healthy} for r in summarise_row(samples, config)]})
    print(json.dumps(out[1:]))
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return write_tls_files(tmp_path_factory.mktemp("netns-default-ca"), NAME)


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_the_default_picks_connect_reads_the_round_trip_and_ignores_a_slow_app(
        certificates: tuple[Path, Path, Path]) -> None:
    cert, key, ca_file = certificates
    rtt = {(CLIENT, address): seconds for address, (_, seconds, _) in ORIGINS.items()}
    with PacketLab(rtt) as lab:
        ports = lab.start_origins(cert, key, {
            address: {"region": region, "processing_ms": app_ms}
            for address, (region, _, app_ms) in ORIGINS.items()})
        origins = {address: {"region": region, "port": ports[address]}
                   for address, (region, _, _) in ORIGINS.items()}
        run = subprocess.run(
            lab.in_clients([sys.executable, "-c", _SAMPLE, str(ca_file), NAME, CLIENT,
                            json.dumps(origins), str(ROUNDS)]),
            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    rounds: list[dict[str, Any]] = json.loads(run.stdout)
    by_region = {region: [next(r for r in one["rows"] if r["region"] == region)
                          for one in rounds] for region, _, _ in ORIGINS.values()}
    for region, injected, app_ms in ORIGINS.values():
        rows = by_region[region]
        for row in rows:  # every round, every region: connect, decided by the samples
            assert row["healthy"], row
            assert (row["estimator"], row["reason"]) == ("connect", "connect_at_server"), row
            assert row["latency"] == row["connect"]
            assert row["latency"] >= injected * 0.99, row  # a held SYN-ACK cannot come early
            # the first byte pays the round trip and the app's time: never less
            assert row["first_byte"] >= injected * 0.99 + app_ms / 1000, row
        # as accurate as a raw connect timed in the same moment (floors, ms)
        pairs = Converged([row["latency"] * 1000 for row in rows],
                          [one["control"][region] * 1000 for one in rounds])
        print(f"{region}: injected {injected * 1000:g} ms, default (connect) floor "
              f"{min(pairs.readings):.2f} ms, raw connect floor {min(pairs.controls):.2f} ms, "
              f"first byte floor {min(r['first_byte'] for r in rows) * 1000:.2f} ms")
        assert_agrees(pairs, expected_excess_ms=0.0, tolerance_ms=accuracy_ms(injected * 1000))
    # the slow app does not move the default's estimate: its floor is the quick app's (same
    # distance), while the first byte moves by the app's 15 ms
    near, slow = by_region["us-east-1"], by_region["us-west-2"]
    same = Converged([r["latency"] * 1000 for r in slow], [r["latency"] * 1000 for r in near])
    assert_agrees(same, expected_excess_ms=0.0, tolerance_ms=accuracy_ms(20.0))
    assert min(r["first_byte"] for r in slow) - min(r["first_byte"] for r in near) > 0.010
