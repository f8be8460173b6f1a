"""Every key of ``service`` and ``vantage_points`` is documented in the README and shown in
examples/two-regions.yaml (set or commented), and the README says where a relative ``ca_file``
is resolved from. (The example is only read here, never run: it names public resolvers.)"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from monitor.config import Service, VantagePoint

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = (ROOT / "examples" / "two-regions.yaml").read_text(encoding="utf-8")
KEYS = [("service", item.name) for item in fields(Service)] + [
    ("vantage_points", item.name) for item in fields(VantagePoint)]


@pytest.mark.parametrize(("section", "key"), KEYS, ids=[f"{s}.{k}" for s, k in KEYS])
def test_the_key_is_in_the_readme_and_the_example(section: str, key: str) -> None:
    assert f"`{key}`" in README or f"`{section}.{key}`" in README, f"README: no {section}.{key}"
    assert re.search(rf"^\s*#?\s*{key}:", EXAMPLE, re.MULTILINE), f"example: no {key}"


def test_a_relative_ca_file_is_said_to_be_resolved_against_the_configuration_file() -> None:
    configuration = " ".join(
        README[README.index("## Configuration"):README.index("## The CDN path")].split())
    assert "`service.ca_file`" in configuration
    assert "relative path is resolved against the configuration file's folder" in configuration
    assert "resolved against this file's folder" in " ".join(EXAMPLE.replace("#", "").split())
    assert "`source_address`" in configuration
