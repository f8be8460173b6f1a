"""Debian tools the tests run (installed by `make system-deps` when root)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, debian_package: str) -> str:
    """The tool's path; fails when root (make system-deps should have installed it), else skips."""
    found = shutil.which(name)
    if found is None:
        if os.geteuid() == 0:
            pytest.fail(f"{name} is missing although we are root: run `make system-deps`")
        pytest.skip(f"{name} is not installed (Debian package {debian_package}) and we are "
                    "not root")
    return found
