"""Cold start of the Lambda handler: importing ``monitor.aws.lambda_handler`` in a fresh
interpreter, from the dev venv and from the deployment package, beside ``python -c pass``.

Every figure is a fresh process (median of N, the variants interleaved run by run so a busy
moment of a shared machine spreads over all of them). Inside each process the import is timed
(wall and CPU) with the modules the package leaves out, and boto3, made unimportable (as
``tests/unit/test_lambda_handler.py`` does), then the bundled configuration is loaded as the
first invocation does (``_load``: pre-validated JSON when the package has it, else the full
loader). From outside, the whole process's wall time, against ``python -c pass`` of the same
interpreter with the same flags.

Variants:

* dev venv, bytecode cached (``PYTHONPYCACHEPREFIX`` in a temporary folder, written by one
  warm-up run): what a developer's machine pays;
* dev venv with ``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__`` for ``monitor``/``probes``
  (this VM's environment; only when the tree has none): our modules compiled at every import;
* the package, as ``deploy/build_lambda_zip.py`` builds it but for this machine's platform
  (``manylinux2014_<machine>`` wheels, the same CPython 3.12 bytecode), run by a CPython 3.12
  with ``-I -S`` and ``sys.dont_write_bytecode`` (Lambda's filesystem is read-only);
* the same package with dnspython's own feature checks (``importlib.metadata``) instead of
  ``probes/_dns_features``'s stand-in: the import before that cut;
* the same package with its ``__pycache__`` folders removed: what ``make lambda-zip`` shipped
  before it compiled bytecode.

``--compare-package DIR`` adds another unzipped package (e.g. built from an earlier commit) to
the interleaved runs and prints this package's import over it. Last, when valgrind is installed
(``make bench`` installs it as root), the import from each package is counted in instructions
(callgrind): a figure that the machine's load and its host's noise do not move (repeatable to
~0.1 %), to compare two builds where wall times of a shared VM drift from hour to hour.

As root, every measured process runs at real-time priority (``chrt -f 10``): on a shared
machine the neighbours can then not preempt it, so its wall time is its own work (they still
share caches and memory bandwidth). ``--priority normal`` measures as any process runs.

    .venv/bin/python bench/startup.py [--runs 15] [--package-dir DIR] [--bytecode-python PATH]
                                      [--compare-package DIR]

Without ``--package-dir`` it builds one into ``build/bench-lambda-<machine>/`` (pip downloads
the wheels; ~20 s). Results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))

import build_lambda_zip  # noqa: E402  (deploy/ is not a package)

CONFIG = ROOT / "examples" / "two-regions.yaml"

# Runs in the measured interpreter: argv = [package dir or "", config or ""]
_PROBE = build_lambda_zip.BLOCK_EXCLUDED + """
import json, os, time
package, config = sys.argv[1], sys.argv[2]
if package:
    sys.path.insert(0, package)
    sys.dont_write_bytecode = True  # Lambda's /var/task is read-only
wall, cpu = time.perf_counter(), time.process_time()
if os.environ.get("ROUTEWATCH_BENCH_DNS_FEATURES"):
    import dns._features  # dnspython's own feature checks, as before probes/_dns_features
import monitor.aws.lambda_handler as handler
imported = (time.perf_counter() - wall, time.process_time() - cpu)
loaded = None
if config:
    from pathlib import Path
    handler._load(Path(config))
    loaded = (time.perf_counter() - wall, time.process_time() - cpu)
print(json.dumps({"import": imported, "with_config": loaded,
                  "heavy": sorted(m for m in ("httpx", "pydantic", "yaml", "dns", "rich",
                                              "airportsdata", "boto3", "importlib.metadata")
                                  if m in sys.modules)}))
