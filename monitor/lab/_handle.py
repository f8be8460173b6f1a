"""Start a lab world in a child process and control it from the caller."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from monitor.config import ConfigProblem
from monitor.lab._config_writer import lab_config, write_config
from monitor.lab._control import LabControlError, control_request, one_fault_errors
from monitor.lab._scenario import Fault, Scenario, ScenarioError, load_scenario
from monitor.lab._world import run_world
from probes.errors import RoutewatchError
from probes.records import record

__all__ = ["LabError", "LabHandle", "LabStats", "load_lab_scenario", "looks_like_routewatch_config",
           "start_lab"]

# top-level keys only a routewatch configuration has, and region / vantage point keys likewise
_CONFIG_ONLY_KEYS = frozenset({"authoritative", "ip_ranges", "cdn", "serve", "cloudwatch",
                               "alarms"})
_CONFIG_REGION_KEYS = frozenset({"addresses", "alb_name"})
_CONFIG_VANTAGE_KEYS = frozenset({"resolver"})

_STOP_TIMEOUT_S = 5.0
_live_handles: weakref.WeakSet[LabHandle] = weakref.WeakSet()


class LabError(RoutewatchError):
    """The lab could not start, or refused a run-time change; ``errors`` lists why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class LabLateness:
    """The lab's own lateness in delivering delayed bytes, for a round judging samples taken
    against it (a :class:`monitor.round.lag.LagSource`; lab-only; :meth:`LabHandle.lateness_source`
    shares its fetches between the rounds that end together).

    The fetches are incremental (only what the lab recorded since the last one). What is kept is
    one list, grown at its end (so a judge's index of it is extended, not rebuilt), cut back to
    the last :data:`KEEP_S` seconds once its oldest entry is twice that old."""

    remote = True
    KEEP_S = 60.0

    def __init__(self, lab: LabHandle) -> None:
        self._lab = lab
        self._late: list[tuple[float, float]] = []
        self._cursor: int | None = None

    async def collect(self) -> None:
        started = time.monotonic()
        new, self._cursor = await asyncio.to_thread(self._lab.lateness_after, self._cursor)
        if self._late and self._late[0][1] < started - 2 * self.KEEP_S:
            self._late = [item for item in self._late if item[1] >= started - self.KEEP_S]
        self._late.extend(new)

    def stalls(self) -> list[tuple[float, float]]:
        return self._late


class SharedCollect:
    """:class:`LabLateness` as the rounds ask it (a :class:`monitor.round.lag.LagSource`): every
    vantage point's (and service's) round asks at its end (``collect``); the callers that ask
    while a fetch runs share the next one, so fifty rounds ending together cost two fetches, not
    fifty (each an RPC, run in a thread while other rounds still measure). Every caller still
    gets a fetch that started after it asked. One lock per event loop: a source may outlive the
    loop of one ``asyncio.run``."""

    def __init__(self, source: LabLateness) -> None:
        self._source = source
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())
        self._started = 0

    @property
    def remote(self) -> bool:
        return self._source.remote

    async def collect(self) -> None:
        asked = self._started
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            if self._started > asked:  # a fetch started after we asked, and it has finished
                return
            self._started += 1
            await self._source.collect()

    def stalls(self) -> list[tuple[float, float]]:
        return self._source.stalls()


@record
class LabStats:
    """What the lab's world process has cost (CPU seconds) and how late it delivered delayed
    bytes (a histogram of every delivery, ``bucket_seconds`` wide), cumulative since it started;
    :meth:`since` gives one interval's share."""

    cpu_seconds: float
    bucket_seconds: float
    lateness_histogram: tuple[int, ...]
    scheduling: str = "normal"  # how the world's process is scheduled (e.g. SCHED_FIFO 20)

    def since(self, earlier: LabStats) -> LabStats:
        return LabStats(self.cpu_seconds - earlier.cpu_seconds, self.bucket_seconds,
                        tuple(a - b for a, b in zip(self.lateness_histogram,
                                                    earlier.lateness_histogram, strict=True)),
                        self.scheduling)

    @property
    def deliveries(self) -> int:
        return sum(self.lateness_histogram)

    def lateness_quantile(self, q: float) -> float | None:
        """The delivery lateness below which a share ``q`` of deliveries fell (the upper edge of
        its bucket; the last bucket is open-ended); None without deliveries."""
        total = self.deliveries
        if total == 0:
            return None
        seen = 0
        for index, count in enumerate(self.lateness_histogram):
            seen += count
            if seen >= q * total:
                return (index + 1) * self.bucket_seconds
        return len(self.lateness_histogram) * self.bucket_seconds


