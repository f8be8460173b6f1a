"""``dns sweep`` against the lab's authoritative DNS (ECS latency-policy answers): it flags
exactly the subnets the scenario misroutes, and nothing when the world is healthy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import LabWorld

from monitor.aws.route53 import parse_subnets, sweep, vantage_subnets
from monitor.cli import main
from monitor.config import load_config
from monitor.lab import LabHandle


@pytest.fixture
def lab(lab_world: LabWorld) -> LabHandle:
    return lab_world("misrouted")  # dub is answered with us-east-1


def subnets_file(lab: LabHandle, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A subnets file with each vantage point's subnet and location, and vantage → subnet."""
    config = load_config(lab.config_path).config
    lines = ["# subnet location (from the lab's vantage points)"]
    subnet_of = {}
    for name, vantage in config.vantage_points.items():
        assert vantage.client_subnet is not None
        assert vantage.location is not None
        lines.append(f"{vantage.client_subnet} {vantage.location}  {name}")
        subnet_of[name] = vantage.client_subnet
    file = tmp_path / "subnets.txt"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return file, subnet_of


def test_sweep_flags_exactly_the_misrouted_subnets(lab: LabHandle, tmp_path: Path) -> None:
    config = load_config(lab.config_path).config
    file, subnet_of = subnets_file(lab, tmp_path)
    subnets = parse_subnets(file.read_text(encoding="utf-8"))

    rows = asyncio.run(sweep(config, subnets))
    flagged = {r.subnet for r in rows if r.mismatch}
    assert flagged == {subnet_of["dub"]}
    dub = next(r for r in rows if r.subnet == subnet_of["dub"])
    assert (dub.answered_region, dub.nearest_region) == ("us-east-1", "eu-west-1")
    assert all(r.error is None for r in rows)

    lab.add_fault({"kind": "misroute", "vantage": "sin", "answer": "eu-west-1"})
    try:
        rows = asyncio.run(sweep(config, vantage_subnets(config)))
    finally:
        lab.reset_faults()
    assert {r.subnet for r in rows if r.mismatch} == {subnet_of["dub"], subnet_of["sin"]}

    lab.clear_faults()
    try:
        rows = asyncio.run(sweep(config, subnets))
    finally:
        lab.reset_faults()
    assert not [r for r in rows if r.mismatch]
    assert [r.answered_region for r in rows] == [r.nearest_region for r in rows]


def test_sweep_cli_prints_the_routing_map(lab: LabHandle, tmp_path: Path) -> None:
    file, subnet_of = subnets_file(lab, tmp_path)
    result = CliRunner().invoke(main, ["dns", "sweep", "--config", str(lab.config_path),
                                       "--subnets", str(file)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["SUBNET", "LOCATION", "ANSWERED", "NEAREST"]
    [flagged] = [line for line in lines if "MISMATCH" in line]
    assert flagged.split()[:4] == [subnet_of["dub"], "DUB", "us-east-1", "eu-west-1"]
    assert lines[-1] == "3 subnets: 1 mismatched, 0 without an answer"

    as_json = CliRunner().invoke(main, ["dns", "sweep", "--config", str(lab.config_path),
                                        "--json"])
    assert as_json.exit_code == 1, as_json.output
    assert '"mismatch": true' in as_json.output


def test_explain_cli_sets_route53_against_what_the_lab_answers(
        lab: LabHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Route 53's side through the Stubber (its API model, not AWS); the probe's side is real:
    the lab's authoritative DNS with ECS and the vantage points' resolver."""
    from botocore.stub import Stubber

    import monitor.aws.clients

    document = yaml.safe_load(lab.config_path.read_text(encoding="utf-8"))
    document["alarms"] = {"hosted_zone_id": "Z0123456789ABCDEFGHIJ"}
    file = tmp_path / "with-zone.yaml"
    file.write_text(yaml.safe_dump(document), encoding="utf-8")
    config = load_config(file).config
    address = {region: settings.addresses[0] for region, settings in config.regions.items()}

    client = monitor.aws.clients.route53_client(endpoint_url="http://127.0.0.1:9")
    stub = Stubber(client)
    # Route 53 believes every vantage point gets its nearest region; the lab misroutes dub
    for name in config.vantage_points:
        nearest = lab.scenario.nearest_region(name)
        stub.add_response("test_dns_answer", {
            "Nameserver": "ns-1.awsdns-01.org", "RecordName": config.service.origin_name,
            "RecordType": "A", "RecordData": [address[nearest]], "ResponseCode": "NOERROR",
            "Protocol": "UDP"})
    monkeypatch.setattr(monitor.aws.clients, "route53_client", lambda **kwargs: client)
    with stub:
        result = CliRunner().invoke(main, ["dns", "explain", "--config", str(file)])
        stub.assert_no_pending_responses()
    assert result.exit_code == 1, result.output
    verdicts = {line.split(" ")[0]: line.rsplit(": ", 1)[1]
                for line in result.output.splitlines() if not line.startswith(" ")}
    assert verdicts == {"nyc": "agrees", "dub": "DISAGREES", "sin": "agrees"}
    assert f"authoritative   us-east-1 ({address['us-east-1']})" in result.output
