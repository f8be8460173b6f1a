"""Imports point one way: each layer, imported with every module in it in a fresh interpreter,
loads no layer above it.

probes <- monitor.domain <- monitor.config <- monitor.core <- monitor.round <- monitor.metrics /
monitor.exporters <- monitor.page / monitor.dashboards <- monitor.serve / monitor.aws /
monitor.cli; monitor.lab -> monitor.config only; the Lambda handler loads neither boto3 nor the
lab nor the CLI at cold start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

LEVELS: tuple[tuple[str, ...], ...] = (
    ("probes",),
    ("monitor.domain",),
    ("monitor.config",),
    ("monitor.core",),
    ("monitor.round",),
    ("monitor.metrics", "monitor.exporters"),
    ("monitor.page", "monitor.dashboards"),
    ("monitor.serve", "monitor.aws", "monitor.cli"),
)
"""Lowest first: a layer may load its own level and the ones below it, never one above."""

LAB = "monitor.lab"
ENTRY_POINT = "monitor.cli"
"""Only the command line starts lab worlds, so only it may load the lab."""


def forbidden(layer: str) -> tuple[str, ...]:
    """The packages ``layer`` must not load."""
    if layer == "probes":
        return ("monitor",)
    if layer == LAB:
        return tuple(p for level in LEVELS[3:] for p in level)
    level = next(i for i, names in enumerate(LEVELS) if layer in names)
    above = [p for names in LEVELS[level + 1:] for p in names]
    if layer != ENTRY_POINT:
        above.append(LAB)
        if level == len(LEVELS) - 1:
            above.append(ENTRY_POINT)
    return tuple(above)


RULES: dict[str, tuple[str, ...]] = {
    **{layer: forbidden(layer) for level in LEVELS for layer in level},
    LAB: forbidden(LAB),
    # the Lambda runtime imports only the handler: its cold start must stay light
    "monitor.aws.lambda_handler": ("boto3", "botocore", LAB, ENTRY_POINT),
}

XFAIL: dict[str, str] = {}
"""Known breaks, layer → why, until they are fixed (empty when the layering holds)."""

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
name = sys.argv[1]
module = importlib.import_module(name)
if hasattr(module, "__path__") and name.count(".") < 2:
    for info in pkgutil.walk_packages(module.__path__, name + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    """Layer → every module loaded by importing it and every module inside it, each in a fresh
    interpreter (all started at once: the layers are independent)."""
    runs = {layer: subprocess.Popen([sys.executable, "-c", IMPORT_EVERYTHING, layer],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=ROOT)
            for layer in RULES}
    found = {}
    for layer, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, (layer, err)
        found[layer] = json.loads(out)
    return found


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_package_has_a_rule() -> None:
    packages = {"probes", *(f"monitor.{p.name}" for p in (ROOT / "monitor").iterdir()
                            if (p / "__init__.py").exists())}
    assert packages == {layer for layer in RULES if layer.count(".") < 2}


@pytest.mark.parametrize("layer", list(RULES))
def test_a_layer_loads_nothing_above_it(loaded: dict[str, list[str]], layer: str) -> None:
    if layer in XFAIL:
        pytest.xfail(XFAIL[layer])
    modules = loaded[layer]
    assert layer in modules
    broken = sorted(m for m in modules for p in RULES[layer] if inside(m, p))
    assert broken == [], f"{layer} loads {broken}"


def test_the_lab_loads_the_configuration(loaded: dict[str, list[str]]) -> None:
    assert "monitor.config" in loaded[LAB]
