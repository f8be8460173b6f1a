"""The routewatch configuration: YAML, validated by pydantic v2, unknown keys rejected.

Load with :func:`load_config`; a bad file raises :class:`ConfigError` carrying one
:class:`ConfigProblem` per mistake (key path, line where known, message). Production pitfalls that
are legal but will bite (a host name with ``_``) come back as warnings on :class:`LoadedConfig`.

Files by job: :mod:`~monitor.config.schema` (the models), :mod:`~monitor.config.loader` (the
line-aware YAML loader and problem reports, shared with the lab), :mod:`~monitor.config.policy`
(what a valid configuration implies at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.config.loader import (
    ConfigError,
    ConfigProblem,
    read_text_file,
    validation_problems,
    yaml_document,
)
from monitor.config.policy import local_vantage_points, production_warnings
from monitor.config.schema import (
    AlarmSettings,
    CdnSettings,
    CloudWatchSettings,
    Config,
    Estimator,
    IpRangesSettings,
    ProbeSettings,
    Region,
    ServeSettings,
    Service,
    Tolerance,
    VantagePoint,
    split_endpoint,
    split_listen,
)

__all__ = [
    "AlarmSettings",
    "CdnSettings",
    "CloudWatchSettings",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Estimator",
    "IpRangesSettings",
    "LoadedConfig",
    "ProbeSettings",
    "Region",
    "ServeSettings",
    "Service",
    "Tolerance",
    "VantagePoint",
    "config_schema",
    "load_config",
    "local_vantage_points",
    "parse_config",
    "production_warnings",
    "split_endpoint",
    "split_listen",
]


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    source: str
    warnings: tuple[str, ...] = field(default=())


def parse_config(text: str, source: str = "<config>") -> LoadedConfig:
    """Parse and validate YAML text; raise :class:`ConfigError` listing every problem."""
    document = yaml_document(text, source)
    try:
        config = Config.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(document, exc)) from None
    return LoadedConfig(config, source, tuple(production_warnings(config)))


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate a configuration file."""
    file = Path(path)
    loaded = parse_config(read_text_file(file), str(file))
    config = loaded.config
    if config.service.ca_file is not None and not config.service.ca_file.is_absolute():
        # a relative CA path is relative to the config file, so configs can travel with their CA
        ca_file = file.parent / config.service.ca_file
        service = config.service.model_copy(update={"ca_file": ca_file})
        config = config.model_copy(update={"service": service})
        loaded = LoadedConfig(config, loaded.source, loaded.warnings)
    return loaded


def config_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file, for editors."""
    return Config.model_json_schema()
