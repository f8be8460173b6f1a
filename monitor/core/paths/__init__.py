"""The path table: one file per path, one :class:`PathSpec` each in :data:`PATHS`.

A path is how a client can reach the app (:class:`~monitor.core.model.Path`). Its entry says how
it is measured (the coroutine ``run_vantage`` starts), how it is judged (a pure function of
:class:`~monitor.core.evidence.PathInputs`), whether the configuration enables it, how many
checks it plans (the progress count) and whether it is an HTTP request with phases. The round, the
metric label space and the alarm planner all iterate this table; a new path is one new file plus
one entry here.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.config import Config
from monitor.core.evidence import Judgement, Measure, PathInputs
from monitor.core.model import IpFamily, Path
from monitor.core.paths.cdn import cdn_enabled, cdn_planned_checks, judge_cdn, measure_cdn
from monitor.core.paths.dns import dns_planned_checks, judge_dns, measure_dns
from monitor.core.paths.origin import judge_origin, measure_origin, origin_planned_checks
from probes.records import record

__all__ = ["PATHS", "PathJudge", "PathSpec", "always", "enabled_paths", "path_spec"]

PathJudge = Callable[[PathInputs], Judgement | None]
"""Judges one path; None when the path is not configured (e.g. no CDN name)."""


def always(config: Config) -> bool:
    """A path every configuration has."""
    return True


@record
class PathSpec:
    """Everything the rest of routewatch needs to know about one path."""

    path: Path
    measure: Measure
    judge: PathJudge
    enabled: Callable[[Config], bool]
    planned_checks: Callable[[Config], int]
    http: bool  # an HTTP request: it has phases, a status code and a first byte
    families: tuple[IpFamily, ...] = tuple(IpFamily)  # the address families it is measured in


PATHS: tuple[PathSpec, ...] = (
    PathSpec(Path.DNS, measure_dns, judge_dns, always, dns_planned_checks, http=False),
    PathSpec(Path.ORIGIN, measure_origin, judge_origin, always, origin_planned_checks,
             http=True),
    PathSpec(Path.CDN, measure_cdn, judge_cdn, cdn_enabled, cdn_planned_checks, http=True),
)
"""Every path, in the order results are reported."""


def path_spec(path: Path) -> PathSpec:
    return next(spec for spec in PATHS if spec.path is path)


def enabled_paths(config: Config, paths: tuple[PathSpec, ...] = PATHS) -> tuple[Path, ...]:
    """The paths this configuration measures, in table order."""
    return tuple(spec.path for spec in paths if spec.enabled(config))
