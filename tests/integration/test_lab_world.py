"""The lab's regions over real TLS from the vantage points' addresses: the app contract, the
injected round trips, region faults at run time, the written config and the process life."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import LabWorld
from lab_client import (
    UNDELAYED,
    Converged,
    accuracy_ms,
    assert_agrees,
    converge,
    first_byte_ms,
    get,
    tls_connect,
)

from monitor.config import load_config
from monitor.lab import LabError, LabHandle, control_request, start_lab

ORIGIN = "global-alb.example.com"


def connect(lab: LabHandle, region: str, source: str, *,
            timeout: float = 5.0) -> tuple[ssl.SSLSocket, float]:
    """A verified TLS connection to the region from ``source``; the handshake's duration (ms)."""
    return tls_connect(lab.regions[region], lab.https_port, source, ORIGIN, lab.ca_path,
                       timeout=timeout)


def request(lab: LabHandle, region: str, vantage: str,
            path: str = "/health") -> tuple[int, dict[str, str], bytes]:
    tls, _ = connect(lab, region, lab.vantage_points[vantage])
    with tls:
        status, headers, body, _ = get(tls, ORIGIN, path)
    return status, headers, body


def handshake(lab: LabHandle, region: str, source: str) -> float:
    tls, took = connect(lab, region, source)
    tls.close()
    return took


def first_byte(lab: LabHandle, region: str, source: str) -> float:
    return first_byte_ms(lab.regions[region], lab.https_port, source, ORIGIN, lab.ca_path)


def injected_round_trip(lab: LabHandle, region: str, vantage: str, rtt: float,
                        timing: Callable[[LabHandle, str, str], float]) -> Converged:
    """``timing`` from the vantage point against the same from an address the lab does not
    delay, in the same moments: their floors differ by the injected round trip."""
    return converge(lambda: timing(lab, region, lab.vantage_points[vantage]),
                    lambda: timing(lab, region, UNDELAYED),
                    expected_excess_ms=rtt, tolerance_ms=accuracy_ms(rtt))


@pytest.fixture
def healthy(lab_world: LabWorld) -> LabHandle:
    return lab_world("healthy")


def test_origin_implements_the_app_contract(healthy: LabHandle) -> None:
    for region in healthy.regions:
        status, headers, body = request(healthy, region, "nyc")
        assert status == 200
        assert headers["x-origin-region"] == region
        assert headers["cache-control"] == "max-age=30"
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == {"region": region, "dynamodb_region": region,
                                    "dynamodb_read_ms": 2.5}
    status, headers, _ = request(healthy, "eu-west-1", "dub", "/elsewhere?x=1")
    assert (status, headers["x-origin-region"]) == (404, "eu-west-1")


@pytest.mark.parametrize(("vantage", "region"), [
    ("dub", "eu-west-1"), ("nyc", "us-east-1"), ("fra", "eu-west-1"), ("dub", "us-east-1"),
    ("fra", "ap-southeast-1")])
@pytest.mark.parametrize("timing", [handshake, first_byte], ids=["handshake", "first_byte"])
def test_delay_proxy_adds_the_injected_round_trip(
        healthy: LabHandle, vantage: str, region: str,
        timing: Callable[[LabHandle, str, str], float]) -> None:
    # TLS 1.3: the handshake costs one round trip (plus crypto), a request another
    rtt = healthy.scenario.vantage_points[vantage].latency_ms[region]
    pairs = injected_round_trip(healthy, region, vantage, rtt, timing)
    assert_agrees(pairs, expected_excess_ms=rtt, tolerance_ms=accuracy_ms(rtt))
    assert min(pairs.readings) >= rtt, pairs  # never released early


def test_unknown_client_addresses_get_no_delay(healthy: LabHandle) -> None:
    # from 127.0.0.1 the farthest region reads no slower than a region next door does from its
    # neighbour, 6 ms away (a busy machine only makes that delayed neighbour read slower)
    rtt = healthy.scenario.vantage_points["dub"].latency_ms["eu-west-1"]
    pairs = converge(lambda: first_byte(healthy, "ap-southeast-1", UNDELAYED),
                     lambda: first_byte(healthy, "eu-west-1", healthy.vantage_points["dub"]),
                     expected_excess_ms=-rtt, tolerance_ms=accuracy_ms(rtt))
    assert pairs.excess_ms <= -rtt + accuracy_ms(rtt), pairs


def test_slow_fault_adds_to_the_round_trip(healthy: LabHandle) -> None:
    healthy.set_faults([{"kind": "slow", "region": "us-east-1", "extra_ms": 30,
                         "vantage": "nyc"}])
    slow = injected_round_trip(healthy, "us-east-1", "nyc", 38, handshake)
    assert_agrees(slow, expected_excess_ms=38, tolerance_ms=accuracy_ms(38))
    other = injected_round_trip(healthy, "us-east-1", "dub", 70, handshake)
    assert_agrees(other, expected_excess_ms=70, tolerance_ms=accuracy_ms(70))  # only nyc
    assert min(slow.readings) >= 38, slow


