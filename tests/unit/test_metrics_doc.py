"""docs/metrics.md and the alert rules agree with the metric table in code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from monitor.metrics import LABELS, METRICS, PREFIX, metrics_table_markdown

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "metrics.md"
RULES = ROOT / "alerts" / "routewatch.rules.yml"
BEGIN = "<!-- generated from monitor/metrics/__init__.py: python -m monitor.metrics -->\n"
END = "<!-- end of generated table -->"


def test_metric_table_in_the_doc_matches_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    assert table == metrics_table_markdown(), (
        "docs/metrics.md is out of date: replace its table with `python -m monitor.metrics`")


def test_every_label_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    used = {label for spec in METRICS for label in spec.labels}
    assert used == set(LABELS)
    section = text[text.index("## Labels"):text.index("## Metrics")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == [f"| `{label}` | {values} |" for label, values in LABELS.items()], (
        "docs/metrics.md's label table must list each label of monitor/metrics/docs.py's "
        "LABELS once, in its order, with its values")


def test_alert_rules_use_only_defined_metrics() -> None:
    names = {spec.name for spec in METRICS}
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            text = rule["expr"] + " ".join(rule.get("annotations", {}).values())
            for used in re.findall(rf"\b{PREFIX}[a-z_]+", text):
                assert used in names, f"{rule['alert']} uses undefined metric {used}"
