"""Every property of the configuration's JSON Schema has a description (editors show it)."""

from __future__ import annotations

from typing import Any

from monitor.config import config_schema


def undescribed(node: Any, where: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if not str(prop.get("description", "")).strip():
                found.append(f"{where}.{name}")
        for key, value in node.items():
            found += undescribed(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += undescribed(value, f"{where}[{index}]")
    return found


def test_every_config_property_is_described() -> None:
    assert undescribed(config_schema()) == []


def test_every_section_is_described() -> None:
    schema = config_schema()
    for name, section in schema["$defs"].items():
        assert str(section.get("description", "")).strip(), name
