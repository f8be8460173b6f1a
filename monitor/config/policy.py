"""Runtime policy read off a valid configuration: which vantage points run here, and legal
settings that will bite in production."""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path

from monitor.config.loader import KeyPath
from monitor.config.schema import Config
from probes.addresses import AddressPolicy

__all__ = ["address_policy", "file_problems", "local_vantage_points", "production_warnings"]


def address_policy(config: Config) -> AddressPolicy:
    """Where a probe may connect: globally routable unicast addresses, the networks of
    ``probe.allow_addresses``, and the regions' addresses written in the configuration (trusted
    as written); any other address a DNS answer names is refused."""
    written = sorted({a for _, view in config.service_views()
                      for region in view.regions.values() for a in region.addresses})
    return _policy((*config.probe.allow_addresses, *written))


@lru_cache(maxsize=16)
def _policy(networks: tuple[str, ...]) -> AddressPolicy:
    return AddressPolicy.allowing(*networks)


def file_problems(config: Config, configured: Config | None = None) -> list[tuple[KeyPath, str]]:
    """Files the configuration names that cannot serve: found at load (and on SIGHUP, which
    then keeps the old configuration), not as a failure in every round. ``configured`` is the
    configuration as written (paths not yet resolved), for the messages."""
    problems: list[tuple[KeyPath, str]] = []
    as_written = dict((configured or config).service_settings())
    for where, service in config.service_settings():
        problems.extend(((*where, "ca_file"), message) for message in _ca_file_problems(
            service.ca_file, as_written[where].ca_file))
    ranges = config.ip_ranges.file
    if ranges is not None and ranges.exists() and not ranges.is_file():
        # a missing file is only a warning at run time (attribution goes on without it)
        problems.append((("ip_ranges", "file"), f"{str(ranges)!r} is not a regular file"))
    return problems


def _ca_file_problems(ca_file: Path | None, written: Path | None) -> list[str]:
    if ca_file is None:
        return []
    if not ca_file.is_file():
        what = "is a directory" if ca_file.is_dir() else "does not exist or is not a file"
        if written is not None and not written.is_absolute():
            what += " (relative to the configuration file's folder)"
        return [f"{str(written)!r} {what}"]
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(ca_file))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return [f"{str(written)!r} is not a PEM certificate bundle ({exc.__class__.__name__})"]
    return []


def local_vantage_points(config: Config, aws_region: str | None = None) -> list[str]:
    """The vantage points that run on this machine: those without a ``region`` (a laptop, a CI
    runner, a server), plus the one whose ``region`` is the region this runs in, if any. A
    vantage point with a ``region`` elsewhere is a regional probe: measuring it from here would
    label this machine's numbers with its name."""
    return [name for name, vantage in config.vantage_points.items()
            if vantage.region is None or vantage.region == aws_region]


def production_warnings(config: Config) -> list[str]:
    """Legal settings that will fail in production."""
    warnings = []
    names: dict[str, str | None] = {}
    for where, service in config.service_settings():
        key = ".".join(where)
        names[f"{key}.origin_name"] = service.origin_name
        names[f"{key}.cdn_name"] = service.cdn_name
    for key, name in names.items():
        if name and "_" in name:
            warnings.append(
                f"{key}: {name!r} contains '_': public CAs (ACM included) issue no certificate "
                f"for it, so HTTPS to it (e.g. from CloudFront) fails; use "
                f"{name.replace('_', '-')!r}"
            )
    from monitor.domain.geo import REGION_LOCATIONS

    for region in config.regions:
        if region not in REGION_LOCATIONS:
            warnings.append(f"regions.{region}: not an AWS region routewatch knows (a typo?); "
                            f"distance rules (cdn, location) cannot use it")
    for name, vantage in config.vantage_points.items():
        if vantage.client_subnet is None and config.authoritative:
            warnings.append(
                f"vantage_points.{name}: no client_subnet, so the authoritative query carries "
                f"no ECS and Route 53 answers for this machine's address instead"
            )
    return warnings
