"""Build the probe's Lambda deployment package for arm64, without Docker.

pip installs the runtime dependencies as manylinux2014_aarch64 wheels for CPython 3.12
(``--platform``/``--only-binary=:all:``, since pydantic-core and others are compiled), the
``monitor`` and ``probes`` packages are copied beside them, a bundled config is validated (a bad
one stops the build) and stored pre-validated beside it (``monitor/aws/packaged_config.py``),
every module is compiled to CPython 3.12 bytecode, and everything is zipped with fixed
timestamps (same inputs, same bytes). The size is reported and checked against Lambda's limits.

Bytecode: Lambda's filesystem is read-only, so a package without ``__pycache__`` compiles every
module it imports at every cold start (1.2-1.3 s before this step). Bytecode is specific to the
interpreter's minor version (its magic number), so it is made by a CPython 3.12 on this machine
(``--bytecode-python``, else ``python3.12`` on PATH, else pyenv's 3.12), as unchecked-hash
``.pyc`` files (PEP 552: no timestamps, which a zip does not keep reliably; the runtime loads them
without reading the source) with the paths they will have in ``/var/task``. Without a 3.12 the
build stops and says so; ``--no-bytecode`` builds anyway, slow to start.

    python deploy/build_lambda_zip.py [--config FILE] [--out build/routewatch-lambda.zip]

``make lambda-zip [CONFIG=FILE]`` runs it; ``deploy/template.yaml`` points at the zip.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"  # deploy/template.yaml's Runtime
TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the paths compiled into the bytecode
BUNDLED_CONFIG = "routewatch.yaml"  # monitor/aws/lambda_handler.py's BUNDLED_CONFIG
# Not needed by the handler: the lab's CA (and its cryptography), the CLI and the scheduler.
# tests/test_lambda_handler.py checks that importing the handler imports none of them.
EXCLUDED_DISTRIBUTIONS = frozenset({"trustme", "rich", "click", "apscheduler",
                                    "prometheus-client"})
EXCLUDED_MODULES = ("trustme", "cryptography", "rich", "click", "apscheduler",
                    "prometheus_client", "boto3")
EXCLUDED_SOURCE = ("monitor/lab", "monitor/cli")
# Python that makes EXCLUDED_MODULES unimportable, as they are in the package: the import-time
# test and bench/startup.py run it in a fresh interpreter before importing the handler.
BLOCK_EXCLUDED = f"""
import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {EXCLUDED_MODULES!r}:
            raise ImportError(name + " is not in the Lambda package")
        return None
sys.meta_path.insert(0, _Absent())
"""
ZIP_LIMIT_BYTES = 50 * 1024 * 1024  # direct upload
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The project's dependencies minus those the handler does not import."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    keep = []
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()
        if name.replace("_", "-") not in EXCLUDED_DISTRIBUTIONS:
            keep.append(requirement)
    return keep


def install_dependencies(target: Path, requirements: list[str], platform: str = PLATFORM) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(target), "--platform", platform, "--implementation", "cp",
        "--python-version", PYTHON_VERSION, "--only-binary=:all:", "--no-compile",
        "--upgrade", *requirements,
    ]
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def copy_sources(target: Path) -> None:
    for package in ("monitor", "probes"):
        def ignore(directory: str, names: list[str]) -> set[str]:
            relative = Path(directory).relative_to(ROOT).as_posix()
            skipped = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
            skipped |= {n for n in names if f"{relative}/{n}" in EXCLUDED_SOURCE}
            return skipped

        shutil.copytree(ROOT / package, target / package, ignore=ignore)


def prune(target: Path) -> None:
    """Drop what the runtime never reads: bytecode caches built for another interpreter."""
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache)
    for script_dir in (target / "bin",):
        if script_dir.exists():
            shutil.rmtree(script_dir)


class BytecodeError(RuntimeError):
    """No interpreter that makes bytecode the runtime loads, or the compilation failed."""


def _version_of(python: str) -> str | None:
    try:
        result = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_bytecode_python(version: str = PYTHON_VERSION, explicit: str | None = None) -> str:
    """A CPython ``version`` to compile with: ``explicit``, ``pythonX.Y`` on PATH (a pyenv shim
    only counts if it runs), or a pyenv install."""
    if explicit is not None:
        found = _version_of(explicit)
        if found != version:
            raise BytecodeError(f"{explicit} is Python {found or '?'}, not {version}")
        return explicit
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"),
                         reverse=True)
    for candidate in candidates:
        if candidate and _version_of(candidate) == version:
            return candidate
    raise BytecodeError(
        f"no CPython {version} found to compile the package's bytecode (the runtime is "
        f"python{version}; bytecode from another version is ignored): install one (e.g. "
        f"`pyenv install {version}`, or Debian/Ubuntu's python{version}) and pass "
        f"--bytecode-python (make lambda-zip PYTHON312=PATH), or build with --no-bytecode "
        f"(every cold start then compiles the package, ~1 s)")


_COMPILE = """
import compileall, importlib.util, json, sys
from py_compile import PycInvalidationMode
target, prefix = sys.argv[1], sys.argv[2]
ok = compileall.compile_dir(target, quiet=1, workers=0, stripdir=target, prependdir=prefix,
                            invalidation_mode=PycInvalidationMode.UNCHECKED_HASH)