class LabHandle:
    """A running lab world (its own process). Use as a context manager, or call :meth:`stop`.

    ``config_path`` is a routewatch config for this world; ``ca_path`` the CA its certificates
    chain to. ``regions`` / ``vantage_points`` / ``edges`` map names to loopback addresses.
    """

    def __init__(self, scenario: Scenario, process: multiprocessing.process.BaseProcess,
                 conn: Any, info: dict[str, Any], config_path: Path, ca_path: Path,
                 config_dict: dict[str, Any], workdir: Path, owns_workdir: bool) -> None:
        self.scenario = scenario
        self.process = process
        self._conn = conn
        self.config_path = config_path
        self.ca_path = ca_path
        self.config_dict = config_dict
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self.https_port: int = info["https_port"]
        self.dns_address: str = info["dns"]
        self.control_address: str = info["control"]
        self.regions: dict[str, str] = info["regions"]
        self.vantage_points: dict[str, str] = info["vantage_points"]
        self.edges: dict[str, str] = info["edges"]
        self._stopped = False
        self._lateness_source: SharedCollect | None = None

    @property
    def dns_host(self) -> str:
        return self.dns_address.rpartition(":")[0]

    @property
    def dns_port(self) -> int:
        return int(self.dns_address.rpartition(":")[2])

    @property
    def running(self) -> bool:
        return not self._stopped and self.process.is_alive()

    # --- faults ----------------------------------------------------------------------------------

    def faults(self) -> list[Fault]:
        """The faults active now."""
        document = self._control("GET", None)
        return [Fault.model_validate(f) for f in document["faults"]]

    def set_faults(self, faults: list[Fault | dict[str, Any]]) -> list[Fault]:
        """Replace the active faults; returns once the world applies them."""
        checked = self._check(faults)
        document = self._control("PUT", [f.as_dict() for f in checked])
        return [Fault.model_validate(f) for f in document["faults"]]

    def add_fault(self, fault: Fault | dict[str, Any]) -> list[Fault]:
        """Add one fault to the active ones; errors name its keys without a list index."""
        try:
            checked = self._check([fault])
            document = self._control("POST", checked[0].as_dict())
        except LabError as exc:
            raise LabError(one_fault_errors(exc.errors)) from None
        return [Fault.model_validate(f) for f in document["faults"]]

    def clear_faults(self) -> None:
        self._control("DELETE", None)

    def reset_faults(self) -> list[Fault]:
        """Back to the scenario's own faults."""
        return self.set_faults(list(self.scenario.faults))

    def _check(self, faults: list[Fault | dict[str, Any]]) -> list[Fault]:
        try:
            return self.scenario.check_faults(faults)
        except ScenarioError as exc:
            raise LabError([str(p) for p in exc.problems]) from None

    def _control(self, method: str, body: Any, path: str = "/faults") -> Any:
        if not self.running:
            raise LabError(["the lab world is not running"])
        try:
            return control_request(self.control_address, method, path, body)
        except LabControlError as exc:
            raise LabError(exc.errors) from None

    def lateness(self) -> list[tuple[float, float]]:
        """When the lab was late in the last minute: (due, sent) in monotonic seconds."""
        return self.lateness_after(None)[0]

    def stats(self) -> LabStats:
        """The world's CPU time and delivery lateness so far (see :class:`LabStats`)."""
        document = self._control("GET", None, "/stats")
        return LabStats(float(document["cpu_seconds"]), float(document["bucket_seconds"]),
                        tuple(int(n) for n in document["lateness_histogram"]),
                        str(document.get("scheduling", "normal")))

    def lateness_after(self, cursor: int | None) -> tuple[list[tuple[float, float]], int]:
        """The late deliveries recorded after ``cursor`` (None: the last minute's), and the
        cursor to ask with next time."""
        path = "/lateness" if cursor is None else f"/lateness?after={cursor}"
        document = self._control("GET", None, path)
        return ([(float(due), float(sent)) for due, sent in document["late"]],
                int(document["next"]))

    def lateness_source(self) -> SharedCollect:
        """The lab's lateness as a source for ``run_round(lag_sources=...)`` (one per world:
        each fetch asks only what is new since the last, and the rounds ending together share
        one)."""
        if self._lateness_source is None:
            self._lateness_source = SharedCollect(LabLateness(self))
        return self._lateness_source

    # --- life cycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the world and wait for its process; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(OSError, ValueError):
            self._conn.send("stop")
        self.process.join(_STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(_STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(_STOP_TIMEOUT_S)
        self._conn.close()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        _live_handles.discard(self)

    def __enter__(self) -> LabHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LabHandle {self.scenario.name or 'unnamed'} {state} pid={self.process.pid}>"


def looks_like_routewatch_config(document: Any) -> bool:
    """Whether a YAML document is a routewatch configuration rather than a lab scenario: it has
    a key only configurations have, or regions with ``addresses``/``alb_name``, or vantage points
    with a ``resolver``."""
    if not isinstance(document, dict):
        return False
    if _CONFIG_ONLY_KEYS & set(document):
        return True

    def entries(key: str) -> list[dict[str, Any]]:
        found = document.get(key)
        if not isinstance(found, dict):
            return []
        return [entry for entry in found.values() if isinstance(entry, dict)]

    return any(_CONFIG_REGION_KEYS & set(entry) for entry in entries("regions")) or any(
        _CONFIG_VANTAGE_KEYS & set(entry) for entry in entries("vantage_points"))


def load_lab_scenario(name_or_path: str | Path) -> Scenario:
    """:func:`load_scenario`, except that a routewatch configuration given where a scenario
    belongs is one plain problem (use ``--config``) instead of every key it does not share."""
    try:
        return load_scenario(name_or_path)
    except ScenarioError as exc:
        try:
            document = yaml.safe_load(Path(name_or_path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            raise exc from None
        if not looks_like_routewatch_config(document):
            raise
        raise ScenarioError(str(name_or_path), [ConfigProblem(
            "", f"this is a routewatch configuration, not a lab scenario: give it with --config "
                f"(e.g. routewatch check --config {name_or_path}); a scenario is a built-in name "
                f"(routewatch lab list) or a file with regions and vantage_points with their "
                f"latency_ms")]) from None


def _start_ignoring_ctrl_c(process: multiprocessing.process.BaseProcess) -> None:
    """Start the child with SIGINT ignored from its first instruction (an ignored disposition
    survives exec): Ctrl-C is for the parent, which stops the world; otherwise a Ctrl-C during
    the child's imports prints a traceback from it."""
    if threading.current_thread() is not threading.main_thread():
        process.start()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)


def start_lab(scenario: Scenario | str | Path, *, workdir: Path | None = None,
              config_path: Path | None = None, control_port: int = 0,
              start_timeout_s: float = 30.0) -> LabHandle:
    """Start a world for ``scenario`` (a Scenario, a built-in name or a YAML path) in a child
    process; return once every server listens and the config is written.

    The config goes to ``config_path`` (default ``workdir/routewatch-lab.yaml``), the CA beside
    it as ``<stem>-ca.pem``. Without ``workdir`` a temporary one is made and removed at stop.
    ``control_port`` 0 picks a free port for the control endpoint (a taken port falls back too).
    The world is a ``spawn`` child process: as with any multiprocessing, a script calling this
    must do so under ``if __name__ == "__main__":``. Raises :class:`ScenarioError` for a bad
    scenario (a routewatch configuration given instead is said so plainly) and :class:`LabError`
    when the world cannot start.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_lab_scenario(scenario)
    owns_workdir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="routewatch-lab-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    config_file = (config_path or work / "routewatch-lab.yaml").absolute()
    ca_file = config_file.with_name(f"{config_file.stem}-ca.pem")

    context = multiprocessing.get_context("spawn")
    parent_conn, child_conn = context.Pipe(duplex=True)
    process = context.Process(
        target=run_world, name=f"routewatch-lab-{scenario.name or 'world'}", daemon=True,
        args=(child_conn, scenario.model_dump(mode="json"), str(ca_file), control_port,
              os.getpid()),
    )
    _start_ignoring_ctrl_c(process)
    child_conn.close()
    try:
        if not parent_conn.poll(start_timeout_s):
            raise LabError([f"the lab world did not start within {start_timeout_s:g} s"])
        message = parent_conn.recv()
    except (EOFError, OSError):
        message = {"error": f"the lab world exited during start-up (code {process.exitcode})"}
    except LabError as exc:
        message = {"error": str(exc)}
    if "ready" not in message:
        process.terminate()
        process.join(_STOP_TIMEOUT_S)
        parent_conn.close()
        if owns_workdir:
            shutil.rmtree(work, ignore_errors=True)
        raise LabError([message.get("error", "the lab world failed to start")])
    info = message["ready"]
    document = lab_config(scenario, https_port=info["https_port"], dns=info["dns"],
                          ca_file=ca_file)
    handle = LabHandle(scenario, process, parent_conn, info, config_file, ca_file, document,
                       work, owns_workdir)
    _live_handles.add(handle)
    try:
        write_config(config_file, document, scenario)
    except OSError as exc:
        handle.stop()
        raise LabError([f"cannot write the config {config_file}: {exc.strerror}"]) from None
    return handle


@atexit.register
def _stop_all() -> None:
    for handle in list(_live_handles):
        handle.stop()
