"""A local wheelhouse from the test environment's own installed distributions, for offline pip.

Tests may not reach a package index, so ``pip install --no-index --find-links WHEELHOUSE`` is fed
wheels repacked from what this virtual environment already has installed (each distribution's
RECORD lists its files; RECORD is rewritten with fresh hashes). Only the dependency closure of the
requirements asked for is packed, with extras left out unless named.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["dependency_closure", "repack", "wheelhouse"]

# installer-specific files that do not belong in a wheel
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def dependency_closure(requirements: Iterable[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions that ``requirements`` need, transitively (by canonical name)."""
    found: dict[str, metadata.Distribution] = {}
    pending = [Requirement(r) for r in requirements]
    for _ in range(10_000):  # bounded: each distribution is expanded once
        if not pending:
            return found
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        dist = metadata.distribution(requirement.name)
        found[name] = dist
        extras = requirement.extras or {""}
        for text in dist.requires or []:
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                pending.append(child)
    raise RuntimeError("dependency closure did not converge")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def repack(dist: metadata.Distribution, directory: Path) -> Path:
    """Write one installed distribution back out as a wheel in ``directory``."""
    name = dist.metadata["Name"].replace("-", "_").replace(".", "_")
    version = dist.version
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    wheel = directory / f"{name}-{version}-{tags[0] if tags else 'py3-none-any'}.whl"
    dist_info = f"{name}-{version}.dist-info"
    records: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for file in dist.files or []:
            parts = PurePosixPath(str(file)).parts
            if ".." in parts or "__pycache__" in parts:
                continue  # scripts pip regenerates from entry points; bytecode
            source = Path(str(dist.locate_file(file)))
            if not source.is_file():
                continue
            if parts[0].endswith(".dist-info"):
                if parts[-1] in _INSTALLER_FILES:
                    continue
                arcname = "/".join((dist_info, *parts[1:]))
            else:
                arcname = "/".join(parts)
            data = source.read_bytes()
            archive.writestr(arcname, data)
            records.append(f"{arcname},{_record_hash(data)},{len(data)}")
        records.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(records) + "\n")
    return wheel


def wheelhouse(requirements: Iterable[str], directory: Path) -> dict[str, Path]:
    """Repack the closure of ``requirements`` into ``directory``; canonical name -> wheel."""
    directory.mkdir(parents=True, exist_ok=True)
    return {name: repack(dist, directory)
            for name, dist in dependency_closure(requirements).items()}
