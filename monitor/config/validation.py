"""The configuration's validator, built by pydantic v2 from the schema's dataclasses.

:mod:`monitor.config.schema` declares every part of the configuration as a frozen dataclass whose
annotations say, pydantic's way, what each field accepts (``Annotated[int, Field(ge=1)]``,
``AfterValidator``). They are strings at run time (postponed annotations), so the schema loads no
pydantic; this module, which only the loader imports, evaluates them with pydantic's names and
builds one pydantic model per class (:func:`model_of`). A class's core schema
(:func:`section_schema`) is its model's, followed by the step that turns the validated model into
the dataclass and runs the class's ``check`` (its rules across fields): so
``TypeAdapter(Config)`` validates a document straight into a :class:`~monitor.config.Config`, every
error keeps its key path, and other pydantic models (the lab's scenarios) can hold a section as a
field. The JSON Schema (``routewatch config schema``) comes from the same models.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    create_model,
)
from pydantic_core import core_schema

from monitor.config import schema
from monitor.config.schema import Config

__all__ = ["adapter", "model_of", "section_schema", "validate_config", "validate_section"]

SectionT = TypeVar("SectionT")

# what the schema's annotations name but imports only for type checkers
_PYDANTIC_NAMES: dict[str, Any] = {
    "AfterValidator": AfterValidator,
    "BeforeValidator": BeforeValidator,
    "Field": Field,
    "StrictFloat": StrictFloat,
    "StrictInt": StrictInt,
}
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


_models: dict[type[Any], type[BaseModel]] = {}
_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def model_of(section: type[Any]) -> type[BaseModel]:
    """The pydantic model that validates ``section`` (a dataclass of the schema): the same
    fields, names, defaults, constraints, validators and docstring; built once."""
    if section not in _models:
        _models[section] = _model(section)
    return _models[section]


def _model(section: type[Any]) -> type[BaseModel]:
    hints = typing.get_type_hints(section, globalns={**vars(schema), **_PYDANTIC_NAMES},
                                  include_extras=True)
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(section):
        if item.default is not dataclasses.MISSING:
            default: Any = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=item.default_factory)
        else:
            default = ...
        fields[item.name] = (hints[item.name], default)
    config = _STRICT.copy()
    extra = getattr(section, "json_schema_extra", None)
    if extra is not None:
        config["json_schema_extra"] = extra
    model: type[BaseModel] = create_model(section.__name__, __config__=config,
                                          __doc__=section.__doc__,
                                          __module__=section.__module__, **fields)
    return model


def section_schema(section: type[Any], handler: Any) -> core_schema.CoreSchema:
    """``section``'s core schema: its model's, then the dataclass built from the validated
    model, its ``check`` run (a ``ValueError`` there is an error at the section's key); dumped
    (``dump_python``, a pydantic model holding it) as its model is."""
    names = tuple(field.name for field in dataclasses.fields(section))

    def built(model: BaseModel) -> Any:
        value = section(**{name: getattr(model, name) for name in names})
        check = getattr(value, "check", None)
        if check is not None:
            check()
        return value

    def as_model(value: Any, serialize: Any) -> Any:
        return serialize(model.model_construct(**{name: getattr(value, name) for name in names}))

    model = model_of(section)
    inner = handler.generate_schema(model)
    return core_schema.no_info_after_validator_function(
        built, inner,
        serialization=core_schema.wrap_serializer_function_ser_schema(as_model, schema=inner))


def adapter(section: type[SectionT]) -> TypeAdapter[SectionT]:
    """Validates a mapping into ``section`` (the whole document into a
    :class:`~monitor.config.Config`); built once per section."""
    if section not in _adapters:
        _adapters[section] = TypeAdapter(section)
    return _adapters[section]


def validate_section(section: type[SectionT], data: Any) -> SectionT:
    """``section`` from a mapping; pydantic's ``ValidationError`` lists every mistake."""
    return adapter(section).validate_python(data)


def validate_config(document: Any) -> Config:
    """A :class:`~monitor.config.Config` from a parsed YAML document; pydantic's
    ``ValidationError`` lists every mistake."""
    return validate_section(Config, document)
