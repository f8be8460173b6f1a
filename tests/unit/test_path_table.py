"""The path table: every path has one entry; the metric label space and the alarm planner follow
it (the round's dispatch through it: tests/integration/test_path_dispatch.py)."""

from __future__ import annotations

from monitor.aws.alarms import desired_alarms
from monitor.config import Config, parse_config
from monitor.core.model import Path
from monitor.core.paths import PATHS, enabled_paths
from monitor.metrics import LabelSpace

CONFIG = """
service: {origin_name: global-alb.example.com, cdn_name: app.example.com}
regions:
  us-east-1: {addresses: [127.0.10.1]}
  eu-west-1: {addresses: [127.0.10.2]}
vantage_points:
  nyc: {resolver: 127.0.0.53}
"""


def config(text: str = CONFIG) -> Config:
    return parse_config(text).config


def test_every_path_has_exactly_one_entry_in_enum_order() -> None:
    assert [spec.path for spec in PATHS] == list(Path)


def test_the_cdn_path_is_enabled_only_with_a_cdn_name() -> None:
    with_cdn = config()
    without = config(CONFIG.replace(", cdn_name: app.example.com", ""))
    assert enabled_paths(with_cdn) == (Path.DNS, Path.ORIGIN, Path.CDN)
    assert enabled_paths(without) == (Path.DNS, Path.ORIGIN)


def test_metric_labels_and_alarms_follow_the_table() -> None:
    for text in (CONFIG, CONFIG.replace(", cdn_name: app.example.com", "")):
        loaded = config(text)
        assert LabelSpace.from_config(loaded).paths == enabled_paths(loaded)
        alarm_paths = {a.path for a in desired_alarms(loaded) if a.path is not None}
        assert alarm_paths == {p.value for p in enabled_paths(loaded)}
