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
    "IpFamily",
    "IpRangesSettings",
    "LoadedConfig",
    "ProbeSettings",
    "Region",
    "ServeSettings",
    "Service",
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


@dataclass(frozen=True)
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
    document = yaml_document(text, source)
    try:
        config = Config.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(document, exc)) from None
    configured = config
    if relative_to is not None and config.service.ca_file is not None \
            and not config.service.ca_file.is_absolute():
        service = config.service.model_copy(
            update={"ca_file": relative_to / config.service.ca_file})
        config = config.model_copy(update={"service": service})
    problems = [ConfigProblem(format_key_path(loc), message, line_of(document, loc))
                for loc, message in file_problems(config, configured)]
    if problems:
        raise ConfigError(source, problems)
    return LoadedConfig(config, source, tuple(production_warnings(config)))


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate a configuration file."""
    file = Path(path)
    return parse_config(read_text_file(file), str(file), relative_to=file.parent)


def config_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file, for editors."""
    return Config.model_json_schema()
