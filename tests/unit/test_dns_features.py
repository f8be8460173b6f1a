"""dnspython's feature checks without importlib.metadata (``probes._dns_features``): importing
the DNS probe loads no package metadata machinery, and dnspython's name codec is the one its own
check would choose (IDNA 2008 when ``idna`` is installed). Fresh interpreters, no sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _fresh(code: str) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True)
    found: dict[str, object] = json.loads(run.stdout)
    return found


def test_the_dns_probe_imports_no_package_metadata_and_keeps_dnspythons_idna_choice() -> None:
    ours = _fresh("import json, sys, probes.dns, dns.name, dns._features as f; print(json.dumps("
                  "{'metadata': 'importlib.metadata' in sys.modules, 'idna': "
                  "dns.name.have_idna_2008, 'doh': f.have('doh'), 'dnssec': f.have('dnssec')}))")
    theirs = _fresh("import json, dns.name, dns._features as f; print(json.dumps("
                    "{'idna': dns.name.have_idna_2008, 'doh': f.have('doh')}))")
    assert ours["metadata"] is False
    assert ours["idna"] == theirs["idna"]
    assert ours["doh"] is False
    assert ours["dnssec"] is False


def test_dnspython_loaded_first_keeps_its_own_checks() -> None:
    found = _fresh("import json, sys, dns.name, probes.dns; print(json.dumps("
                   "{'real': hasattr(sys.modules['dns._features'], '_requirements')}))")
    assert found["real"] is True
