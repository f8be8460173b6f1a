"""The routewatch configuration: YAML, validated by pydantic v2, unknown keys rejected.

Load with :func:`load_config`; a bad file raises :class:`ConfigError` carrying one
:class:`ConfigProblem` per mistake (key path, line where known, message). Production pitfalls that
are legal but will bite (a host name with ``_``) come back as warnings on :class:`LoadedConfig`.

Files by job: :mod:`~monitor.config.schema` (the configuration's types: frozen dataclasses that
load no pydantic), :mod:`~monitor.config.validation` (the pydantic validator and JSON Schema
built from them, imported when a file is validated), :mod:`~monitor.config.loader` (the
line-aware YAML loader and problem reports, shared with the lab), :mod:`~monitor.config.policy`
(what a valid configuration implies at run time).
"""

from __future__ import annotations

from dataclasses import field, replace
from pathlib import Path
from typing import Any, TypeVar

from monitor.config.loader import (
    ConfigError,
    ConfigProblem,
    format_key_path,
    line_of,
    read_text_file,
    validation_problems,
    yaml_document,
)
from monitor.config.policy import (
    address_policy,
    file_problems,
    local_vantage_points,
    production_warnings,
)
from monitor.config.schema import (
    DEFAULT_SERVICE,
    AlarmSettings,
    CdnSettings,
    CloudWatchSettings,
    Config,
    Estimator,
    IpFamily,
    IpRangesSettings,
    ProbeSettings,
    Region,
    ServeSettings,
    Service,
    ServiceEntry,
    ServiceRegion,
    SeveralServices,
    Tolerance,
    VantagePoint,
    split_endpoint,
    split_listen,
)
from probes.records import record

ServiceT = TypeVar("ServiceT", bound=Service)

__all__ = [
    "DEFAULT_SERVICE",
    "AlarmSettings",
    "CdnSettings",
    "CloudWatchSettings",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Estimator",
    "IpFamily",
    "IpRangesSettings",
    "LoadedConfig",
    "ProbeSettings",
    "Region",
    "ServeSettings",
    "Service",
    "ServiceEntry",
    "ServiceRegion",
    "SeveralServices",
    "Tolerance",
    "VantagePoint",
    "address_policy",
    "config_schema",
    "load_config",
    "local_vantage_points",
    "parse_config",
    "production_warnings",
    "split_endpoint",
    "split_listen",
]


@record
class LoadedConfig:
    config: Config
    source: str
    warnings: tuple[str, ...] = field(default=())


def parse_config(text: str, source: str = "<config>", *,
                 relative_to: Path | None = None) -> LoadedConfig:
    """Parse and validate YAML text; raise :class:`ConfigError` listing every problem.

    Relative file paths (``service.ca_file``) are resolved against ``relative_to`` (the config
    file's folder), so configs can travel with their CA; the files named are checked now, not at
    the first round."""
    from pydantic import ValidationError

    from monitor.config.validation import validate_config

    document = yaml_document(text, source)
    try:
        config = validate_config(document)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(document, exc)) from None
    configured = config
    if relative_to is not None:
        config = _ca_files_relative_to(config, relative_to)
    problems = [ConfigProblem(format_key_path(loc), message, line_of(document, loc))
                for loc, message in file_problems(config, configured)]
    if problems:
        raise ConfigError(source, problems)
    return LoadedConfig(config, source, tuple(production_warnings(config)))


def _ca_files_relative_to(config: Config, folder: Path) -> Config:
    """Every service's relative ``ca_file`` resolved against the configuration's folder."""
    def resolved(service: ServiceT) -> ServiceT:
        ca_file = service.ca_file
        if ca_file is None or ca_file.is_absolute():
            return service
        return replace(service, ca_file=folder / ca_file)

    if config.services is not None:
        return replace(config, services={
            name: resolved(entry) for name, entry in config.services.items()})
    return replace(config, single_service=resolved(config.service))


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate a configuration file."""
    file = Path(path)
    return parse_config(read_text_file(file), str(file), relative_to=file.parent)


def config_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file, for editors."""
    from monitor.config.validation import adapter

    return adapter(Config).json_schema()
