"""``routewatch check --html FILE``: the routing page of one round, beside the JSON document."""

from __future__ import annotations

import json
from pathlib import Path

from lab_client import calm_check, injected_rows
from page_dom import cells, misrouted_paths, parse_html
from test_check_cli import cli

from monitor.lab import load_scenario


def test_html_into_a_missing_directory_fails_before_probing() -> None:
    run = cli("check", "--lab", "demo", "--html", "/nonexistent/dir/page.html")
    assert run.returncode == 2
    assert "error: --html /nonexistent/dir/page.html: directory /nonexistent/dir does not " \
           "exist" in run.stderr
    assert "Traceback" not in run.stderr


def test_html_page_draws_the_same_round_as_the_json(tmp_path: Path) -> None:
    page = tmp_path / "round.html"
    # a run the machine did not disturb, so the demo world's misroute is what it judged
    run = calm_check(["--lab", "demo", "--json", "--html", str(page)],
                     injected_rows(load_scenario("demo")), tmp_path / "round.json")
    assert run.returncode == 1, run.stderr  # the demo world has a misrouted vantage point
    document = json.loads(run.stdout)
    root = parse_html(page.read_text(encoding="utf-8"))
    regions = {r["region"] for v in document["vantage_points"] for r in v["regions"]}
    assert {(c.attrs["data-vantage"], c.attrs["data-region"]) for c in cells(root)} == \
        {(v["name"], r) for v in document["vantage_points"] for r in regions}
    assert len(cells(root)) == 4 * 3
    expected = {(v["name"], p["path"]) for v in document["vantage_points"] for p in v["paths"]
                if p["state"] == "misrouted"}
    assert expected  # fra is sent to us-east-1
    assert misrouted_paths(root) == expected
