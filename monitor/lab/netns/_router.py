"""The delay router: two TUN devices, every IPv4 packet between them held for its pair's one-way
delay, SYN and handshake included, so TCP connect, the TLS handshake and the first byte all pay
the injected round trip (the lab's TCP proxy accepts connections locally: connect reads 0 there).

It runs as its own process (``python -m monitor.lab.netns._router``) in the namespace that
creates the devices; :class:`~monitor.lab.netns.PacketLab` then moves one device into each
network namespace. Protocol on stdin/stdout, one JSON document per line:

* in: the spec ``{"devices": [a, b], "one_way_s": [[src, dst, seconds], ...]}``;
  out: ``{"ready": true}`` once both devices exist (or ``{"error": ...}`` and exit 1);
* in: ``stats``; out: packets forwarded, dropped, and how late they left (lateness);
* end of stdin: the router exits (so it never outlives the process that started it).

Timing: the loop sleeps in ``select`` (microsecond timeout) until just before the next packet is
due, then spins to the due time (an idle VM CPU takes ~0.1-0.3 ms to wake). Packets of one pair
keep their order (one constant delay per pair and direction); a pair without a delay is
forwarded at once; anything that is not IPv4 is dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import ipaddress
import json
import os
import select
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Mapping

__all__ = ["DelayRouter", "open_tun", "raise_priority"]

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_EARLY_S = 250e-6  # wake this long before a packet is due, then spin
_BATCH = 256  # packets read from one device per wake-up, so the other is not starved
_LATENESS_KEPT = 100_000  # recent lateness values kept for percentiles (bounded memory)
_MAX_PACKET = 65535


def open_tun(name: str) -> int:
    """A new TUN device ``name`` (raw IP packets, no packet-info header); its non-blocking fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class DelayRouter:
    """Forwards packets between two TUN fds, each held for its (source, destination) delay."""

    def __init__(self, first: int, second: int,
                 one_way_s: Mapping[tuple[str, str], float]) -> None:
        self._peer = {first: second, second: first}
        self._delay = {(ipaddress.IPv4Address(s).packed, ipaddress.IPv4Address(d).packed): v
                       for (s, d), v in one_way_s.items()}
        self._queue: list[tuple[float, int, int, bytes]] = []  # (due, sequence, out fd, packet)
        self._sequence = 0
        self.forwarded = 0
        self.dropped = 0
        self.lateness: deque[float] = deque(maxlen=_LATENESS_KEPT)
        self.scheduling = "normal"

    def _receive(self, fd: int, now: float) -> None:
        for _ in range(_BATCH):
            try:
                packet = os.read(fd, _MAX_PACKET)
            except BlockingIOError:
                return
            if len(packet) < 20 or packet[0] >> 4 != 4:
                self.dropped += 1  # IPv6 neighbour discovery and the like: not this world's
                continue
            delay = self._delay.get((packet[12:16], packet[16:20]), 0.0)
            self._sequence += 1
            heapq.heappush(self._queue, (now + delay, self._sequence, self._peer[fd], packet))

    def _send_due(self) -> None:
        while self._queue and self._queue[0][0] <= time.perf_counter() + _EARLY_S:
            due, _, out, packet = heapq.heappop(self._queue)
            while time.perf_counter() < due:
                pass  # at most _EARLY_S of spinning
            try:
                os.write(out, packet)
            except BlockingIOError:
                self.dropped += 1  # the kernel's queue for the device is full: a lost packet
                continue
            self.lateness.append(time.perf_counter() - due)
            self.forwarded += 1

    def stats(self) -> dict[str, float | int | str]:
        ordered = sorted(self.lateness)

        def at(fraction: float) -> float:
            return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0

        return {"forwarded": self.forwarded, "dropped": self.dropped, "scheduling": self.scheduling,
                "lateness_p50_s": at(0.5), "lateness_p99_s": at(0.99),
                "lateness_max_s": ordered[-1] if ordered else 0.0}

    def run(self, control: int, buffered: bytes = b"") -> None:
        """Forward until ``control`` (a readable fd, the parent's pipe) reaches end of file."""
        devices = list(self._peer)
        while True:
            timeout = None
            if self._queue:
                timeout = max(0.0, self._queue[0][0] - time.perf_counter() - _EARLY_S)
            readable, _, _ = select.select([*devices, control], [], [], timeout)
            now = time.perf_counter()
            for fd in readable:
                if fd != control:
                    self._receive(fd, now)
            self._send_due()
            if control in readable:
                chunk = os.read(control, 4096)
                if not chunk:
                    return
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    if line.strip() == b"stats":
                        print(json.dumps(self.stats()), flush=True)


def raise_priority() -> str:
    """Run ahead of the processes it serves, as a network would: real-time FIFO scheduling
    when allowed (root), else a lower nice value; returns which. The loop is bounded (it
    blocks in select whenever nothing is due), and the kernel keeps 5% of each second for
    others by default (sched_rt_runtime_us)."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
        return "SCHED_FIFO 20"
    with contextlib.suppress(OSError):
        os.nice(-10)
        return "nice -10"
    return "normal"


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    control = sys.stdin.fileno()
    received = b""
    while b"\n" not in received:
        chunk = os.read(control, 65536)
        if not chunk:
            return 1
        received += chunk
    line, rest = received.split(b"\n", 1)
    spec = json.loads(line)
    fds: list[int] = []
    try:
        fds = [open_tun(name) for name in spec["devices"]]
    except OSError as exc:
        print(json.dumps({"error": f"cannot create TUN devices: {exc}"}), flush=True)
        return 1
    router = DelayRouter(fds[0], fds[1], {(s, d): float(v) for s, d, v in spec["one_way_s"]})
    router.scheduling = raise_priority()
    print(json.dumps({"ready": True, "scheduling": router.scheduling}), flush=True)
    router.run(control, rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
