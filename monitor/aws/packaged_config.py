"""The Lambda package's configuration, validated once when the package is built.

``deploy/build_lambda_zip.py --config FILE`` validates the file with the full loader (a bad file
stops the build with the loader's messages) and writes :func:`prevalidated_path` beside it: the
validated configuration as JSON (every section tagged with its class, so it is rebuilt exactly),
its own SHA-256, the SHA-256 of the YAML it came from and the loader's warnings. At a cold start
:func:`load_packaged_config` rebuilds the :class:`~monitor.config.Config` from that JSON with the
dataclasses' own constructors (no validator runs and pydantic is never imported: it was about a
third of the handler's import) when both hashes still hold, and otherwise (the YAML edited, the
JSON altered or missing, an older format, a relative ``ca_file``, a file that is gone) falls
back to :func:`~monitor.config.load_config`, which also gives the precise error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from enum import Enum
from pathlib import Path
from typing import Any

from monitor.config import Config, LoadedConfig, load_config, schema
from monitor.config.loader import read_text_file, yaml_document
from monitor.config.policy import file_problems

__all__ = [
    "PREVALIDATED_FORMAT",
    "construct_config",
    "encode_config",
    "load_packaged_config",
    "prevalidated_document",
    "prevalidated_path",
    "write_prevalidated",
]

log = logging.getLogger(__name__)

PREVALIDATED_FORMAT = 2  # 1: pydantic's model_dump, rebuilt with model_construct
_SUFFIX = ".validated.json"
# Tags for what JSON has no type for ("$" starts no key a configuration can have):
# {"$section": "Region", "fields": {...}}, {"$enum": "Estimator", "value": "auto"},
# {"$path": "/etc/ca.pem"}, {"$tuple": [...]}
_SECTION, _FIELDS = "$section", "fields"
_ENUM, _VALUE = "$enum", "value"
_PATH = "$path"
_TUPLE = "$tuple"
_SECTION_KEYS = frozenset({_SECTION, _FIELDS})
_ENUM_KEYS = frozenset({_ENUM, _VALUE})


def prevalidated_path(config_path: Path) -> Path:
    """``routewatch.yaml`` → ``routewatch.yaml.validated.json``."""
    return config_path.with_name(config_path.name + _SUFFIX)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _config_digest(config: Any) -> str:
    """The stored configuration's own hash: it is rebuilt without validation, so it is used
    only as the build wrote it (not edited, not damaged)."""
    return _digest(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())


def prevalidated_document(config_path: Path) -> dict[str, Any] | None:
    """Validate ``config_path`` fully (raises :class:`~monitor.config.ConfigError`) and return
    what :func:`write_prevalidated` stores; None when the configuration cannot be used without
    the loader at run time (a relative ``ca_file`` resolves against the folder it runs in)."""
    loaded = load_config(config_path)
    ca_files = [service.ca_file for _, service in loaded.config.service_settings()]
    if any(ca_files) and (loaded.config.services is not None
                          or not _written_absolute(config_path)):
        return None
    config = encode_config(loaded.config)
    return {
        "format": PREVALIDATED_FORMAT,
        "source_sha256": _digest(config_path.read_bytes()),
        "config_sha256": _config_digest(config),
        "warnings": list(loaded.warnings),
        "config": config,
    }


def _written_absolute(config_path: Path) -> bool:
    """Whether the file's ``service.ca_file`` is written as an absolute path."""
    document = yaml_document(read_text_file(config_path), str(config_path))
    service = document.get("service")
    ca_file = service.get("ca_file") if isinstance(service, dict) else None
    return isinstance(ca_file, str) and Path(ca_file).is_absolute()


def write_prevalidated(config_path: Path) -> Path | None:
    """Write the pre-validated JSON beside ``config_path``; return its path (None: not
    possible for this file, see :func:`prevalidated_document`)."""
    document = prevalidated_document(config_path)
    if document is None:
        return None
    out = prevalidated_path(config_path)
    out.write_text(json.dumps(document, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return out


def _encoded(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_SECTION: type(value).__name__, _FIELDS: {
            item.name: _encoded(getattr(value, item.name)) for item in dataclasses.fields(value)}}
    if isinstance(value, Enum):
        return {_ENUM: type(value).__name__, _VALUE: value.value}
    if isinstance(value, Path):
        return {_PATH: str(value)}
    if isinstance(value, tuple):
        return {_TUPLE: [_encoded(item) for item in value]}
    if isinstance(value, dict):
        if value.keys() in (_SECTION_KEYS, _ENUM_KEYS, {_PATH}, {_TUPLE}):
            raise TypeError(f"a mapping with the keys of a tag: {sorted(value)}")
        return {key: _encoded(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot store {value!r} in the pre-validated configuration")


def encode_config(config: Config) -> Any:
    """``config`` as JSON data that :func:`construct_config` turns back into an equal one."""
    return _encoded(config)


def _schema_types() -> dict[str, type[Any]]:
    """The classes a stored configuration may name: the schema's sections and enums."""
    return {name: kind for name, kind in vars(schema).items() if isinstance(kind, type) and (
        dataclasses.is_dataclass(kind) or (issubclass(kind, Enum) and len(kind) > 0))}


def _decoded(value: Any, types: dict[str, type[Any]]) -> Any:
    """A stored value rebuilt; a mapping is a tag only when its keys are exactly the tag's."""
    if isinstance(value, list):
        return [_decoded(item, types) for item in value]
    if not isinstance(value, dict):
        return value
    keys = value.keys()
    if keys == _SECTION_KEYS:
        kind = types[value[_SECTION]]
        if not dataclasses.is_dataclass(kind) or not isinstance(value[_FIELDS], dict):
            raise TypeError(f"{value[_SECTION]}: not a section with fields")
        return kind(**{name: _decoded(item, types) for name, item in value[_FIELDS].items()})
    if keys == _ENUM_KEYS:
        return types[value[_ENUM]](value[_VALUE])
    if keys == {_PATH}:
        return Path(value[_PATH])
    if keys == {_TUPLE}:
        return tuple(_decoded(item, types) for item in value[_TUPLE])
    return {key: _decoded(item, types) for key, item in value.items()}


def construct_config(document: Any) -> Config:
    """A :class:`Config` from :func:`encode_config`'s data, without validation; ``TypeError``
    (or ``KeyError``, ``ValueError``) for data it does not know."""
    config = _decoded(document, _schema_types())
    if not isinstance(config, Config):
        raise TypeError(f"rebuilt a {type(config).__name__}, not a Config")
    return config


def load_packaged_config(path: Path) -> LoadedConfig:
    """The configuration at ``path``: from its pre-validated JSON when that matches the file,
    else through the full loader."""
    try:
        document = json.loads(prevalidated_path(path).read_bytes())
        source = path.read_bytes()
    except (OSError, ValueError):
        return load_config(path)
    if not isinstance(document, dict) or document.get("format") != PREVALIDATED_FORMAT \
            or document.get("source_sha256") != _digest(source):
        log.info("config: %s changed since the package was built; validating it", path)
        return load_config(path)
    if document.get("config_sha256") != _config_digest(document.get("config")):
        log.warning("config: pre-validated %s was altered after the build; validating", path)
        return load_config(path)
    try:
        config = construct_config(document["config"])
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("config: pre-validated %s unusable (%s); validating", path, exc)
        return load_config(path)
    if file_problems(config):  # a file named is gone: the loader says which, with its line
        return load_config(path)
    return LoadedConfig(config, str(path), tuple(document.get("warnings", ())))
