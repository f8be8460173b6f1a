"""Region attribution: header, then ALB addresses, then ip-ranges prefixes; conflicts reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.config import IpRangesSettings
from monitor.core.attribution import (
    IpRanges,
    IpRangesError,
    RegionDirectory,
    attribute,
    load_ip_ranges,
)

IP_RANGES = {
    "prefixes": [
        {"ip_prefix": "3.0.0.0/8", "region": "us-east-1", "service": "AMAZON"},
        {"ip_prefix": "3.248.0.0/13", "region": "eu-west-1", "service": "EC2"},
        {"ip_prefix": "13.32.0.0/15", "region": "GLOBAL", "service": "CLOUDFRONT"},
    ],
    "ipv6_prefixes": [
        {"ipv6_prefix": "2a05:d018::/36", "region": "eu-west-1", "service": "EC2"},
    ],
}


@pytest.fixture
def directory() -> RegionDirectory:
    return RegionDirectory(
        frozenset({"us-east-1", "eu-west-1"}),
        {"us-east-1": frozenset({"127.20.1.1"}), "eu-west-1": frozenset({"127.20.2.1"})},
        IpRanges.parse(IP_RANGES, "test"),
    )


def test_header_is_strongest(directory: RegionDirectory) -> None:
    found = attribute(directory, header_regions=("eu-west-1",), addresses=["127.20.2.1"])
    assert (found.region, found.source, found.conflicts) == ("eu-west-1", "header", ())


def test_alb_address_then_longest_prefix(directory: RegionDirectory) -> None:
    assert attribute(directory, addresses=["127.20.1.1"]).region == "us-east-1"
    by_prefix = attribute(directory, addresses=["3.250.1.1"])  # in /8 (us) and /13 (eu)
    assert (by_prefix.region, by_prefix.source) == ("eu-west-1", "ip_ranges")
    assert attribute(directory, addresses=["2a05:d018::1"]).region == "eu-west-1"


def test_global_prefixes_and_strangers_are_unknown(directory: RegionDirectory) -> None:
    assert attribute(directory, addresses=["13.32.0.1"]).region is None
    assert attribute(directory, addresses=["192.0.2.1"]).source == "none"


def test_header_and_address_that_disagree_are_reported(directory: RegionDirectory) -> None:
    found = attribute(directory, header_regions=("eu-west-1",), addresses=["127.20.1.1"])
    assert found.region == "eu-west-1"
    assert found.conflicts == ("header says eu-west-1, alb_address 127.20.1.1 says us-east-1",)
    assert found.disputed
    assert not attribute(directory, header_regions=("eu-west-1",),
                         addresses=["127.20.2.1"]).disputed


def test_an_answer_with_addresses_of_two_regions_names_both_addresses(
        directory: RegionDirectory) -> None:
    found = attribute(directory, addresses=["127.20.1.1", "127.20.2.1"])
    assert found.conflicts == (
        "alb_address 127.20.1.1 says us-east-1, alb_address 127.20.2.1 says eu-west-1",)


def test_unconfigured_region_in_header_is_reported(directory: RegionDirectory) -> None:
    found = attribute(directory, header_regions=("sa-east-1",))
    assert any("not a configured region" in c for c in found.conflicts)


def test_ip_ranges_from_file(tmp_path: Path) -> None:
    path = tmp_path / "ip-ranges.json"
    path.write_text(json.dumps(IP_RANGES))
    ranges = load_ip_ranges(IpRangesSettings(file=path))
    assert ranges is not None
    assert ranges.region_of("3.1.2.3") == "us-east-1"


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "invalid JSON at line 1"),
    ('{"prefixes": [{"ip_prefix": "3.0.0.0/33", "region": "x"}]}', r"prefixes\[0\]: bad entry"),
    ('{"prefixes": 5}', "prefixes is not a list"),
])
def test_bad_ip_ranges_name_the_source(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ip-ranges.json"
    path.write_text(text)
    with pytest.raises(IpRangesError, match=message) as caught:
        load_ip_ranges(IpRangesSettings(file=path))
    assert str(path) in str(caught.value)
