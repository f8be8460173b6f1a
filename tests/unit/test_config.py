"""Configuration loading: every invalid fixture gives exactly its recorded messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from monitor.config import ConfigError, load_config, parse_config

CONFIGS = Path(__file__).parents[1] / "config"
INVALID = sorted(CONFIGS.glob("invalid-*.yaml"))
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_config_gives_its_exact_messages(fixture: Path) -> None:
    expected = fixture.with_suffix(".expected").read_text().splitlines()
    with pytest.raises(ConfigError) as caught:
        load_config(fixture)
    assert [str(p) for p in caught.value.problems] == expected


def test_every_invalid_fixture_has_its_expected_messages() -> None:
    assert len(INVALID) >= 6
    for fixture in INVALID:
        assert fixture.with_suffix(".expected").exists(), fixture


@pytest.mark.parametrize("fixture", INVALID[:3], ids=lambda p: p.stem)
def test_cli_validate_exits_2_without_traceback(fixture: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "config", "validate", str(fixture)],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[1:] == [
        f"  {line}" for line in fixture.with_suffix(".expected").read_text().splitlines()]


def test_example_config_is_valid_and_warning_free() -> None:
    loaded = load_config(ROOT / "examples" / "two-regions.yaml")
    assert set(loaded.config.regions) == {"us-east-1", "eu-west-1"}
    assert loaded.config.service.origin_name == "global-alb.example.com"
    assert loaded.warnings == ()


def test_underscore_host_name_warns_about_certificates() -> None:
    text = (CONFIGS / "valid-minimal.yaml").read_text().replace("global-alb", "global_alb")
    loaded = parse_config(text)
    assert len(loaded.warnings) == 1
    assert "global_alb.example.com" in loaded.warnings[0]
    assert "no certificate" in loaded.warnings[0]
    assert "'global-alb.example.com'" in loaded.warnings[0]


def test_defaults_and_normalisation() -> None:
    config = parse_config((CONFIGS / "valid-minimal.yaml").read_text()).config
    assert config.vantage_points["here"].resolver == "127.0.0.53:53"
    assert config.probe.samples == 3
    assert config.tolerance.absolute_ms == 10.0
    assert config.service.region_header == "x-origin-region"


def test_relative_ca_file_is_relative_to_the_config(tmp_path: Path) -> None:
    text = (CONFIGS / "valid-minimal.yaml").read_text().replace(
        "{origin_name: global-alb.example.com}",
        "{origin_name: global-alb.example.com, ca_file: ca.pem}")
    (tmp_path / "c.yaml").write_text(text)
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    assert load_config(tmp_path / "c.yaml").config.service.ca_file == tmp_path / "ca.pem"


@pytest.mark.parametrize(("content", "message"), [
    (None, "'ca.pem' does not exist or is not a file (relative to the configuration file's "
           "folder)"),
    ("not a certificate\n", "'ca.pem' is not a PEM certificate bundle (SSLError)"),
])
def test_a_ca_file_that_cannot_serve_is_refused_at_load(tmp_path: Path, content: str | None,
                                                        message: str) -> None:
    text = (CONFIGS / "valid-minimal.yaml").read_text().replace(
        "{origin_name: global-alb.example.com}",
        "{origin_name: global-alb.example.com, ca_file: ca.pem}")
    (tmp_path / "c.yaml").write_text(text)
    if content is not None:
        (tmp_path / "ca.pem").write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "c.yaml")
    assert [p.message for p in caught.value.problems] == [message]
    assert caught.value.problems[0].path == "service.ca_file"


def test_a_device_as_config_file_is_refused_without_reading_forever() -> None:
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_config("/dev/zero")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_schema_is_json_schema_with_forbidden_extras() -> None:
    run = subprocess.run([sys.executable, "-m", "monitor.cli", "config", "schema"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    schema = json.loads(run.stdout)
    assert schema["additionalProperties"] is False
    assert {"regions", "vantage_points"} <= set(schema["required"])
    assert schema["oneOf"] == [{"required": ["service"]}, {"required": ["services"]}]


def test_unknown_region_name_warns() -> None:
    text = (CONFIGS / "valid-minimal.yaml").read_text().replace("us-east-1", "us-eest-1")
    warnings = parse_config(text).warnings
    assert warnings == ("regions.us-eest-1: not an AWS region routewatch knows (a typo?); "
                        "distance rules (cdn, location) cannot use it",)


MINIMAL = """
service: {origin_name: global-alb.example.com}
regions: {us-east-1: {addresses: [192.0.2.20]}}
vantage_points: {laptop: {resolver: 192.0.2.53}}
"""


def test_a_section_validates_from_data_and_passes_as_an_instance() -> None:
    """The types are dataclasses that validate nothing when built; data goes through the
    validator, which takes an instance as it is (a pydantic model may hold one)."""
    from pydantic import ValidationError

    from monitor.config import ProbeSettings, Region, ServeSettings
    from monitor.config.validation import validate_section

    serve = parse_config(MINIMAL).config.serve
    assert validate_section(ServeSettings, serve) is serve
    assert validate_section(ServeSettings, {"interval_s": 30.0}).interval_s == 30.0
    with pytest.raises(ValidationError, match="round_deadline_s must be at least"):
        validate_section(ProbeSettings, {"round_deadline_s": 1.0, "request_timeout_s": 2.0})
    with pytest.raises(ValidationError, match="give alb_name or addresses"):
        validate_section(Region, {})
    assert Region().addresses == ()  # built directly: not validated


def test_loading_a_configuration_is_what_imports_pydantic() -> None:
    """The configuration's types load no validator: the Lambda's cold start depends on it."""
    code = ("import sys; import monitor.config, monitor.aws.packaged_config; "
            "print('pydantic' in sys.modules); "
            f"monitor.config.parse_config({MINIMAL!r}); print('pydantic' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert run.stdout.split() == ["False", "True"]