def test_region_down_refuses_and_comes_back(healthy: LabHandle) -> None:
    dub = healthy.vantage_points["dub"]
    healthy.add_fault({"kind": "region_down", "region": "eu-west-1"})
    with pytest.raises(ConnectionRefusedError):
        connect(healthy, "eu-west-1", dub)
    assert request(healthy, "us-east-1", "dub")[0] == 200  # the others still serve
    healthy.clear_faults()
    assert request(healthy, "eu-west-1", "dub")[0] == 200


def test_blackhole_accepts_and_never_answers(lab_world: LabWorld) -> None:
    lab = lab_world("blackhole")
    source = lab.vantage_points["nyc"]
    with pytest.raises(TimeoutError):
        connect(lab, "ap-southeast-1", source, timeout=0.5)  # TCP connects, TLS hangs
    assert request(lab, "us-east-1", "nyc")[0] == 200


def test_origin_faults(healthy: LabHandle) -> None:
    healthy.set_faults([
        {"kind": "http_5xx", "region": "ap-southeast-1", "status": 502},
        {"kind": "header_mismatch", "region": "us-east-1", "claims": "eu-west-1"},
        {"kind": "dynamodb_remote", "region": "eu-west-1", "dynamodb_region": "us-east-1",
         "read_ms": 71},
    ])
    status, headers, _ = request(healthy, "ap-southeast-1", "nyc")
    assert status == 502
    assert "x-origin-region" not in headers  # the load balancer answers, not the app
    status, headers, body = request(healthy, "us-east-1", "nyc")
    assert headers["x-origin-region"] == "eu-west-1"
    assert json.loads(body)["region"] == "eu-west-1"
    body = request(healthy, "eu-west-1", "dub")[2]
    assert json.loads(body) == {"region": "eu-west-1", "dynamodb_region": "us-east-1",
                                "dynamodb_read_ms": 71}


def test_bad_runtime_faults_are_refused_and_change_nothing(healthy: LabHandle) -> None:
    with pytest.raises(LabError) as caught:
        healthy.set_faults([{"kind": "region_down", "region": "mars-1"}])
    assert caught.value.errors == ["faults[0].region: 'mars-1' is not a region of this scenario"]
    assert healthy.faults() == []


def test_written_config_loads(healthy: LabHandle) -> None:
    loaded = load_config(healthy.config_path)
    config = loaded.config
    assert config.service.ca_file == healthy.ca_path
    assert healthy.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert config.service.port == healthy.https_port
    assert config.regions["eu-west-1"].addresses == (healthy.regions["eu-west-1"],)
    dub = config.vantage_points["dub"]
    assert (dub.source_address, dub.location) == (healthy.vantage_points["dub"], "DUB")
    assert dub.resolver == healthy.dns_address
    assert config.authoritative == (healthy.dns_address,)
    assert healthy.config_dict["service"]["port"] == healthy.https_port


def test_stop_leaves_no_process_and_no_files(tmp_path: Path) -> None:
    config_path = tmp_path / "world.yaml"
    with start_lab("healthy", config_path=config_path) as lab:
        assert lab.running
        assert lab.ca_path == tmp_path / "world-ca.pem"
        assert load_config(config_path).config.service.port == lab.https_port
        temp_workdir = lab.workdir
    assert not lab.process.is_alive()
    assert lab.process.exitcode == 0
    assert not temp_workdir.exists()
    with pytest.raises(LabError, match="not running"):
        lab.clear_faults()


def test_world_dies_with_its_parent(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from monitor.lab import start_lab\n"
        "if __name__ == '__main__':\n"
        "    lab = start_lab('healthy')\n"
        "    print(lab.process.pid, flush=True)\n"
        "    time.sleep(60)\n", encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parents[2])
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)  # no atexit, no stop(): the world must notice
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def test_closed_connections_leave_nothing_open(healthy: LabHandle) -> None:
    for close_first in ("client", "server"):
        tls, _ = connect(healthy, "eu-west-1", healthy.vantage_points["dub"])
        with tls:
            if close_first == "server":
                tls.sendall(f"GET /health HTTP/1.1\r\nhost: {ORIGIN}\r\n"
                            f"connection: close\r\n\r\n".encode())
                while tls.recv(65536):
                    pass
            else:
                get(tls, ORIGIN)
    for _ in range(200):  # the world closes its side when it sees ours close: polled, bounded
        if not _open_connections(healthy):
            break
        time.sleep(0.05)
    assert _open_connections(healthy) == 0


def _open_connections(lab: LabHandle) -> int:
    world = control_request(lab.control_address, "GET", "/world")
    return int(world["open_connections"])
