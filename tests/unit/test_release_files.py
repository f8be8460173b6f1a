"""LICENSE, CHANGELOG and the version: stated once, with the licence pyproject declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import monitor

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_is_read_from_the_package() -> None:
    project = _pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "monitor.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", monitor.__version__)


def test_license_file_is_the_apache_2_text_pyproject_declares() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it
    assert "APPENDIX: How to apply the Apache License to your work." in text


def test_changelog_keeps_a_changelog_with_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    names = [name for name, _ in headings]
    assert names[0] == "Unreleased"
    assert monitor.__version__ in names, f"no CHANGELOG section for {monitor.__version__}"
    assert all(date for name, date in headings if name != "Unreleased"), "a release needs a date"
    for name in names:  # every heading links to its comparison or release
        assert re.search(rf"^\[{re.escape(name)}\]: \S+$", text, re.MULTILINE), name
    kinds = set(re.findall(r"^### (\w+)$", text, re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
