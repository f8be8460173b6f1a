"""Path judges: one file per path, one entry each in :data:`PATH_JUDGES`.

A judge is a pure function of :class:`~monitor.core.evidence.PathInputs`; it returns ``None`` when
the path is not configured (e.g. no CDN name).
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.core.evidence import PathInputs
from monitor.core.model import Path, PathResult
from monitor.core.paths.cdn import judge_cdn
from monitor.core.paths.dns import judge_dns
from monitor.core.paths.origin import judge_origin

__all__ = ["PATH_JUDGES", "PathJudge"]

PathJudge = Callable[[PathInputs], PathResult | None]

PATH_JUDGES: dict[Path, PathJudge] = {
    Path.DNS: judge_dns,
    Path.ORIGIN: judge_origin,
    Path.CDN: judge_cdn,
}
