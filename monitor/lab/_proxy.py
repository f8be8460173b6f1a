"""The delay proxy: a TCP relay in front of a server that holds every chunk, each way, for the
one-way delay of the client's round trip, so TLS handshakes and first bytes pay the injected
latency. Chunks are scheduled by due time (a constant delay per connection keeps them in order),
never by sleeping after each read, so throughput is not serialised.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Literal, Protocol

__all__ = ["ConnectionPolicy", "DelayProxy", "InlineUpstream", "LatenessLog", "Sink",
           "WakeEstimate", "listen_shared", "tight_timer_slack"]

_HIGH_WATER = 1 << 20  # bytes held in one direction before the sender is paused
_LOW_WATER = 1 << 18
_BLACKHOLE_HOLD_S = 120.0  # a blackholed connection is dropped after this, so nothing leaks
_EARLY_S = 20e-6  # flush chunks due this close to now rather than waking again
# a timer fires late by the time the CPU takes to wake (~0.25 ms for an idle VM CPU, ~0.05 ms
# for a busy one with the world's timer slack at 1 ns): wake that much early, spin the rest
_WAKE_AHEAD_MAX_S = 300e-6
_WAKE_ALPHA = 0.05

_LATE_S = 0.0005  # a chunk sent later than this after its due time is recorded
_KEEP_LATE = 20_000
LATENESS_BUCKET_S = 50e-6
"""Width of a bucket of the delivery-lateness histogram (:attr:`LatenessLog.histogram`)."""
_LATENESS_BUCKETS = 200  # 0–10 ms; the last bucket holds everything later

_Marker = Literal["eof", "close"]


class Sink(Protocol):
    """Where a direction delivers: an asyncio transport, or a server run in the proxy's own
    process (:data:`InlineUpstream`)."""

    def write(self, data: bytes) -> None: ...

    def can_write_eof(self) -> bool: ...

    def write_eof(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...


InlineUpstream = Callable[[Callable[[bytes | _Marker], None], Callable[[], None]], Sink]
"""A server run inside the proxy: given where its bytes go back to the client (after the
delay) and what to call once it has closed, the sink the client's bytes are delivered to
(after the delay)."""


class LatenessLog:
    """When the lab was late: (due, sent) in monotonic seconds, for every chunk the proxy sent
    later than due (a busy or descheduled lab process). Lab-only: the world's control endpoint
    serves it (``GET /lateness``) so a round can leave out samples the lab itself disturbed.
    (A ticker in the lab's loop would also see stalls while no chunk is due, but costs ~5 ms of
    the lab's CPU per sample in select() wake-ups: measured, and left out.)"""

    def __init__(self) -> None:
        self._late: deque[tuple[float, float]] = deque(maxlen=_KEEP_LATE)
        self.recorded = 0  # late deliveries recorded since the start (a cursor for :meth:`after`)
        # every delivery's lateness, in LATENESS_BUCKET_S steps (a bounded, cheap record)
        self.histogram = [0] * (_LATENESS_BUCKETS + 1)

    def note(self, due: float, sent: float) -> None:
        late = sent - due
        self.histogram[min(_LATENESS_BUCKETS, max(0, int(late / LATENESS_BUCKET_S)))] += 1
        if late > _LATE_S:
            self._late.append((due, sent))
            self.recorded += 1

    def since(self, start: float) -> list[tuple[float, float]]:
        return [item for item in self._late if item[1] >= start]

    def after(self, cursor: int) -> list[tuple[float, float]]:
        """The late deliveries recorded after the first ``cursor`` (those still kept): a reader
        asking again with :attr:`recorded` gets only what is new, so a round's fetches stay
        small (the whole minute is up to 20,000 entries: encoding it stalled the lab 40–100
        ms)."""
        new = min(len(self._late), max(0, self.recorded - cursor))
        return list(itertools.islice(self._late, len(self._late) - new, None))


class WakeEstimate:
    """How late this process's timers fire, as a running average (capped at
    :data:`_WAKE_AHEAD_MAX_S`): a chunk's timer is set that much before its due time and the
    rest is spun. A fixed 0.3 ms ahead spun up to 0.3 ms per delivery, about 0.65 ms of
    the lab's CPU per sample; learning the wake-up keeps the spin to its jitter."""

    __slots__ = ("ahead_s",)

    def __init__(self) -> None:
        self.ahead_s = _WAKE_AHEAD_MAX_S  # until measured: as early as ever

    def observe(self, late_s: float) -> None:
        """A timer set for ``ahead_s`` before a due time fired ``late_s`` after it was set for."""
        late_s = min(max(late_s, 0.0), _WAKE_AHEAD_MAX_S)
        self.ahead_s += _WAKE_ALPHA * (late_s - self.ahead_s)


class ConnectionPolicy:
    """What the proxy does with one accepted connection, decided at accept time."""

    __slots__ = ("blackhole", "delay_s")

    def __init__(self, delay_s: float, *, blackhole: bool = False) -> None:
        self.delay_s = delay_s
        self.blackhole = blackhole


class _Direction:
    """One direction of a relayed connection: chunks leave ``delay_s`` after they arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float,
                 lateness: LatenessLog | None, wake: WakeEstimate) -> None:
        self._loop = loop
        self._delay_s = delay_s
        self._lateness = lateness
        self._wake = wake
        self._queue: deque[tuple[float, bytes | _Marker]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._pending = 0
        self._dest_paused = False
        self.source: asyncio.Transport | None = None
        self.dest: Sink | None = None
        self.finished = False  # the close marker went out
        self.dest_read_eof = False  # the peer behind ``dest`` has sent its EOF
        self.eof_written = False

    def push(self, item: bytes | _Marker) -> None:
        if self.finished:
            return
        self._queue.append((self._loop.time() + self._delay_s, item))
        if isinstance(item, bytes):
            self._pending += len(item)
        self._arm()
        self._update_source()

    def attach(self, dest: Sink) -> None:
        self.dest = dest
        self._arm()

    def set_dest_paused(self, paused: bool) -> None:
        self._dest_paused = paused
        self._update_source()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self.finished = True

    def _arm(self) -> None:
        if self._timer is None and self._queue and self.dest is not None:
            self._timer = self._loop.call_at(self._queue[0][0] - self._wake.ahead_s,
                                             self._flush)

    def _flush(self) -> None:
        timer, self._timer = self._timer, None
        dest = self.dest
        if dest is None:
            return
        due = self._queue[0][0] if self._queue else 0.0
        now = time.monotonic()  # the loop's clock
        if timer is not None:
            self._wake.observe(now - timer.when())
        if due - now > _WAKE_AHEAD_MAX_S:  # woken early for another reason: wait again
            self._arm()
            return
        while now < due:  # bounded by _WAKE_AHEAD_MAX_S
            now = time.monotonic()
        if self._lateness is not None and self._queue:
            self._lateness.note(due, now)
        limit = now + _EARLY_S
        while self._queue and self._queue[0][0] <= limit:
            _, item = self._queue.popleft()
            if item == "close":
                self.finished = True
                self._queue.clear()
                dest.close()
                return
            if item == "eof":
                self.eof_written = True
                if self.dest_read_eof:  # both ways are done: a half-open socket would leak
                    self.finished = True
                    self._queue.clear()
                    dest.close()
                    return
                self._write_eof(dest)
                continue
            if not isinstance(item, bytes):
                raise TypeError(f"unexpected queue item {item!r}")
            self._pending -= len(item)
            if not dest.is_closing():
                dest.write(item)
        self._arm()
        self._update_source()

    @staticmethod
    def _write_eof(dest: Sink) -> None:
        if dest.is_closing():
            return
        try:
            if dest.can_write_eof():
                dest.write_eof()
            else:
                dest.close()
        except OSError:
            dest.abort()  # the peer is already gone

    def _update_source(self) -> None:
        source = self.source
        if source is None or source.is_closing():
            return
        hold = self._dest_paused or self._pending > _HIGH_WATER
        if hold and source.is_reading():
            source.pause_reading()
        elif not hold and self._pending < _LOW_WATER and not source.is_reading():
            source.resume_reading()


class _Relay:
    """One proxied connection: client side, upstream side and the two directions between them."""

    def __init__(self, proxy: DelayProxy, delay_s: float) -> None:
        loop = proxy.loop
        self.proxy = proxy
        self.upward = _Direction(loop, delay_s, proxy.lateness, proxy.wake)
        self.downward = _Direction(loop, delay_s, proxy.lateness, proxy.wake)
        self.client: asyncio.Transport | None = None
        self.upstream: Sink | None = None
        self.connect_task: asyncio.Task[None] | None = None

    def abort(self) -> None:
        self.upward.cancel()
        self.downward.cancel()
        if self.connect_task is not None:
            self.connect_task.cancel()
        for transport in (self.client, self.upstream):
            if transport is not None:
                transport.abort()

    def side_lost(self) -> None:
        client_gone = self.client is None or self.client.is_closing()
        upstream_gone = self.upstream is None or self.upstream.is_closing()
        if client_gone and upstream_gone and self.connect_task is None:
            self.proxy.relays.discard(self)


class _ClientSide(asyncio.Protocol):
    def __init__(self, proxy: DelayProxy) -> None:
        self._proxy = proxy
        self._relay: _Relay | None = None
        self._sink_timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("the delay proxy needs a stream transport")
        self._transport = transport
        proxy = self._proxy
        peer = transport.get_extra_info("peername")
        if not proxy.admit():
            transport.abort()  # the world's select() loop must stay below FD_SETSIZE
            return
        policy = proxy.policy(peer[0] if peer else "")
        if policy is None:
            transport.abort()
            return
        if policy.blackhole:
            proxy.sinks.add(transport)
            self._sink_timer = proxy.loop.call_later(_BLACKHOLE_HOLD_S, transport.abort)
            return
        relay = _Relay(proxy, policy.delay_s)
        relay.client = transport
        relay.upward.source = transport
        relay.downward.attach(transport)
        proxy.relays.add(relay)
        self._relay = relay
        if proxy.inline is not None:  # the server runs here: no second connection to make
            relay.upstream = proxy.inline(relay.downward.push, relay.side_lost)
            relay.upward.attach(relay.upstream)
            return
        relay.connect_task = proxy.loop.create_task(self._connect(relay))

    async def _connect(self, relay: _Relay) -> None:
        proxy = self._proxy
        try:
            transport, _ = await proxy.loop.create_connection(
                lambda: _UpstreamSide(relay), proxy.upstream_host, proxy.upstream_port
            )
        except OSError:
            if relay.client is not None:
                relay.client.abort()
            return
        finally:
            relay.connect_task = None
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("the delay proxy needs a stream transport")
        relay.upstream = transport
        relay.downward.source = transport
        relay.upward.attach(transport)

    def data_received(self, data: bytes) -> None:
        if self._relay is not None:
            self._relay.upward.push(data)

    def eof_received(self) -> bool:
        if self._relay is None:
            return False
        self._relay.upward.push("eof")
        self._relay.downward.dest_read_eof = True
        return not self._relay.downward.eof_written  # stay half-open only while needed

    def pause_writing(self) -> None:
        if self._relay is not None:
            self._relay.downward.set_dest_paused(True)

    def resume_writing(self) -> None:
        if self._relay is not None:
            self._relay.downward.set_dest_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._sink_timer is not None:
            self._sink_timer.cancel()
        if self._transport is not None:
            self._proxy.sinks.discard(self._transport)
        if self._relay is not None:
            self._relay.upward.push("close")
            self._relay.side_lost()


class _UpstreamSide(asyncio.Protocol):
    def __init__(self, relay: _Relay) -> None:
        self._relay = relay

    def data_received(self, data: bytes) -> None:
        self._relay.downward.push(data)

    def eof_received(self) -> bool:
        self._relay.downward.push("eof")
        self._relay.upward.dest_read_eof = True
        return not self._relay.upward.eof_written

    def pause_writing(self) -> None:
        self._relay.upward.set_dest_paused(True)

    def resume_writing(self) -> None:
        self._relay.upward.set_dest_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._relay.downward.push("close")
        self._relay.side_lost()


class DelayProxy:
    """Listens on a public address; relays each connection to ``upstream`` with its delay.

    ``policy(client_address)`` decides per connection: the one-way delay, a blackhole, or
    None to refuse (reset) the connection; ``admit()`` False resets it too (a budget of open
    connections shared by the world). With ``inline``, the server runs in this process on the
    delayed bytes (no connection to ``upstream_host``: a lab origin costs half the sockets,
    system calls and loop events per sample).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str, upstream_host: str,
                 upstream_port: int, policy: Callable[[str], ConnectionPolicy | None],
                 *, admit: Callable[[], bool] = lambda: True,
                 lateness: LatenessLog | None = None, wake: WakeEstimate | None = None,
                 inline: InlineUpstream | None = None) -> None:
        self.loop = loop
        self.inline = inline
        self.lateness = lateness
        self.wake = wake if wake is not None else WakeEstimate()  # shared by a world's proxies
        self.address = address
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.policy = policy
        self.admit = admit
        self.relays: set[_Relay] = set()
        self.sinks: set[asyncio.Transport] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def listen(self, port: int) -> int:
        """Start listening on ``port`` (0: a free one); return the port."""
        if self._server is None:
            self._server = await self.loop.create_server(
                lambda: _ClientSide(self), self.address, port, backlog=256
            )
            self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close_listener(self) -> None:
        """Stop accepting (new connections are refused) and drop every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_connections()

    def drop_connections(self) -> None:
        for relay in list(self.relays):
            relay.abort()
        self.relays.clear()
        for sink in list(self.sinks):
            sink.abort()
        self.sinks.clear()


_PORT_ATTEMPTS = 20


async def listen_shared(proxies: list[DelayProxy]) -> int:
    """Start every proxy listening on one common port (the config's ``service.port``): the
    first on a port the kernel picks, the others on it, again on a new one when it is taken."""
    for _ in range(_PORT_ATTEMPTS):
        port = await proxies[0].listen(0)
        try:
            for proxy in proxies[1:]:
                await proxy.listen(port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            for proxy in proxies:
                proxy.close_listener()
            continue
        return port
    raise OSError(errno.EADDRINUSE, f"no common free port after {_PORT_ATTEMPTS} attempts")


_PR_SET_TIMERSLACK = 29


def tight_timer_slack() -> bool:
    """Ask Linux to fire this process's timers on time (timer slack 1 ns instead of 50 µs: a
    select() timeout then overshoots ~0.04 ms, not ~0.09 ms, measured here); False where the
    call is not available. For the lab's process only: its delays are its product."""
    try:
        import ctypes  # local: only the world's process asks

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
