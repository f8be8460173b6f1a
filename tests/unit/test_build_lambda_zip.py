"""deploy/build_lambda_zip.py's bytecode and bundled-config steps (the pip download of the whole
package is exercised by ``make lambda-zip`` and bench/startup.py, not here: no network)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from monitor.config import ConfigError

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def build() -> Iterator[ModuleType]:
    """deploy/build_lambda_zip.py (deploy/ is a folder of scripts, not a package)."""
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        yield importlib.import_module("build_lambda_zip")
    finally:
        sys.path.remove(str(ROOT / "deploy"))


@pytest.fixture(scope="module")
def python312(build: ModuleType) -> str:
    try:
        found: str = build.find_bytecode_python(build.PYTHON_VERSION)
    except build.BytecodeError as exc:
        pytest.skip(f"no CPython {build.PYTHON_VERSION} on this machine to compile with: {exc}")
    return found


def _tree(root: Path) -> Path:
    (root / "monitor").mkdir(parents=True)
    (root / "monitor" / "__init__.py").write_text("ANSWER = 'compiled'\n")
    (root / "vendored").mkdir()
    (root / "vendored" / "__init__.py").write_text("")
    (root / "vendored" / "py2_only.py").write_text("print 'never imported'\n")
    return root


def test_bytecode_is_made_for_the_runtime_and_used_without_the_source(
        build: ModuleType, python312: str, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "package")
    made = build.compile_bytecode(tree, python312)
    assert made.version.startswith(build.PYTHON_VERSION + ".")
    assert made.skipped == ("vendored/py2_only.py",)  # reported, not fatal: not ours
    pyc = tree / "monitor" / "__pycache__" / "__init__.cpython-312.pyc"
    header = pyc.read_bytes()[:8]
    assert header[:4] == bytes.fromhex(made.magic)
    assert int.from_bytes(header[4:8], "little") == 0b01  # PEP 552: hash-based, unchecked
    # Lambda's runtime (read-only /var/task) loads it as is, without reading the source again;
    # tracebacks name the files where Lambda unpacks them
    (tree / "monitor" / "__init__.py").write_text("ANSWER = 'edited after the build'\n")
    run = subprocess.run(
        [python312, "-I", "-S", "-c",
         "import sys; sys.dont_write_bytecode = True; sys.path.insert(0, sys.argv[1]); "
         "import monitor; print(monitor.ANSWER, monitor.__spec__.cached is not None)",
         str(tree)],
        capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "compiled True"
    code = pyc.read_bytes()
    assert f"{build.TASK_ROOT}/monitor/__init__.py".encode() in code


def test_a_module_of_ours_that_does_not_compile_stops_the_build(
        build: ModuleType, python312: str, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "package")
    (tree / "monitor" / "broken.py").write_text("def (:\n")
    with pytest.raises(build.BytecodeError, match="not compiled"):
        build.compile_bytecode(tree, python312)


def test_without_a_matching_interpreter_the_build_says_what_to_do(
        build: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(build.BytecodeError, match=r"is Python 3\.\d+, not 2\.7"):
        build.find_bytecode_python("2.7", sys.executable)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    with pytest.raises(build.BytecodeError, match="--no-bytecode"):
        build.find_bytecode_python("3.99")


def test_the_bundled_config_is_validated_and_stored_prevalidated(
        build: ModuleType, tmp_path: Path) -> None:
    config = tmp_path / "my.yaml"
    config.write_text("service: {origin_name: global-alb.example.com}\n"
                      "regions: {us-east-1: {addresses: [192.0.2.20]}}\n"
                      "vantage_points: {laptop: {resolver: 192.0.2.53}}\n", encoding="utf-8")
    package = tmp_path / "package"
    package.mkdir()
    stored = build.bundle_config(config, package)
    assert (package / "routewatch.yaml").read_bytes() == config.read_bytes()
    assert stored == package / "routewatch.yaml.validated.json"
    config.write_text("service: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="origin_name"):
        build.bundle_config(config, package)
