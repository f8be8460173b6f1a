"""Exit codes: 0 ok, 1 routing problem, 2 could not run, 3 nothing measured — each from its cause,
and every routewatch error turned into its code in one place (monitor.cli.errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.cli.errors import CliError, error_lines, exit_code_for
from monitor.config import ConfigError
from monitor.config.loader import ConfigProblem
from monitor.core import model
from monitor.core.model import RoutingState
from monitor.core.report import (
    EXIT_ERROR,
    EXIT_NOTHING_MEASURED,
    EXIT_OK,
    EXIT_ROUTING_PROBLEM,
    DocumentError,
    exit_code,
)
from monitor.round.run import UnknownVantagePoint
from probes.errors import DnsTimeout, RoutewatchError

ROOT = Path(__file__).resolve().parents[2]


def a_round(state: RoutingState, *, healthy: bool = True) -> model.RoundResult:
    verdict = model.RoutingVerdict(state, "eu-west-1", "eu-west-1", 0.0)
    row = model.RegionLatency("eu-west-1", 0.01 if healthy else None, healthy)
    vantage = model.VantageRound("dub", 0.0, 0.1, (row,),
                                 (model.PathResult(model.Path.DNS, verdict),))
    return model.RoundResult((vantage,), 0.0, 0.1)


@pytest.mark.parametrize(("state", "healthy", "strict", "code"), [
    (RoutingState.OK, True, False, EXIT_OK),
    (RoutingState.FAILOVER, True, False, EXIT_OK),
    (RoutingState.FAILOVER, True, True, EXIT_ROUTING_PROBLEM),
    (RoutingState.MISROUTED, True, False, EXIT_ROUTING_PROBLEM),
    (RoutingState.UNKNOWN, True, False, EXIT_ROUTING_PROBLEM),
    (RoutingState.UNKNOWN, False, False, EXIT_NOTHING_MEASURED),
])
def test_a_rounds_exit_code(state: RoutingState, healthy: bool, strict: bool, code: int) -> None:
    assert exit_code(a_round(state, healthy=healthy), strict=strict) == code


def test_the_codes_are_distinct() -> None:
    assert len({EXIT_OK, EXIT_ROUTING_PROBLEM, EXIT_ERROR, EXIT_NOTHING_MEASURED}) == 4


@pytest.mark.parametrize("error", [
    CliError("bad option"), ConfigError("x.yaml", [ConfigProblem("service", "missing")]),
    DocumentError("not a round"), UnknownVantagePoint("nope"), DnsTimeout("no answer"),
])
def test_every_routewatch_error_could_not_run(error: RoutewatchError) -> None:
    assert exit_code_for(error) == EXIT_ERROR


def test_a_configuration_error_lists_every_problem() -> None:
    error = ConfigError("x.yaml", [ConfigProblem("service.port", "not a port", 3),
                                   ConfigProblem("regions", "empty", 5)])
    assert error_lines(error) == ["error: invalid configuration x.yaml:",
                                  "  line 3: service.port: not a port", "  line 5: regions: empty"]


@pytest.mark.parametrize("args", [
    ["check", "--config", str(ROOT / "tests/config/invalid-unknown-key.yaml")],
    ["check", "--config", "/nonexistent/routewatch.yaml"],
    ["check"],
    ["config", "validate", str(ROOT / "tests/config/invalid-types.yaml")],
])
def test_a_command_that_cannot_run_exits_2_without_a_traceback(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == EXIT_ERROR, result.output
    assert "error:" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