"""


@dataclass(frozen=True)
class ProbeRun:
    """What one measured process reports about itself (seconds)."""

    import_wall: float
    import_cpu: float
    config_wall: float | None  # import + the first invocation's config load
    loaded: tuple[str, ...]  # heavy modules loaded by then


@dataclass
class Variant:
    name: str
    command: list[str]
    env: dict[str, str]
    baseline: str | None = None  # the name of its `-c pass` variant
    runs: list[ProbeRun] = field(default_factory=list)
    process_wall: list[float] = field(default_factory=list)
    process_cpu: list[float] = field(default_factory=list)

    def run(self) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(self.command, env=self.env, capture_output=True, text=True,
                                timeout=120, check=False)
        self.process_wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.process_cpu.append(after.ru_utime + after.ru_stime
                                - before.ru_utime - before.ru_stime)
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: exit {result.returncode}: {result.stderr[-2000:]}")
        if result.stdout.strip():
            report = json.loads(result.stdout.strip().splitlines()[-1])
            self.runs.append(ProbeRun(report["import"][0], report["import"][1],
                                      (report["with_config"] or [None])[0],
                                      tuple(report["heavy"])))


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return (f"{statistics.median(ordered) * 1000:.0f} "
            f"({ordered[0] * 1000:.0f}-{ordered[-1] * 1000:.0f})")


def build_package(bytecode_python: str | None) -> Path:
    machine = platform.machine()
    build_dir = ROOT / "build" / f"bench-lambda-{machine}"
    argv = ["--config", str(CONFIG), "--platform", f"manylinux2014_{machine}",
            "--build-dir", str(build_dir), "--out", str(build_dir.with_suffix(".zip"))]
    if bytecode_python:
        argv += ["--bytecode-python", bytecode_python]
    if build_lambda_zip.main(argv) != 0:
        raise SystemExit("building the package failed")
    return build_dir


def variants(package: Path | None, python312: str | None, workdir: Path,
             prefix: Sequence[str] = (), compare: Path | None = None) -> list[Variant]:
    venv = sys.executable
    cache = workdir / "pycache"
    found: list[Variant] = [
        Variant("python -c pass (dev venv)", [venv, "-c", "pass"], _env()),
        Variant("handler, dev venv, bytecode cached",
                [venv, "-c", _PROBE, "", str(CONFIG)],
                _env(PYTHONPYCACHEPREFIX=str(cache)), "python -c pass (dev venv)"),
    ]
    if not (ROOT / "monitor" / "__pycache__").exists():
        found.append(Variant(
            "handler, dev venv, monitor/probes compiled at import",
            [venv, "-c", _PROBE, "", str(CONFIG)],
            _env(PYTHONDONTWRITEBYTECODE="1"), "python -c pass (dev venv)"))
    if package is not None and python312 is not None:
        bare = workdir / "package-without-bytecode"
        shutil.copytree(package, bare, ignore=shutil.ignore_patterns("__pycache__"))
        config = package / build_lambda_zip.BUNDLED_CONFIG
        flags = [python312, "-I", "-S"]
        found += [
            Variant("python3.12 -I -S -c pass", [*flags, "-c", "pass"], _env()),
            Variant("handler, package with bytecode",
                    [*flags, "-c", _PROBE, str(package), str(config)], _env(),
                    "python3.12 -I -S -c pass"),
            Variant("handler, package with bytecode, dnspython's feature checks (before)",
                    [*flags, "-c", _PROBE, str(package), str(config)],
                    _env(ROUTEWATCH_BENCH_DNS_FEATURES="1"), "python3.12 -I -S -c pass"),
            Variant("handler, package without bytecode (before)",
                    [*flags, "-c", _PROBE, str(bare), str(bare / config.name)], _env(),
                    "python3.12 -I -S -c pass"),
        ]
        if compare is not None:
            found.append(Variant(
                f"handler, package of {compare.name} (--compare-package)",
                [*flags, "-c", _PROBE, str(compare),
                 str(compare / build_lambda_zip.BUNDLED_CONFIG)], _env(),
                "python3.12 -I -S -c pass"))
    for variant in found:
        variant.command = [*prefix, *variant.command]
    return found


_IMPORT_ONLY = """
import sys
sys.path.insert(0, sys.argv[1])
sys.dont_write_bytecode = True
import monitor.aws.lambda_handler
"""


def instructions(command: Sequence[str]) -> int | None:
    """Instructions ``command`` executes, counted by valgrind's callgrind: the same for the same
    binary and inputs whatever else the machine does (None without valgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with tempfile.TemporaryDirectory(prefix="routewatch-callgrind-") as tmp:
        result = subprocess.run([valgrind, "--tool=callgrind",
                                 f"--callgrind-out-file={tmp}/out", *command],
                                capture_output=True, text=True, timeout=600, check=False)
    found = [line for line in result.stderr.splitlines() if "Collected :" in line]
    if result.returncode != 0 or not found:
        raise RuntimeError(f"callgrind: exit {result.returncode}: {result.stderr[-1000:]}")
    return int(found[-1].rsplit(":", 1)[1].strip())


def print_instructions(python312: str, package: Path, compare: Path | None) -> None:
    flags = [python312, "-I", "-S"]
    counted = [("python3.12 -I -S -c pass", [*flags, "-c", "pass"]),
               ("import the handler, this package", [*flags, "-c", _IMPORT_ONLY, str(package)])]
    if compare is not None:
        counted.append((f"import the handler, package of {compare.name}",
                        [*flags, "-c", _IMPORT_ONLY, str(compare)]))
    counts = {name: instructions(command) for name, command in counted}
    if None in counts.values():
        print("\ninstructions: skipped (no valgrind)")
        return
    start = counts["python3.12 -I -S -c pass"] or 0
    print("\ninstructions (valgrind callgrind; repeatable to ~0.1 %, whatever the load):")
    for name, count in counts.items():
        print(f"  {name}: {count:,}" + (f" ({(count or 0) - start:,} beyond -c pass)"
                                       if count != start else ""))
    if compare is not None:
        this, other = list(counts.values())[1:]
        print(f"  beyond -c pass, this package / package of {compare.name}: "
              f"{((this or 0) - start) / ((other or 0) - start):.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--package-dir", type=Path,
                        help="an unzipped package for this machine (default: build one)")
    parser.add_argument("--bytecode-python", help="a CPython 3.12 (default: found as the "
                                                  "build script finds it)")
    parser.add_argument("--no-package", action="store_true", help="only the dev venv")
    parser.add_argument("--compare-package", type=Path,
                        help="another unzipped package (e.g. built from an earlier commit), "
                             "measured interleaved with this one")
    parser.add_argument("--priority", choices=("realtime", "normal"),
                        default="realtime" if os.geteuid() == 0 and shutil.which("chrt")
                        else "normal",
                        help="realtime (root): every measured process runs SCHED_FIFO, so "
                             "the neighbours of a shared machine cannot preempt it")
    args = parser.parse_args(argv)
    runs = max(3, min(args.runs, 200))

    python312: str | None = None
    package: Path | None = None
    if not args.no_package:
        try:
            python312 = build_lambda_zip.find_bytecode_python(
                build_lambda_zip.PYTHON_VERSION, args.bytecode_python)
        except build_lambda_zip.BytecodeError as exc:
            print(f"skipping the package: {exc}")
        if python312 is not None:
            package = args.package_dir or build_package(python312)

    print(f"Lambda handler cold start, {time.strftime('%Y-%m-%d %H:%M:%S')}; machine: "
          f"{os.cpu_count()} CPUs, {platform.machine()}, load average "
          f"{os.getloadavg()[0]:.2f}; scheduling {args.priority}; dev venv Python "
          f"{platform.python_version()}"
          + (f", package run by {python312}" if python312 else ""))
    with tempfile.TemporaryDirectory(prefix="routewatch-startup-") as tmp:
        prefix = ["chrt", "-f", "10"] if args.priority == "realtime" else []
        measured = variants(package, python312, Path(tmp), prefix, args.compare_package)
        for variant in measured:  # warm-up: writes the dev venv's bytecode cache, fills caches
            variant.run()
            variant.runs.clear()
            variant.process_wall.clear()
            variant.process_cpu.clear()
        for _ in range(runs):
            for variant in measured:
                variant.run()

    by_name = {v.name: v for v in measured}
    print(f"\n{runs} runs each, interleaved; ms, median (min-max)")
    header = ["variant", "process wall", "x `-c pass`", "process CPU", "import wall",
              "import CPU", "+ config load, wall"]
    rows = []
    for variant in measured:
        base = by_name.get(variant.baseline or "")
        ratio = (statistics.median(variant.process_wall) / statistics.median(base.process_wall)
                 if base else None)
        rows.append([
            variant.name, _ms(variant.process_wall), f"{ratio:.1f}" if ratio else "-",
            _ms(variant.process_cpu), _ms([r.import_wall for r in variant.runs]),
            _ms([r.import_cpu for r in variant.runs]),
            _ms([r.config_wall for r in variant.runs if r.config_wall is not None]),
        ])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(row, widths, strict=True))))
    compared = [v for v in measured if v.name.endswith("(--compare-package)")]
    this = by_name.get("handler, package with bytecode")
    if compared and this is not None:
        ratio = (statistics.median(r.import_wall for r in this.runs)
                 / statistics.median(r.import_wall for r in compared[0].runs))
        print(f"import wall, this package / {compared[0].name}: {ratio:.2f}")
    for variant in measured:
        if variant.runs:
            print(f"loaded after import + config load ({variant.name}): "
                  f"{', '.join(variant.runs[0].loaded)}")
    if package is not None and python312 is not None:
        print_instructions(python312, package, args.compare_package)
    return 0


if __name__ == "__main__":
    sys.exit(main())
