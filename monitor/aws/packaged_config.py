"""The Lambda package's configuration, validated once when the package is built.

``deploy/build_lambda_zip.py --config FILE`` validates the file with the full loader (a bad file
stops the build with the loader's messages) and writes :func:`prevalidated_path` beside it: the
validated configuration as JSON, the SHA-256 of the YAML it came from and the loader's warnings.
At a cold start :func:`load_packaged_config` rebuilds the models from that JSON with
``model_construct`` (no validator runs, none is built: ~40 ms less on the init phase) when the
YAML still has that hash, and otherwise (edited, missing, an older format, a relative
``ca_file``, a file that is gone) falls back to :func:`~monitor.config.load_config`, which also
gives the precise error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from monitor.config import Config, LoadedConfig, load_config
from monitor.config.loader import read_text_file, yaml_document
from monitor.config.policy import file_problems

__all__ = [
    "PREVALIDATED_FORMAT",
    "construct_config",
    "load_packaged_config",
    "prevalidated_document",
    "prevalidated_path",
    "write_prevalidated",
]

log = logging.getLogger(__name__)

PREVALIDATED_FORMAT = 1
_SUFFIX = ".validated.json"
_PLAIN = (str, int, float, bool)


def prevalidated_path(config_path: Path) -> Path:
    """``routewatch.yaml`` → ``routewatch.yaml.validated.json``."""
    return config_path.with_name(config_path.name + _SUFFIX)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prevalidated_document(config_path: Path) -> dict[str, Any] | None:
    """Validate ``config_path`` fully (raises :class:`~monitor.config.ConfigError`) and return
    what :func:`write_prevalidated` stores; None when the configuration cannot be used without
    the loader at run time (a relative ``ca_file`` resolves against the folder it runs in)."""
    loaded = load_config(config_path)
    ca_files = [view.service.ca_file for _, view in loaded.config.service_views()]
    if any(ca_files) and (loaded.config.services is not None
                          or not _written_absolute(config_path)):
        return None
    return {
        "format": PREVALIDATED_FORMAT,
        "source_sha256": _digest(config_path.read_bytes()),
        "warnings": list(loaded.warnings),
        # only what the file set: every other field takes its default when rebuilt
        "config": loaded.config.model_dump(mode="json", exclude_unset=True),
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


def _value(annotation: Any, raw: Any) -> Any:
    """``raw`` (from JSON) as the field type ``annotation`` holds it after validation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _value(args[0], raw)
    if origin in (typing.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        members = [a for a in args if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"cannot rebuild a union of {members}")
        return _value(members[0], raw)
    if origin is dict and isinstance(raw, dict):
        return {_value(args[0], k): _value(args[1], v) for k, v in raw.items()}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and isinstance(raw, list):
        return tuple(_value(args[0], item) for item in raw)
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel) and isinstance(raw, dict):
            return _construct(annotation, raw)
        if issubclass(annotation, Enum):
            return annotation(raw)
        if issubclass(annotation, Path) and isinstance(raw, str):
            return Path(raw)
        if annotation in _PLAIN and type(raw) is annotation:
            return raw
        if annotation is float and type(raw) is int:
            return float(raw)
    raise TypeError(f"cannot rebuild {raw!r} as {annotation!r}")


def _construct(model: type[BaseModel], raw: dict[str, Any]) -> Any:
    fields = model.model_fields
    unknown = set(raw) - set(fields)
    if unknown:
        raise TypeError(f"{model.__name__}: unknown fields {sorted(unknown)}")
    values = {name: _value(fields[name].annotation, raw[name]) for name in raw}
    for name, field in fields.items():
        kind = field.annotation
        if name not in raw and isinstance(kind, type) and issubclass(kind, BaseModel):
            values[name] = _construct(kind, {})  # its default, without running a validator
    return model.model_construct(_fields_set=set(raw), **values)


def construct_config(document: dict[str, Any]) -> Config:
    """A :class:`Config` from ``model_dump(mode="json", exclude_unset=True)`` of a validated
    one, without validation; ``TypeError`` for a shape it does not know."""
    config = _construct(Config, document)
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
    try:
        config = construct_config(document["config"])
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("config: pre-validated %s unusable (%s); validating", path, exc)
        return load_config(path)
    if file_problems(config):  # a file named is gone: the loader says which, with its line
        return load_config(path)
    return LoadedConfig(config, str(path), tuple(document.get("warnings", ())))
