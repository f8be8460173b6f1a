"""The Lambda package's pre-validated configuration: rebuilt without validation it equals what
the loader gives, for every field; anything that does not match goes through the loader."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import trustme

from monitor.aws.packaged_config import (
    _config_digest,
    construct_config,
    encode_config,
    load_packaged_config,
    prevalidated_path,
    write_prevalidated,
)
from monitor.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).parents[2]

# Every field of every section set to something other than its default.
FULL_CONFIG = """
service:
  origin_name: global-alb.example.com
  cdn_name: app.example.com
  port: 8443
  health_path: /healthz
  region_header: X-Served-By
  ca_file: {ca_file}
regions:
  eu-west-1: {{alb_name: alb-euw1.eu-west-1.elb.amazonaws.com, addresses: [192.0.2.10], port: 9443}}
  us-east-1: {{addresses: [192.0.2.20, "2001:db8::20"]}}
vantage_points:
  eu-west-1:
    resolver: 192.0.2.53:5353
    client_subnet: 198.51.100.7/24
    source_address: 192.0.2.99
    source_address_v6: "2001:db8::99"
    region: eu-west-1
    location: dub
  laptop: {{resolver: "[2001:db8::53]"}}
authoritative: [205.251.192.1, 205.251.193.1:5353]
probe: {{samples: 5, dns_timeout_s: 1.5, connect_timeout_s: 2.5, request_timeout_s: 4.0,
        round_deadline_s: 20.0, pace_ms: 5.0, body_limit_bytes: 4096, estimator: handshake,
        allow_addresses: [127.0.0.0/8, "fd00::/8"], families: [ipv4]}}
tolerance: {{absolute_ms: 12.5, relative: 0.5, slow_app_ms: 25.0}}
ip_ranges: {{file: /nonexistent/ip-ranges.json, url: "https://ip-ranges.amazonaws.com/ip-ranges.json",
            cache_dir: /tmp/routewatch-cache, max_age_hours: 12.0}}
cdn: {{path: /cdn-health, cache_bust: false, observe_hit: false, pop_regions: {{FRA: eu-west-1}}}}
serve: {{interval_s: 30.0, jitter_s: 2.0, misfire_grace_s: 10.0, hysteresis_rounds: 5,
        listen: "127.0.0.1:9999"}}
cloudwatch: {{enabled: true, namespace: Custom, region: eu-west-1, buffer_limit: 500}}
alarms: {{sns_topic_arn: "arn:aws:sns:eu-west-1:123456789012:alerts", misrouted_datapoints: 2,
         misrouted_evaluation_periods: 4, period_s: 120, function_name: probe,
         hosted_zone_id: Z123}}
"""
SERVICES_CONFIG = """
services:
  api: {origin_name: api-alb.example.com, cdn_name: api.example.com, port: 8443,
        health_path: /ready, region_header: X-Region}
  app:
    origin_name: app-alb.example.com
    regions: {us-east-1: {alb_name: app.us-east-1.elb.amazonaws.com, port: 9443},
              eu-west-1: {addresses: [192.0.2.30]}}
regions:
  us-east-1: {addresses: [192.0.2.20]}
  eu-west-1: {addresses: [192.0.2.21]}
vantage_points: {laptop: {resolver: 192.0.2.53}}
"""
MINIMAL_CONFIG = """
service: {origin_name: global-alb.example.com}
regions: {us-east-1: {addresses: [192.0.2.20]}}
vantage_points: {laptop: {resolver: 192.0.2.53}}
"""


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _write(tmp_path: Path, text: str, name: str = "routewatch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _sections(value: Any) -> Any:
    """Every section (dataclass) inside ``value``, all the way down."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value
        for item in dataclasses.fields(value):
            yield from _sections(getattr(value, item.name))
    elif isinstance(value, dict | tuple):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _sections(item)


