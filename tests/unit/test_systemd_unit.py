"""deploy/routewatch.service: valid for systemd (``systemd-analyze verify``), hardened (its
offline security review under a threshold), and wired to what ``routewatch serve`` does."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "routewatch.service"
INSTALLED_AT = "/opt/routewatch/bin/routewatch"  # where the unit's comment installs it
MAX_EXPOSURE = 20  # tenths: systemd rates 0 (locked down) to 10 (exposed); this unit 1.1


def systemd_analyze() -> str:
    return require_tool("systemd-analyze", "systemd")


def directives(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values in order (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit_for_this_machine(directory: Path) -> Path:
    """The unit with ExecStart pointing at this environment's routewatch (verify checks that the
    binary exists); nothing else changed."""
    here = Path(sys.executable).parent / "routewatch"
    assert here.exists(), here
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_AT in text
    path = directory / UNIT.name
    path.write_text(text.replace(INSTALLED_AT, str(here)), encoding="utf-8")
    return path


def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    run = subprocess.run([systemd_analyze(), "verify", str(unit_for_this_machine(tmp_path))],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    # verify reports unknown keys and bad values as warnings with exit 0: any output is a finding
    assert run.stdout + run.stderr == ""


def test_systemd_analyze_verify_reports_a_mistake(tmp_path: Path) -> None:
    """The control for the test above: an unknown key and a bad value are reported here."""
    bad = unit_for_this_machine(tmp_path)
    bad.write_text(bad.read_text(encoding="utf-8").replace(
        "Restart=on-failure", "Restart=sometimes\nProtectEverything=yes"), encoding="utf-8")
    run = subprocess.run([systemd_analyze(), "verify", str(bad)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert "Unknown key 'ProtectEverything'" in run.stderr
    assert "sometimes" in run.stderr


def test_security_exposure_is_low(tmp_path: Path) -> None:
    run = subprocess.run([systemd_analyze(), "security", "--offline=true",
                          f"--threshold={MAX_EXPOSURE}", str(unit_for_this_machine(tmp_path))],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr


def test_hardening_asked_for() -> None:
    service = directives(UNIT.read_text(encoding="utf-8"))["Service"]
    expected = {
        "DynamicUser": ["yes"], "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"], "PrivateTmp": ["yes"], "CapabilityBoundingSet": [""],
        "Restart": ["on-failure"],
    }
    for key, values in expected.items():
        assert service.get(key) == values, key
    [families] = service["RestrictAddressFamilies"]
    assert sorted(families.split()) == ["AF_INET", "AF_INET6", "AF_UNIX"]


def test_runs_serve_and_reloads_with_sighup() -> None:
    service = directives(UNIT.read_text(encoding="utf-8"))["Service"]
    [start] = service["ExecStart"]
    argv = shlex.split(start)
    assert argv[:2] == [INSTALLED_AT, "serve"]
    config = Path(argv[argv.index("--config") + 1])
    assert config.parent == Path("/etc") / service["ConfigurationDirectory"][0]
    # serve reloads its configuration on SIGHUP (monitor/serve: signal handlers)
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    run = subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()",
                          *argv[1:], "--help"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stderr  # every option the unit passes exists


def test_serve_handles_the_reload_signal() -> None:
    serve = ROOT / "monitor" / "serve"
    assert any("signal.SIGHUP" in f.read_text(encoding="utf-8") for f in serve.rglob("*.py"))
