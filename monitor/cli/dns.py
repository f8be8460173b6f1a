"""``routewatch dns explain|sweep``: what Route 53 answers, and for whom.

Exit codes: 0 every answer is where it should be, 1 a disagreement or mismatch, 2 an error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from monitor.aws.route53 import (
    DnsExplanation,
    SubnetLocation,
    SubnetsFileError,
    SweepRow,
    explain,
    parse_subnets,
    sweep,
    vantage_subnets,
)
from monitor.cli.options import config_options, config_source, json_option, vantage_option
from monitor.cli.output import EXIT_ERROR, EXIT_OK, EXIT_ROUTING_PROBLEM, fail
from monitor.domain.text import printable

__all__ = ["dns"]


@click.group("dns")
def dns() -> None:
    """What Route 53 answers: explain it per vantage point, or sweep many client subnets."""


def _answer(addresses: tuple[str, ...] | None, region: str | None) -> str:
    if addresses is None:
        return "-"
    return f"{region or '?'} ({', '.join(addresses) or 'no address'})"


def _explain_document(rows: list[DnsExplanation]) -> list[dict[str, object]]:
    return [{
        "vantage_point": r.vantage,
        "client_subnet": r.client_subnet,
        "route53": None if r.route53 is None else {
            "nameserver": r.route53.nameserver, "record_data": list(r.route53.record_data),
            "response_code": r.route53.response_code, "protocol": r.route53.protocol,
            "region": r.route53_region},
        "authoritative": None if r.authoritative is None else {
            "addresses": list(r.authoritative), "region": r.authoritative_region,
            "ecs_scope": r.authoritative_scope, "reason": r.authoritative_reason},
        "recursive": None if r.recursive is None else {
            "addresses": list(r.recursive), "region": r.recursive_region},
        "agrees": r.agrees,
        "error": r.error,
    } for r in rows]


@dns.command("explain")
@config_options()
@vantage_option
@json_option
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="Route 53 endpoint override.")
def explain_command(config_file: str | None, lab: str | None, vantage_points: tuple[str, ...],
                    as_json: bool, endpoint_url: str | None) -> None:
    """Ask Route 53 (TestDNSAnswer) what it answers each vantage point's client subnet and
    compare with what the probe resolves (needs alarms.hosted_zone_id)."""
    from monitor.aws.clients import AwsError, route53_client

    with config_source(config_file, lab) as source:
        config = source.loaded.config
        if not config.alarms.hosted_zone_id:
            fail("alarms.hosted_zone_id is not set: name the hosted zone of "
                 f"{config.service.origin_name}")
        unknown = [v for v in vantage_points if v not in config.vantage_points]
        if unknown:
            fail(f"unknown vantage point(s): {', '.join(unknown)}")
        try:
            client = route53_client(endpoint_url=endpoint_url)
        except AwsError as exc:
            fail(str(exc))
        rows = asyncio.run(explain(config, client,
                                   vantage_points=list(vantage_points) or None))
    if as_json:
        json.dump(_explain_document(rows), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for row in rows:
            verdict = {True: "agrees", False: "DISAGREES", None: "cannot tell"}[row.agrees]
            _say(f"{row.vantage} (subnet {row.client_subnet or 'none: no ECS'}): {verdict}")
            if row.route53 is not None:
                said = _answer(row.route53.record_data, row.route53_region)
                _say(f"  route 53 says   {said}"
                           f"  [{row.route53.response_code} from {row.route53.nameserver}]")
            if row.error:
                _say(f"  route 53 error  {row.error}")
            _say(f"  authoritative   {_answer(row.authoritative, row.authoritative_region)}"
                       + _not_specific(row.authoritative_reason, row.authoritative_scope))
            _say(f"  resolver        {_answer(row.recursive, row.recursive_region)}")
    if any(row.route53 is None for row in rows):
        raise SystemExit(EXIT_ERROR)
    raise SystemExit(EXIT_ROUTING_PROBLEM if any(r.agrees is False for r in rows) else EXIT_OK)


def _say(line: str) -> None:
    """One line for a person: what a peer sent (an answer, an error) is escaped."""
    click.echo(printable(line))


def _not_specific(reason: str | None, scope: int | None) -> str:
    """What an ``ecs_scope_zero`` answer means, after the answer (empty otherwise)."""
    if reason is None:
        return ""
    shown = "missing" if scope is None else f"/{scope}"
    return f"  [{reason}: ECS scope {shown}, not specific to the subnet]"


def _sweep_document(rows: list[SweepRow]) -> list[dict[str, object]]:
    return [{"subnet": r.subnet, "location": r.place, "answered_region": r.answered_region,
             "nearest_region": r.nearest_region, "mismatch": r.mismatch,
             "addresses": list(r.addresses), "server": r.server, "distance_km": r.distance_km,
             "error": r.error, "ecs_scope": r.ecs_scope, "reason": r.reason} for r in rows]


def render_sweep(rows: list[SweepRow]) -> list[str]:
    """The routing map as text lines: subnet → answered region → nearest region."""
    header = ("SUBNET", "LOCATION", "ANSWERED", "NEAREST", "")
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        if r.mismatch:
            flag = f"MISMATCH (+{r.extra_km:.0f} km)" if r.extra_km is not None else "MISMATCH"
        elif r.reason is not None:
            flag = _not_specific(r.reason, r.ecs_scope).strip(" []")
        elif r.error:
            flag = f"error: {r.error}"
        else:
            flag = "ok"
        table.append(tuple(printable(cell) for cell in (
            r.subnet, r.place, r.answered_region or "-", r.nearest_region or "-", flag)))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(row[i].ljust(widths[i]) for i in range(4)) + "  " + row[4]
             for row in table]
    mismatched = sum(1 for r in rows if r.mismatch)
    failed = sum(1 for r in rows if r.answered_region is None)
    unspecific = sum(1 for r in rows if r.reason is not None)
    lines.append(f"{len(rows)} subnets: {mismatched} mismatched, {failed} without an answer"
                 + (f", {unspecific} not specific to their subnet (ECS scope /0)"
                    if unspecific else ""))
    return [line.rstrip() for line in lines]


@dns.command("sweep")
@config_options()
@click.option("--subnets", "subnets_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Lines of 'SUBNET LOCATION' (IATA code or lat,lon); default: the vantage "
                   "points that have a client_subnet and a location.")
@json_option
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Queries in flight at once.")
def sweep_command(config_file: str | None, lab: str | None, subnets_file: Path | None,
                  as_json: bool, concurrency: int) -> None:
    """Query the authoritative servers with ECS for each subnet and map subnet → answered region
    → nearest region by distance, flagging mismatches (exit 1 if any)."""

    subnets: list[SubnetLocation] = []
    if subnets_file is not None:
        try:
            subnets = parse_subnets(subnets_file.read_text(encoding="utf-8"), str(subnets_file))
        except OSError as exc:
            fail(f"{subnets_file}: cannot read: {exc.strerror}")
        except UnicodeDecodeError:
            fail(f"{subnets_file}: not UTF-8 text")
        except SubnetsFileError as exc:
            fail(str(exc))
    with config_source(config_file, lab) as source:
        loaded = source.loaded
        if subnets_file is None:
            subnets = vantage_subnets(loaded.config)
            if not subnets:
                fail("no --subnets and no vantage point has both client_subnet and location")
        try:
            rows = asyncio.run(sweep(loaded.config, subnets, concurrency=concurrency))
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        json.dump(_sweep_document(rows), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for line in render_sweep(rows):
            click.echo(line)
    if all(r.answered_region is None or r.reason is not None for r in rows):
        if any(r.reason is not None for r in rows):
            click.echo("error: no answer was specific to its subnet (ECS scope /0 or missing): "
                       "the authoritative servers ignore EDNS Client Subnet, so the sweep cannot "
                       "tell where any subnet is sent", err=True)
        raise SystemExit(EXIT_ERROR)
    raise SystemExit(EXIT_ROUTING_PROBLEM if any(r.mismatch for r in rows) else EXIT_OK)