print(json.dumps({"ok": bool(ok), "magic": importlib.util.MAGIC_NUMBER.hex(),
                  "version": sys.version.split()[0], "cache_tag": sys.implementation.cache_tag}))
"""


class Bytecode(NamedTuple):  # not a dataclass: tests load this file without registering it
    """What :func:`compile_bytecode` made."""

    version: str  # the compiling interpreter's, e.g. 3.12.1
    magic: str  # hex of the .pyc magic number, the same for every 3.12.x
    modules: int
    skipped: tuple[str, ...]  # sources that do not compile (not ours; never imported)


def compile_bytecode(target: Path, python: str) -> Bytecode:
    """Compile every module under ``target`` with ``python`` (unchecked-hash .pyc, paths as
    under ``/var/task``) and check that every module got bytecode with that magic number."""
    result = subprocess.run([python, "-c", _COMPILE, str(target), TASK_ROOT],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise BytecodeError(f"compileall failed: {result.stderr.strip()[-2000:]}")
    made = json.loads(result.stdout.strip().splitlines()[-1])
    magic = bytes.fromhex(made["magic"])
    sources = sorted(target.rglob("*.py"))
    missing, foreign = [], []
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{made['cache_tag']}.pyc"
        if not pyc.is_file():
            missing.append(source)
        elif pyc.read_bytes()[:4] != magic:
            foreign.append(pyc)
    if foreign:
        raise BytecodeError(f"bytecode with another magic number: {foreign[:3]}")
    compiled_by_us = [s for s in missing if s.relative_to(target).parts[0] in ("monitor",
                                                                                "probes")]
    if compiled_by_us:  # a file of ours that does not compile would fail at import anyway
        raise BytecodeError(f"not compiled: {compiled_by_us[:3]}: {result.stdout[-1000:]}")
    return Bytecode(made["version"], made["magic"], len(sources) - len(missing),
                    tuple(str(s.relative_to(target)) for s in missing))


def bundle_config(config: Path, target: Path) -> Path | None:
    """Copy ``config`` into the package as ``routewatch.yaml``, validate it with the full loader
    there (a ``ConfigError`` stops the build) and write its pre-validated JSON beside it."""
    if str(ROOT) not in sys.path:  # the monitor package of this checkout, which is what ships
        sys.path.insert(0, str(ROOT))
    from monitor.aws.packaged_config import write_prevalidated

    bundled = target / BUNDLED_CONFIG
    shutil.copyfile(config, bundled)
    return write_prevalidated(bundled)


def write_zip(source: Path, out: Path) -> tuple[int, int, int]:
    """Zip ``source`` deterministically; returns (zip bytes, unzipped bytes, files)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    unzipped = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), _FIXED_TIME)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=9)
    return out.stat().st_size, unzipped, len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="Bundle this file as routewatch.yaml.")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "routewatch-lambda.zip")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--platform", default=PLATFORM,
                        help="wheel platform (bench/startup.py builds one this machine runs)")
    parser.add_argument("--bytecode-python", help=f"a CPython {PYTHON_VERSION} to compile with")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="ship no bytecode (every cold start compiles the package)")
    args = parser.parse_args(argv)

    try:
        python = None if args.no_bytecode else find_bytecode_python(
            PYTHON_VERSION, args.bytecode_python)
    except BytecodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.build_dir.exists():
        shutil.rmtree(args.build_dir)
    args.build_dir.mkdir(parents=True)
    install_dependencies(args.build_dir, runtime_requirements(), args.platform)
    copy_sources(args.build_dir)
    prune(args.build_dir)
    prevalidated = None
    if args.config is not None:
        from monitor.config import ConfigError

        try:
            prevalidated = bundle_config(args.config, args.build_dir)
        except ConfigError as exc:
            print(f"error: the bundled configuration is not valid: {exc}", file=sys.stderr)
            return 1
    bytecode = None
    if python is not None:
        try:
            bytecode = compile_bytecode(args.build_dir, python)
        except BytecodeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    zipped, unzipped, count = write_zip(args.build_dir, args.out)
    print(f"{args.out}: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped, "
          f"{count} files ({args.platform}, CPython {PYTHON_VERSION})")
    if bytecode is not None:
        print(f"bytecode: {bytecode.modules} modules compiled by CPython {bytecode.version} "
              f"(magic {bytecode.magic}, unchecked-hash, paths under {TASK_ROOT})")
        if bytecode.skipped:
            print(f"note: not compilable, left as source: {', '.join(bytecode.skipped)}")
    else:
        print("warning: no bytecode (--no-bytecode): every cold start compiles the package")
    if args.config is None:
        print("note: no --config: set ROUTEWATCH_CONFIG or bundle one (CONFIG=FILE)")
    elif prevalidated is None:
        print("note: service.ca_file is relative: the handler validates the config at cold start")
    else:
        print(f"config: {args.config} validated, stored pre-validated as {prevalidated.name}")
    if zipped > ZIP_LIMIT_BYTES or unzipped > UNZIPPED_LIMIT_BYTES:
        print("error: over Lambda's package limits (50 MB zipped, 250 MB unzipped)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
