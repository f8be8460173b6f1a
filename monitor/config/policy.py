"""Runtime policy read off a valid configuration: which vantage points run here, and legal
settings that will bite in production."""

from __future__ import annotations

from monitor.config.schema import Config

__all__ = ["local_vantage_points", "production_warnings"]


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
    names = {"service.origin_name": config.service.origin_name,
             "service.cdn_name": config.service.cdn_name}
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
