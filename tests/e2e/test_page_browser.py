"""The routing page in a real browser (headless Chromium): ``serve``'s ``/`` and ``check --html``
on the ``demo`` lab world are drawn (not blank), hold one matrix cell per vantage point × region
and mark the misrouted paths; a hostile value from the network shows as text and runs nothing.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from browser import Chromium, read_png
from lab_client import calm_check, injected_rows
from page_dom import Element, cells, misrouted_paths, parse_html
from serve_process import ServeProcess, wait_until

from monitor.lab import load_scenario
from monitor.page import LiveOptions, render_page

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO_CELLS = {(v, r) for v in ("nyc", "dub", "fra", "sin")
              for r in ("us-east-1", "eu-west-1", "ap-southeast-1")}
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=1">'


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    return Chromium.require()


def assert_drawn(png: Path) -> None:
    """Not blank: many colours, and a fair share of the pixels is not the background."""
    image = read_png(png)
    colours, not_background = image.colour_spread()
    assert colours >= 16, f"{png}: {colours} colours"
    assert not_background >= 0.05, f"{png}: {not_background:.1%} of the pixels drawn"


def assert_paths_marked_in_matrix(root: Element) -> None:
    """Each misrouted path's chip is in its served region's cell (✗) and its expected one (◎)."""
    for section in root.find_all(lambda e: e.tag == "section" and "vantage" in e.classes()):
        vantage = section.attrs["data-vantage"]
        row = {c.attrs["data-region"]: c for c in cells(root)
               if c.attrs["data-vantage"] == vantage}
        for path_row in section.find_all(lambda e: e.tag == "tr" and "path" in e.classes()):
            if path_row.attrs["data-state"] != "misrouted":
                continue
            path = path_row.attrs["data-path"]
            served, expected = (td.text() for td in path_row.find_all(lambda e: e.tag == "td")[2:4])
            served_region = next(r for r in row if served.startswith(r))
            expected_region = next(r for r in row if expected.startswith(r))
            assert f"✗ {path}" in row[served_region].text()
            assert f"◎ {path}" in row[expected_region].text()


def test_serve_page_in_the_browser(chromium: Chromium, tmp_path: Path) -> None:
    with ServeProcess(tmp_path / "serve", "--lab", "demo", "--interval", "2",
                      "--jitter", "0") as serve:
        url = serve.url + "/"

        def every_round_in() -> str | None:
            with urllib.request.urlopen(url, timeout=10) as response:
                page = response.read().decode()
            root = parse_html(page)
            ready = len(cells(root)) == 12 and ("fra", "dns") in misrouted_paths(root)
            return page if ready else None

        served = parse_html(wait_until(every_round_in, checks=240, pause=0.25,
                                       what="every vantage point's round"))
        dom = parse_html(chromium.dump_dom(url))
        png = chromium.screenshot(url, tmp_path / "serve.png")
    assert {(c.attrs["data-vantage"], c.attrs["data-region"]) for c in cells(dom)} == DEMO_CELLS
    # the misroute as served (a round may land between that fetch and the browser's: under load
    # measurement trust may then hold a verdict back, so the browser's copy is held to structure)
    assert {("fra", "dns"), ("fra", "origin")} <= misrouted_paths(served)
    assert_paths_marked_in_matrix(served)
    assert_paths_marked_in_matrix(dom)
    ages = [a.text() for a in dom.find_all(lambda e: "data-finished-at" in e.attrs)]
    assert len(ages) == 8
    assert all(re.fullmatch(r"(⚠ stale, )?\d+ (s|min) ago", a) for a in ages)
    assert [a.attrs["href"] for a in dom.find_all(lambda e: e.tag == "a")] == \
        ["/metrics", "/healthz"]
    assert_drawn(png)


@pytest.fixture(scope="module")
def demo_check(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``check --lab demo --html`` once: the page and the round's JSON document."""
    out = tmp_path_factory.mktemp("check")
    page, document = out / "demo.html", out / "demo.json"
    # a run the machine did not disturb, so the page shows the demo world's own verdicts
    run = calm_check(["--lab", "demo", "--html", str(page)], injected_rows(load_scenario("demo")),
                     document)
    assert run.returncode == 1, run.stderr  # the demo world has a misrouted vantage point
    return page, json.loads(document.read_text())


def test_check_html_page_in_the_browser(chromium: Chromium, tmp_path: Path,
                                        demo_check: tuple[Path, dict[str, Any]]) -> None:
    page, document = demo_check
    dom = parse_html(chromium.dump_dom(page.as_uri()))
    assert {(c.attrs["data-vantage"], c.attrs["data-region"]) for c in cells(dom)} == DEMO_CELLS
    assert misrouted_paths(dom) == {(v["name"], p["path"]) for v in document["vantage_points"]
                                    for p in v["paths"] if p["state"] == "misrouted"}
    assert ("fra", "dns") in misrouted_paths(dom)
    assert_paths_marked_in_matrix(dom)
    assert not dom.find_all(lambda e: e.tag == "script")
    assert_drawn(chromium.screenshot(page.as_uri(), tmp_path / "check.png"))


def test_hostile_values_show_as_text_in_the_browser(
        chromium: Chromium, tmp_path: Path, demo_check: tuple[Path, dict[str, Any]]) -> None:
    """The demo round with a region header value (and other network strings) made hostile, on
    the live page whose own script runs: the hostile markup is text, nothing of it runs."""
    document = demo_check[1]
    fra = next(v for v in document["vantage_points"] if v["name"] == "fra")
    for path in fra["paths"]:
        path["served_region"] = HOSTILE  # as if x-origin-region said so
        path["attribution"]["conflicts"] = [f"header names {HOSTILE!r}, which is not a "
                                            "configured region"]
        path["detail"] = f"{HOSTILE} answered"
    cdn = next(p for p in fra["paths"] if p["path"] == "cdn")
    cdn["pop"] = HOSTILE
    page = tmp_path / "hostile.html"
    page.write_text(render_page(document, now=time.time(), live=LiveOptions(60, 180.0)),
                    encoding="utf-8")
    dom = parse_html(chromium.dump_dom(page.as_uri()))
    [title] = dom.find_all(lambda e: e.tag == "title")
    assert title.text() == "routewatch · routing (live)"  # no injected script ran
    assert not dom.find_all(lambda e: e.tag == "img" or any(a.startswith("on") for a in e.attrs))
    assert len(dom.find_all(lambda e: e.tag == "script")) == 1  # the page's own
    assert HOSTILE in dom.text()
    assert f"{HOSTILE} answered" in dom.text()
