"""The routing page from round documents: matrix, markers, escaping, self-containment."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from page_dom import Element, cells, misrouted_paths, parse_html

from monitor.core.model import RoutingState
from monitor.page import LiveOptions, PageDocumentError, page_view, render_page
from monitor.page.render import LATENCY_BANDS, STATE_MARKERS, format_age, format_ms

NOW = 1_800_000_100.0
STARTED = datetime.fromtimestamp(NOW - 10, UTC).isoformat(timespec="milliseconds")
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>"\'&'


def path_doc(path: str, state: str, served: str | None, expected: str | None, *,
             penalty: float | None = 0.0, reason: str | None = None, detail: str = "",
             **extra: Any) -> dict[str, Any]:
    return {"path": path, "state": state, "served_region": served, "expected_region": expected,
            "penalty_seconds": penalty, "reason": reason, "detail": detail,
            "latency_seconds": 0.01, "phases": {}, "address": "127.20.1.1", "status": 200,
            "attribution": {"region": served, "source": "header", "conflicts": [],
                            "disputed": False},
            "notes": [], **extra}


def region_doc(region: str, latency: float | None, healthy: bool = True,
               reason: str | None = None) -> dict[str, Any]:
    return {"region": region, "latency_seconds": latency, "healthy": healthy,
            "samples_seconds": [] if latency is None else [latency], "reason": reason,
            "message": None if healthy else "connect refused"}


def vantage_doc(name: str, regions: list[dict[str, Any]], paths: list[dict[str, Any]],
                **extra: Any) -> dict[str, Any]:
    return {"name": name, "success": True, "started_at": STARTED, "duration_seconds": 0.4,
            "paths": paths, "regions": regions, "dns": {}, "errors": [], **extra}


def demo_document() -> dict[str, Any]:
    """Two vantage points × three regions: fra misrouted on dns and origin (the demo world's
    fault), sin cannot reach us-east-1."""
    fra = vantage_doc("fra", [region_doc("us-east-1", 0.090), region_doc("eu-west-1", 0.025),
                              region_doc("ap-southeast-1", 0.160)], [
        path_doc("dns", "misrouted", "us-east-1", "eu-west-1", penalty=0.065,
                 reason="slower_region", detail="us-east-1 answered, eu-west-1 is 65.0 ms closer"),
        path_doc("origin", "misrouted", "us-east-1", "eu-west-1", penalty=0.065,
                 reason="slower_region", detail="us-east-1 answered, eu-west-1 is 65.0 ms closer"),
        path_doc("cdn", "ok", "eu-west-1", "eu-west-1", detail="POP FRA56-P1 reached eu-west-1",
                 pop="FRA56-P1", cache="miss", cache_repeat="hit",
                 server_timing={"cdn-upstream-fbl": 0.023}),
    ])
    sin = vantage_doc("sin", [region_doc("us-east-1", None, False, "connect_error"),
                              region_doc("eu-west-1", 0.170), region_doc("ap-southeast-1", 0.005)],
                      [path_doc("dns", "ok", "ap-southeast-1", "ap-southeast-1"),
                       path_doc("origin", "ok", "ap-southeast-1", "ap-southeast-1")])
    return {"routewatch_version": "0.1.0", "started_at": STARTED, "duration_seconds": 0.6,
            "exit_code": 1, "summary": {"ok": 3, "failover": 0, "misrouted": 2, "unknown": 0},
            "vantage_points": [fra, sin]}


def page(document: dict[str, Any] | None = None, live: LiveOptions | None = None) -> Element:
    return parse_html(render_page(document or demo_document(), now=NOW, live=live))


def cell(root: Element, vantage: str, region: str) -> Element:
    [found] = [c for c in cells(root) if c.attrs["data-vantage"] == vantage
               and c.attrs["data-region"] == region]
    return found


def chips(element: Element) -> set[tuple[str, str, str]]:
    return {(c.attrs["data-path"], c.attrs["data-role"], c.text())
            for c in element.find_all(lambda e: "chip" in e.classes())}


def test_one_matrix_cell_per_vantage_point_and_region() -> None:
    root = page()
    assert sorted((c.attrs["data-vantage"], c.attrs["data-region"]) for c in cells(root)) == \
        sorted((v, r) for v in ("fra", "sin") for r in ("us-east-1", "eu-west-1",
                                                         "ap-southeast-1"))


def test_cells_carry_the_round_trip_its_colour_band_and_the_closest_mark() -> None:
    root = page()
    fra_eu = cell(root, "fra", "eu-west-1")
    assert fra_eu.attrs["data-rtt-ms"] == "25.0"
    assert {"band-1", "closest"} <= fra_eu.classes()
    assert "25.0 ms" in fra_eu.text()
    assert "★" in fra_eu.text()
    fra_us = cell(root, "fra", "us-east-1")
    assert "band-2" in fra_us.classes()
    assert "closest" not in fra_us.classes()
    assert "band-3" in cell(root, "fra", "ap-southeast-1").classes()
    sin_us = cell(root, "sin", "us-east-1")
    assert "down" in sin_us.classes()
    assert "✗ down" in sin_us.text()
    assert "connect_error" in sin_us.attrs["title"]
    assert "closest" in cell(root, "sin", "ap-southeast-1").classes()


def test_served_and_expected_region_marked_per_path() -> None:
    root = page()
    assert chips(cell(root, "fra", "us-east-1")) == {("dns", "served", "✗ dns"),
                                                     ("origin", "served", "✗ origin")}
    assert chips(cell(root, "fra", "eu-west-1")) == {("dns", "expected", "◎ dns"),
                                                     ("origin", "expected", "◎ origin"),
                                                     ("cdn", "served expected", "✓ cdn")}
    assert chips(cell(root, "fra", "ap-southeast-1")) == set()


def test_misrouted_paths_marked_with_text_and_reason() -> None:
    root = page()
    assert misrouted_paths(root) == {("fra", "dns"), ("fra", "origin")}
    problems = root.find_all(lambda e: e.tag == "ul" and "problems" in e.classes())[0].text()
    assert "fra dns — slower_region: us-east-1 answered, eu-west-1 is 65.0 ms closer" in problems
    assert "✗ 2 of 5 paths not ok" in page().find_all(
        lambda e: "banner" in e.classes())[0].text()


def test_cdn_pop_cache_and_age_shown() -> None:
    text = page().text()
    assert "cdn: edge FRA56-P1, cache miss → hit, upstream first byte 23.0 ms" in text
    # a saved page says when each round finished (an age would be wrong once saved)
    assert "finished 2027-01-15 08:01:30 UTC" in text  # started 10 s before NOW, took 0.4 s
    assert " ago" not in text


def test_state_markers_cover_every_routing_state() -> None:
    assert set(STATE_MARKERS) == {state.value for state in RoutingState}
    assert len(set(STATE_MARKERS.values())) == len(STATE_MARKERS)


def test_every_state_reads_without_colour() -> None:
    document = demo_document()
    paths = document["vantage_points"][1]["paths"]
    for state in ("failover", "unknown"):
        paths.append(path_doc("cdn", state, None, "ap-southeast-1", reason="timeout"))
    root = page(document)
    badges = [b.text() for b in root.find_all(lambda e: "state" in e.classes())]
    for state, marker in STATE_MARKERS.items():
        assert f"{marker} {state}" in badges


def test_hostile_values_show_as_text_and_never_as_markup() -> None:
    document = demo_document()
    fra = document["vantage_points"][0]
    fra["name"] = HOSTILE
    fra["regions"][0]["region"] = HOSTILE
    dns, origin, cdn = fra["paths"]
    dns["served_region"] = HOSTILE
    origin["detail"] = HOSTILE
    origin["state"] = HOSTILE
    origin["attribution"]["conflicts"] = [f"header names {HOSTILE!r}, not a configured region"]
    cdn["pop"] = HOSTILE
    cdn["notes"] = [HOSTILE]
    fra["errors"] = [{"path": "cdn", "reason": HOSTILE, "message": HOSTILE}]
    for live in (None, LiveOptions(10, 30.0)):
        html = render_page(document, now=NOW, live=live)
        root = parse_html(html)
        scripts = root.find_all(lambda e: e.tag == "script")
        assert len(scripts) == (0 if live is None else 1)
        assert not root.find_all(lambda e: e.tag == "img" or any(
            name.startswith("on") for name in e.attrs))
        assert HOSTILE in root.text()  # shown, as text
        assert "&lt;script&gt;" in html
        assert "pwned" not in "".join(s.text() for s in scripts)
        # a state outside the vocabulary gets no class of its own
        assert not re.search(r'class="[^"]*st-<', html)


def test_self_contained_with_a_content_security_policy() -> None:
    for live in (None, LiveOptions(10, 30.0)):
        html = render_page(demo_document(), now=NOW, live=live)
        root = parse_html(html)
        assert not root.find_all(lambda e: e.tag in ("link", "img", "iframe", "object")
                                 or "src" in e.attrs)
        assert "url(" not in html
        assert "@import" not in html
        hrefs = [e.attrs["href"] for e in root.find_all(lambda e: "href" in e.attrs)]
        assert hrefs == ([] if live is None else ["/metrics", "/healthz"])
        [policy] = [e.attrs["content"] for e in root.find_all(
            lambda e: e.attrs.get("http-equiv") == "Content-Security-Policy")]
        assert "default-src 'none'" in policy
        scripts = root.find_all(lambda e: e.tag == "script")
        if live is None:
            assert "script-src 'none'" in policy
        else:
            digest = hashlib.sha256(scripts[0].text().encode()).digest()
            assert f"'sha256-{base64.b64encode(digest).decode()}'" in policy


def test_live_page_refreshes_and_marks_stale_rounds() -> None:
    root = page(live=LiveOptions(refresh_seconds=10, stale_after_seconds=5.0))
    [refresh] = root.find_all(lambda e: e.attrs.get("http-equiv") == "refresh")
    assert refresh.attrs["content"] == "10"
    ages = root.find_all(lambda e: "data-finished-at" in e.attrs)
    assert len(ages) == 4  # matrix row and card of each vantage point
    assert all("stale" in a.classes() and a.text() == "⚠ stale, 10 s ago" for a in ages)
    assert root.find_all(lambda e: e.tag == "html")[0].attrs["data-served-at"] == f"{NOW:.3f}"
    assert not page(live=LiveOptions(10, 30.0)).find_all(lambda e: "stale" in e.classes())


def test_stable_state_shown_while_hysteresis_holds_it() -> None:
    document = demo_document()
    document["vantage_points"][0]["paths"][0].update(stable_state="ok", streak=1,
                                                     rounds_required=3)
    assert "stable: ok, 1/3 rounds" in page(document).text()


def test_remote_failures_and_failed_rounds_listed() -> None:
    document = demo_document()
    document["remote_failures"] = [{"region": "ap-south-1", "reason": "timeout",
                                    "message": "no answer in 30 s", "elapsed_seconds": 30.0}]
    sin = document["vantage_points"][1]
    sin.update(success=False, paths=[], regions=[],
               errors=[{"path": "round", "reason": "deadline", "message": "round did not end"}])
    root = page(document)
    text = root.text()
    assert "regional probe ap-south-1 did not answer — timeout: no answer in 30 s" in text
    assert "sin round failed: deadline: round did not end" in text
    assert len(cells(root)) == 6  # sin's row is still drawn, without data
    assert "nodata" in cell(root, "sin", "eu-west-1").classes()


def test_no_round_yet() -> None:
    document = {"summary": {"ok": 0}, "vantage_points": []}
    text = page(document, LiveOptions(10, 30.0)).text()
    assert "no round yet" in text


@pytest.mark.parametrize(("document", "message"), [
    ([], "document: not an object"),
    ({}, "document.vantage_points: not a list"),
    ({"vantage_points": ["x"]}, "vantage_points[0]: not an object"),
    ({"vantage_points": [{"name": "a", "started_at": "yesterday"}]},
     "vantage_points[0].started_at: bad timestamp 'yesterday'"),
    ({"vantage_points": [{"name": "a", "started_at": STARTED, "paths": [{"path": "dns"}]}]},
     "vantage_points[0].paths[0]: needs 'path' and 'state'"),
    ({"vantage_points": [{"name": "a", "started_at": STARTED, "regions": {}}]},
     "vantage_points[0].regions: not a list"),
])
def test_malformed_documents_give_a_typed_error(document: Any, message: str) -> None:
    with pytest.raises(PageDocumentError, match=re.escape(message)):
        render_page(document, now=NOW)


def test_view_reads_numbers_defensively() -> None:
    document = demo_document()
    fra = document["vantage_points"][0]
    fra["regions"][1]["latency_seconds"] = float("nan")
    fra["paths"][0]["penalty_seconds"] = "a lot"
    fra["paths"][0]["status"] = True
    view = page_view(copy.deepcopy(document))
    assert view.vantage_points[0].regions[1].latency_seconds is None
    assert view.vantage_points[0].paths[0].penalty_seconds is None
    assert view.vantage_points[0].paths[0].status is None
    assert view.vantage_points[0].closest_region == "us-east-1"


def test_formats() -> None:
    assert [format_ms(s) for s in (None, 0.0004, 0.0277, 0.1609)] == \
        ["—", "0.4 ms", "27.7 ms", "161 ms"]
    assert [format_age(s) for s in (-3, 0.4, 2.5, 119.4, 120, 7199, 7200, 9000)] == \
        ["0 s", "0 s", "3 s", "119 s", "2 min", "119 min", "2 h 0 min", "2 h 30 min"]
    assert [limit for limit, _ in LATENCY_BANDS] == sorted(limit for limit, _ in LATENCY_BANDS)


def test_a_round_that_did_not_judge_every_path_is_marked_incomplete() -> None:
    document = demo_document()
    document["vantage_points"][1]["success"] = False
    text = page(document).text()
    assert "? incomplete" in text
    assert "? round failed" not in text


def test_a_conflict_that_is_also_a_note_is_listed_once() -> None:
    document = demo_document()
    origin = document["vantage_points"][0]["paths"][1]
    conflict = "header says us-east-1, alb_address 127.20.2.1 says eu-west-1"
    origin["attribution"]["conflicts"] = [conflict]
    origin["notes"] = [conflict, "data path disputed"]
    text = page(document).text()
    assert text.count(conflict) == 1
    assert "data path disputed" in text


def test_a_certificate_close_to_expiry_is_marked_in_its_cell() -> None:
    document = demo_document()
    fra_regions = document["vantage_points"][0]["regions"]
    soon = datetime.fromtimestamp(NOW + 5 * 86400 + 600, UTC).isoformat()
    later = datetime.fromtimestamp(NOW + 80 * 86400, UTC).isoformat()
    fra_regions[0].update(tls_version="TLSv1.2", cert_not_after=soon)
    fra_regions[1].update(tls_version="TLSv1.3", cert_not_after=later)
    root = page(document)
    close = cell(root, "fra", "us-east-1")
    assert "⚠ cert 5 d" in close.text()
    assert "TLSv1.2, certificate until" in close.attrs["title"]
    far = cell(root, "fra", "eu-west-1")
    assert "cert" not in far.text()
    assert "TLSv1.3, certificate until" in far.attrs["title"]
    expired = demo_document()
    expired["vantage_points"][0]["regions"][2]["cert_not_after"] = STARTED
    assert "⚠ cert expired" in cell(page(expired), "fra", "ap-southeast-1").text()
    for left, shown in ((13.6 * 86400, "⚠ cert 13 d"), (5.5 * 3600, "⚠ cert 5 h")):
        close_call = demo_document()
        close_call["vantage_points"][0]["regions"][0]["cert_not_after"] = (
            datetime.fromtimestamp(NOW + left, UTC).isoformat())
        assert shown in cell(page(close_call), "fra", "us-east-1").text()  # rounded down


def test_a_region_that_answered_without_a_trusted_sample_is_not_called_down() -> None:
    document = demo_document()
    document["vantage_points"][0]["regions"][2] = region_doc(
        "ap-southeast-1", None, True, "measurement_disturbed")
    found = cell(page(document), "fra", "ap-southeast-1")
    assert "down" not in found.text()
    assert "measurement_disturbed" in found.text()
    assert "nodata" in found.classes()


def test_a_dual_stack_round_has_a_matrix_row_per_family() -> None:
    """dub misrouted over IPv6 only: the IPv6 row holds the IPv6 round trips and the misrouted
    origin's chip; the IPv4 row its own (a path's round trip is its family's)."""
    def fam(doc: dict[str, Any], family: str) -> dict[str, Any]:
        return {**doc, "family": family}

    dub = vantage_doc("dub", [
        fam(region_doc("us-east-1", 0.070), "ipv4"), fam(region_doc("eu-west-1", 0.006), "ipv4"),
        fam(region_doc("us-east-1", 0.071), "ipv6"), fam(region_doc("eu-west-1", 0.009), "ipv6"),
    ], [
        fam(path_doc("origin", "ok", "eu-west-1", "eu-west-1"), "ipv4"),
        fam(path_doc("origin", "misrouted", "us-east-1", "eu-west-1", penalty=0.062,
                     reason="slower_region"), "ipv6"),
    ])
    document = {**demo_document(), "vantage_points": [dub]}
    root = page(document)
    rows = {(c.attrs["data-family"], c.attrs["data-region"]): c for c in cells(root)}
    assert set(rows) == {(f, r) for f in ("ipv4", "ipv6") for r in ("us-east-1", "eu-west-1")}
    assert rows[("ipv6", "eu-west-1")].attrs["data-rtt-ms"] == "9.0"
    assert rows[("ipv4", "eu-west-1")].attrs["data-rtt-ms"] == "6.0"
    assert ("origin ipv6", "served", "✗ origin ipv6") in chips(rows[("ipv6", "us-east-1")])
    assert not chips(rows[("ipv4", "us-east-1")])
    assert "dub · ipv6" in root.text()
    assert "dub · ipv4" in root.text()


def test_an_incomplete_round_is_counted_once_and_says_why() -> None:
    """A path that could not be judged makes the round incomplete (not failed); a dual-stack
    round drawn as two rows is still one round in the banner and the problems list."""
    document = demo_document()
    fra = document["vantage_points"][0]
    fra["success"] = False
    for item in (*fra["regions"], *fra["paths"]):
        item["family"] = "ipv4"
    fra["regions"] = [*fra["regions"], {**region_doc("eu-west-1", 0.03), "family": "ipv6"}]
    text = page(document).text()
    assert "1 round incomplete" in text
    assert text.count("fra round incomplete: not every path was judged") == 1
    assert "round failed" not in text
