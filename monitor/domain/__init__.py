"""Domain vocabulary every layer shares: region and airport locations, name patterns, reasons,
and the root of every routewatch error (:class:`RoutewatchError`, defined in probes.errors: probes
are the lowest layer)."""

from probes.errors import RoutewatchError

__all__ = ["RoutewatchError"]
