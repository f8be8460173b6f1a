"""dnspython's optional-feature checks, answered without ``importlib.metadata``.

At import, dnspython asks ``dns._features.have(...)`` which optional packages are installed, and
that module imports ``importlib.metadata`` (email, zipfile, csv, …) and scans every distribution
on ``sys.path``: ~20 ms of the Lambda handler's cold start, to learn about features routewatch
never uses (DNSSEC, DNS over HTTPS/QUIC, trio, WMI). :func:`install` puts a stand-in with the
same API (``have``, ``force``) in its place — when this module is imported, so import it before
dnspython is first imported (:mod:`probes.dns` does): ``idna`` is
there when the ``idna`` package can be imported (``dns.name`` then encodes IDNA 2008, as with
the real check), everything else is off. When dnspython was imported already, nothing changes.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["install"]

_NAME = "dns._features"


def _stand_in() -> types.ModuleType:
    module = types.ModuleType(_NAME, "routewatch's stand-in for dnspython's feature checks")
    cache: dict[str, bool] = {"idna": importlib.util.find_spec("idna") is not None}

    def have(feature: str) -> bool:
        """Is ``feature`` available? Only ``idna`` can be (see :mod:`probes._dns_features`)."""
        return cache.setdefault(feature, False)

    def force(feature: str, enabled: bool) -> None:
        """Set a feature's status, as dnspython's own ``force`` does."""
        cache[feature] = enabled

    module.__dict__.update(have=have, force=force, _cache=cache)
    return module


def install() -> None:
    """Stand in for ``dns._features`` unless dnspython has loaded its own."""
    if _NAME in sys.modules:
        return
    import dns  # the package alone: its version, no feature checks

    stand_in = _stand_in()
    sys.modules[_NAME] = stand_in
    dns._features = stand_in  # type: ignore[attr-defined]


install()
