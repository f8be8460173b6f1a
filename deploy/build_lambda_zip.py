"""Build the probe's Lambda deployment package for arm64, without Docker.

pip installs the runtime dependencies as manylinux2014_aarch64 wheels for CPython 3.12
(``--platform``/``--only-binary=:all:``, since pydantic-core and others are compiled), the
``monitor`` and ``probes`` packages are copied beside them, and everything is zipped with fixed
timestamps (same inputs, same bytes). The size is reported and checked against Lambda's limits.

    python deploy/build_lambda_zip.py [--config FILE] [--out build/routewatch-lambda.zip]

``make lambda-zip [CONFIG=FILE]`` runs it; ``deploy/template.yaml`` points at the zip.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"  # deploy/template.yaml's Runtime
# Not needed by the handler: the lab's CA (and its cryptography), the CLI and the scheduler.
# tests/test_lambda_handler.py checks that importing the handler imports none of them.
EXCLUDED_DISTRIBUTIONS = frozenset({"trustme", "rich", "click", "apscheduler",
                                    "prometheus-client"})
EXCLUDED_MODULES = ("trustme", "cryptography", "rich", "click", "apscheduler",
                    "prometheus_client", "boto3")
EXCLUDED_SOURCE = ("monitor/lab", "monitor/cli")
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


def install_dependencies(target: Path, requirements: list[str]) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(target), "--platform", PLATFORM, "--implementation", "cp",
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
    args = parser.parse_args(argv)

    if args.build_dir.exists():
        shutil.rmtree(args.build_dir)
    args.build_dir.mkdir(parents=True)
    install_dependencies(args.build_dir, runtime_requirements())
    copy_sources(args.build_dir)
    if args.config is not None:
        shutil.copyfile(args.config, args.build_dir / "routewatch.yaml")
    prune(args.build_dir)
    zipped, unzipped, count = write_zip(args.build_dir, args.out)
    print(f"{args.out}: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped, "
          f"{count} files ({PLATFORM}, CPython {PYTHON_VERSION})")
    if args.config is None:
        print("note: no --config: set ROUTEWATCH_CONFIG or bundle one (CONFIG=FILE)")
    if zipped > ZIP_LIMIT_BYTES or unzipped > UNZIPPED_LIMIT_BYTES:
        print("error: over Lambda's package limits (50 MB zipped, 250 MB unzipped)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