def _shape(value: Any) -> Any:
    """``value`` with the type of everything in it (equality does not tell a StrEnum from its
    string)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value), {item.name: _shape(getattr(value, item.name))
                             for item in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_shape(item) for item in value)
    return type(value), value


def test_the_full_config_sets_every_field(tmp_path: Path, ca_file: Path) -> None:
    """A new field must be set (to other than its default) in FULL_CONFIG or SERVICES_CONFIG, so
    the round trip below covers its type."""
    configs = [load_config(_write(tmp_path, FULL_CONFIG.format(ca_file=ca_file))).config,
               load_config(_write(tmp_path, SERVICES_CONFIG, "services.yaml")).config]
    sections = [section for config in configs for section in _sections(config)]
    unset = set()
    for kind in {type(section) for section in sections}:
        for item in dataclasses.fields(kind):
            name = item.name
            if item.default is dataclasses.MISSING and \
                    item.default_factory is dataclasses.MISSING:
                continue  # required: always set
            default = item.default if item.default is not dataclasses.MISSING \
                else item.default_factory()
            if all(getattr(s, name) == default for s in sections if type(s) is kind):
                unset.add(f"{kind.__name__}.{name}")
    # a service's ca_file is Service.ca_file's type; with several services it is not stored
    assert unset == {"ServiceEntry.ca_file"}
    assert {type(section).__name__ for section in sections} >= {
        "Config", "Service", "ServiceEntry", "ServiceRegion", "Region", "VantagePoint",
        "ProbeSettings", "Tolerance", "IpRangesSettings", "CdnSettings", "ServeSettings",
        "CloudWatchSettings", "AlarmSettings"}


@pytest.mark.parametrize("source", ["full", "minimal", "services", *sorted(
    p.name for p in (ROOT / "examples").glob("*.yaml"))])
def test_rebuilt_without_validation_it_equals_what_the_loader_gives(
        tmp_path: Path, ca_file: Path, source: str) -> None:
    text = {"full": FULL_CONFIG.format(ca_file=ca_file), "minimal": MINIMAL_CONFIG,
            "services": SERVICES_CONFIG}.get(
        source) or (ROOT / "examples" / source).read_text(encoding="utf-8")
    path = _write(tmp_path, text)
    loaded = load_config(path)
    assert write_prevalidated(path) == prevalidated_path(path)
    document = json.loads(prevalidated_path(path).read_text(encoding="utf-8"))
    rebuilt = construct_config(document["config"])
    assert rebuilt == loaded.config
    assert _shape(rebuilt) == _shape(loaded.config)  # enums, paths and tuples, not strings/lists
    packaged = load_packaged_config(path)
    assert packaged.config == loaded.config
    assert packaged.warnings == loaded.warnings


def test_a_file_edited_after_the_build_is_validated_again(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL_CONFIG)
    write_prevalidated(path)
    path.write_text(MINIMAL_CONFIG.replace("laptop", "desk"), encoding="utf-8")
    assert list(load_packaged_config(path).config.vantage_points) == ["desk"]
    path.write_text(MINIMAL_CONFIG.replace("192.0.2.53", "not-an-address"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"vantage_points\.laptop\.resolver"):
        load_packaged_config(path)


def test_a_relative_ca_file_is_left_to_the_loader(tmp_path: Path, ca_file: Path) -> None:
    path = _write(tmp_path, MINIMAL_CONFIG.replace(
        "origin_name: global-alb.example.com", "origin_name: global-alb.example.com, "
        "ca_file: ca.pem"))
    assert write_prevalidated(path) is None  # it resolves against the folder it runs in
    assert load_packaged_config(path).config.service.ca_file == ca_file


def test_a_file_gone_since_the_build_is_the_loaders_error(tmp_path: Path,
                                                          ca_file: Path) -> None:
    path = _write(tmp_path, FULL_CONFIG.format(ca_file=ca_file))
    write_prevalidated(path)
    ca_file.unlink()
    with pytest.raises(ConfigError, match=r"service\.ca_file"):
        load_packaged_config(path)


def test_an_unusable_document_is_left_to_the_loader(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL_CONFIG)
    write_prevalidated(path)
    stored = prevalidated_path(path)
    document = json.loads(stored.read_text(encoding="utf-8"))
    config = document["config"]
    fields = config["fields"]
    altered = {**document, "config": {**config, "fields": {**fields, "authoritative": "x"}}}
    resealed = {**altered, "config_sha256": _config_digest(altered["config"])}
    for broken in ({**document, "format": 1},
                   altered,  # no longer what the build wrote
                   {**resealed, "config": {**config, "fields": {**fields, "surprise": 1}}},
                   {**resealed, "config": {**config, "$section": "Nothing"}}):
        stored.write_text(json.dumps(broken), encoding="utf-8")
        assert load_packaged_config(path).config == load_config(path).config
    stored.write_text("{not json", encoding="utf-8")
    assert load_packaged_config(path).config == load_config(path).config
    with pytest.raises(TypeError):
        construct_config({**config, "fields": {**fields, "surprise": 1}})
    with pytest.raises(KeyError):
        construct_config({**config, "$section": "Nothing"})
    with pytest.raises(TypeError):
        construct_config({"$section": "Region", "fields": {}})  # a section, not a Config


def test_a_mapping_is_a_tag_only_with_exactly_the_tags_keys() -> None:
    config = parse_config(MINIMAL_CONFIG).config
    document = encode_config(config)
    assert construct_config(document) == config
    with pytest.raises(TypeError):
        construct_config({"$section": "Config", "fields": []})
    fields = dict(document["fields"])
    # a mapping that carries a tag's key among others stays a mapping
    fields["cdn"] = {"$section": "CdnSettings", "fields": {
        "pop_regions": {"$tuple": ["x"], "FRA": "us-east-1"}}}
    rebuilt = construct_config({"$section": "Config", "fields": fields})
    assert rebuilt.cdn.pop_regions == {"$tuple": ["x"], "FRA": "us-east-1"}
    with pytest.raises(TypeError):  # and one that could be read as a tag is not stored
        encode_config(dataclasses.replace(config, cdn=dataclasses.replace(
            config.cdn, pop_regions={"$path": "/x"})))
