"""A throwaway CA and a server certificate for one name, written as PEM files (trustme): what a
test's own origins (the packet-level lab's) serve and what its probes trust."""

from __future__ import annotations

from pathlib import Path

import trustme

__all__ = ["write_tls_files"]


def write_tls_files(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """The certificate chain, its private key and the CA certificate, in ``folder``."""
    ca = trustme.CA()
    issued = ca.issue_cert(name)
    cert, key, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return cert, key, ca_file
