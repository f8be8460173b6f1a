"""ip-ranges.json attribution: the prefix index agrees with a longest-prefix scan, answers with
thousands of addresses are attributed by a bounded few, and the URL is never followed to
another host."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.attribution import (
    MAX_ATTRIBUTED_ADDRESSES,
    IpRanges,
    IpRangesError,
    RegionDirectory,
    attribute,
    fetch_ip_ranges,
)

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1", "GLOBAL")


def _scan(ranges: IpRanges, address: str) -> str | None:
    """The obvious longest-prefix match, the index must agree with it."""
    ip = ipaddress.ip_address(address)
    best: tuple[int, str] | None = None
    for network, region in ranges.prefixes:
        if region != "GLOBAL" and ip.version == network.version and ip in network \
                and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, region)
    return best[1] if best else None


v4_prefixes = st.builds(lambda a, n, r: (str(ipaddress.ip_network((a, n), strict=False)), r),
                        st.integers(0, 2**32 - 1), st.integers(0, 32), st.sampled_from(REGIONS))
v6_prefixes = st.builds(lambda a, n, r: (str(ipaddress.ip_network((a, n), strict=False)), r),
                        st.integers(0, 2**128 - 1), st.integers(0, 128), st.sampled_from(REGIONS))


@settings(max_examples=150, deadline=None)
@given(st.lists(v4_prefixes, max_size=40), st.lists(v6_prefixes, max_size=20),
       st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20),
       st.lists(st.integers(0, 2**128 - 1), max_size=10))
def test_index_agrees_with_a_longest_prefix_scan(v4: list[tuple[str, str]],
                                                 v6: list[tuple[str, str]],
                                                 a4: list[int], a6: list[int]) -> None:
    document = {"prefixes": [{"ip_prefix": p, "region": r} for p, r in v4],
                "ipv6_prefixes": [{"ipv6_prefix": p, "region": r} for p, r in v6]}
    ranges = IpRanges.parse(document, "<fuzz>")
    # addresses inside the prefixes too, not only random ones
    inside = [str(ipaddress.ip_network(p).network_address) for p, _ in v4 + v6]
    for address in [str(ipaddress.IPv4Address(a)) for a in a4] + \
            [str(ipaddress.IPv6Address(a)) for a in a6] + inside:
        assert ranges.region_of(address) == _scan(ranges, address)


def test_a_bad_address_has_no_region() -> None:
    ranges = IpRanges.parse({"prefixes": [{"ip_prefix": "0.0.0.0/0", "region": "x"}]}, "t")
    assert ranges.region_of("not-an-ip") is None


class _CountingDirectory(RegionDirectory):
    looked_up: list[str]

    def region_of_address(self, address: str) -> tuple[str | None, str]:
        self.looked_up.append(address)
        return super().region_of_address(address)


def test_an_answer_with_4000_addresses_is_attributed_by_a_bounded_few() -> None:
    directory = _CountingDirectory(frozenset({"us-east-1"}),
                                   {"us-east-1": frozenset({"127.20.1.1"})})
    object.__setattr__(directory, "looked_up", [])
    flood = ["127.20.1.1", *(f"10.{i // 256}.{i % 256}.1" for i in range(4000))]
    attribution = attribute(directory, addresses=flood)
    assert attribution.region == "us-east-1"
    assert len(directory.looked_up) == MAX_ATTRIBUTED_ADDRESSES


def test_a_redirect_to_another_host_is_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "ip-ranges.example":
            return httpx.Response(302, headers={"location": "https://elsewhere.example/x.json"})
        return httpx.Response(200, text='{"prefixes": []}')  # pragma: no cover - never asked

    with pytest.raises(IpRangesError, match="redirected to another host"):
        fetch_ip_ranges("https://ip-ranges.example/ip-ranges.json",
                        transport=httpx.MockTransport(answer))


def test_a_redirect_on_the_same_host_is_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old.json":
            return httpx.Response(301, headers={"location": "/new.json"})
        return httpx.Response(200, text='{"prefixes": []}')

    text = fetch_ip_ranges("https://ip-ranges.example/old.json",
                           transport=httpx.MockTransport(answer))
    assert text == '{"prefixes": []}'
