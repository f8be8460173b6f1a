"""Snapshots: a vantage point's latest round with what serving adds (hysteresis, counters), and
the store that replaces the whole snapshot after every round.

A :class:`Snapshot` is immutable: the serving side replaces it whole after every round
(:class:`SnapshotStore`), so a scrape reads one consistent set of rounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from types import MappingProxyType

from monitor.config import DEFAULT_SERVICE, Config
from monitor.core.hysteresis import Hysteresis, observe_paths
from monitor.core.model import Path, RoutingState, RoutingVerdict, VantageRound
from monitor.core.paths import enabled_paths
from monitor.domain.reasons import Reason
from monitor.metrics.catalogue import MetricType, bounded_reason, error_path, metric
from probes.records import record

__all__ = [
    "LabelSpace",
    "RoundKey",
    "Snapshot",
    "SnapshotStore",
    "VantageSnapshot",
    "observed_states",
    "path_verdict",
]


@record
class LabelSpace:
    """The bounded label values the configuration allows."""

    vantage_points: tuple[str, ...]
    regions: tuple[str, ...]
    paths: tuple[Path, ...]
    interval_s: float
    hysteresis_rounds: int
    services: tuple[str, ...] = (DEFAULT_SERVICE,)

    @classmethod
    def from_config(cls, config: Config) -> LabelSpace:
        paths: list[Path] = []  # every path some service has, in table order
        for _, view in config.service_views():
            paths.extend(p for p in enabled_paths(view) if p not in paths)
        return cls(tuple(config.vantage_points), tuple(config.regions),
                   tuple(sorted(paths, key=list(Path).index)), config.serve.interval_s,
                   config.serve.hysteresis_rounds, config.service_names)

    def round_keys(self) -> list[RoundKey]:
        """Every (service, vantage point) that has rounds, in configuration order."""
        return [(service, vantage) for service in self.services
                for vantage in self.vantage_points]


RoundKey = tuple[str, str]
"""(service, vantage point): whose latest round a snapshot entry is."""


@record
class VantageSnapshot:
    """A vantage point's latest round with what serving adds: hysteresis and counters."""

    result: VantageRound
    routing: Mapping[Path, Hysteresis]
    finished_at: float
    rounds_total: int = 1
    errors_total: Mapping[tuple[str, str], int] = field(
        default_factory=lambda: MappingProxyType({}))

    @classmethod
    def single(cls, result: VantageRound, paths: tuple[Path, ...] = tuple(Path)) -> VantageSnapshot:
        """A snapshot of one round on its own (no history), e.g. for a Lambda invocation."""
        routing = observe_paths(None, observed_states(result, paths), 1)
        return cls(result, MappingProxyType(routing), result.started_at + result.duration_seconds,
                   1, MappingProxyType(_count_errors({}, result)))


@record
class Snapshot:
    """Everything one scrape exports."""

    space: LabelSpace
    vantage: Mapping[RoundKey, VantageSnapshot]
    started_at: float
    reload_successful: bool = True
    reload_success_at: float | None = None
    counters: Mapping[tuple[str, tuple[str, ...]], float] = field(
        default_factory=lambda: MappingProxyType({}))
    """Process-wide counters outside the rounds (e.g. an exporter's failures): (name, labels)."""

    def entries(self) -> list[VantageSnapshot]:
        """Every latest round, in configuration order (services, then vantage points)."""
        return [entry for key in self.space.round_keys() if (entry := self.vantage.get(key))]

    @property
    def last_round_finished_at(self) -> float | None:
        return max((v.finished_at for v in self.vantage.values()), default=None)


def path_verdict(result: VantageRound, path: Path) -> RoutingVerdict:
    """The verdict of a path in a round; a path missing from the round is ``unknown``."""
    found = result.path(path)
    if found is not None:
        return found.verdict
    reason = Reason.ROUND_FAILED if not result.success else Reason.NOT_PROBED
    return RoutingVerdict(RoutingState.UNKNOWN, None, None, None, reason,
                          f"no {path} result in this round")


def observed_states(result: VantageRound, paths: tuple[Path, ...]) -> dict[Path, RoutingState]:
    return {path: path_verdict(result, path).state for path in paths}


def _count_errors(previous: Mapping[tuple[str, str], int],
                  result: VantageRound) -> dict[tuple[str, str], int]:
    counts = dict(previous)
    for error in result.errors:
        key = (error_path(error.path), bounded_reason(error.reason))
        counts[key] = counts.get(key, 0) + 1
    return counts


class SnapshotStore:
    """Holds the current :class:`Snapshot` and replaces it whole on every change.

    Readers (the scrape thread) take :meth:`current` without locking: replacing a reference is
    atomic, and nothing reachable from a snapshot is ever mutated.
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._snapshot = Snapshot(LabelSpace.from_config(config), MappingProxyType({}), now,
                                  True, now)

    def current(self) -> Snapshot:
        return self._snapshot

    def publish(self, result: VantageRound) -> VantageSnapshot | None:
        """Record a finished round; a round of a vantage point no longer configured is dropped."""
        with self._lock:
            snapshot = self._snapshot
            space = snapshot.space
            key = (result.service, result.vantage)
            if result.vantage not in space.vantage_points or result.service not in space.services:
                return None
            before = snapshot.vantage.get(key)
            routing = observe_paths(before.routing if before else None,
                                    observed_states(result, space.paths), space.hysteresis_rounds)
            entry = VantageSnapshot(
                result=result,
                routing=MappingProxyType(routing),
                finished_at=self._clock(),
                rounds_total=(before.rounds_total if before else 0) + 1,
                errors_total=MappingProxyType(
                    _count_errors(before.errors_total if before else {}, result)),
            )
            vantage = dict(snapshot.vantage)
            vantage[key] = entry
            self._snapshot = replace(snapshot, vantage=MappingProxyType(vantage))
            return entry

    def reconfigure(self, config: Config) -> None:
        """Adopt a new configuration: removed vantage points and services vanish, the others
        keep history."""
        with self._lock:
            space = LabelSpace.from_config(config)
            keys = set(space.round_keys())
            kept = {key: entry for key, entry in self._snapshot.vantage.items() if key in keys}
            self._snapshot = replace(self._snapshot, space=space, vantage=MappingProxyType(kept),
                                     reload_successful=True, reload_success_at=self._clock())

    def reload_failed(self) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, reload_successful=False)

    def count(self, name: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """Add to a process-wide counter of :data:`METRICS` (0 creates its series)."""
        spec = metric(name)
        if spec.type is not MetricType.COUNTER or len(labels) != len(spec.labels) \
                or amount < 0:
            raise ValueError(f"{spec.name} cannot count {amount} for labels {labels}")
        with self._lock:
            counters = dict(self._snapshot.counters)
            key = (spec.name, labels)
            counters[key] = counters.get(key, 0.0) + amount
            self._snapshot = replace(self._snapshot, counters=MappingProxyType(counters))
