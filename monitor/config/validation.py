"""The configuration's validator, built by pydantic v2 from the schema's dataclasses.

:mod:`monitor.config.schema` declares every part of the configuration as a frozen dataclass whose
annotations say, pydantic's way, what each field accepts (``Annotated[int, Field(ge=1)]``,
``AfterValidator``). They are strings at run time (postponed annotations), so the schema loads no
pydantic; this module, which only the loader imports, evaluates them with pydantic's names and
builds one pydantic model per class (:func:`model_of`), the class's ``check`` (its rules across
fields) its model validator. A class's core schema (:func:`section_schema`) validates with its
model and builds the dataclass: so ``TypeAdapter(Config)`` validates a document straight into a
:class:`~monitor.config.Config`, every error keeps its key path, and other pydantic models can
hold a section as a field (an instance passes as it is). The JSON Schema (``routewatch config
schema``) comes from the same models, and the lab's scenarios keep their ``probe`` and
``tolerance`` as these models (so they know which keys a scenario wrote).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic_core import core_schema

from monitor.config.schema import Config

__all__ = ["adapter", "model_of", "section_schema", "validate_config", "validate_section"]

SectionT = TypeVar("SectionT")

# what the schema's annotations name but imports only for type checkers (a name missing here
# fails the first validation of any configuration, so every config test)
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
    namespace = {**vars(sys.modules[section.__module__]), **_PYDANTIC_NAMES}
    hints = typing.get_type_hints(section, globalns=namespace, include_extras=True)
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
    validators: dict[str, Any] = {}
    if hasattr(section, "check"):
        def check(self: BaseModel) -> BaseModel:
            _built(section, self).check()  # a ValueError: an error at the section's key
            return self

        validators["check"] = model_validator(mode="after")(check)
    model: type[BaseModel] = create_model(section.__name__, __config__=config,
                                          __doc__=section.__doc__, __module__=section.__module__,
                                          __validators__=validators, **fields)
    return model


def _built(section: type[SectionT], validated: BaseModel) -> SectionT:
    """The dataclass from its validated model (whose fields already hold dataclasses)."""
    return section(**{item.name: getattr(validated, item.name)
                      for item in dataclasses.fields(section)})  # type: ignore[arg-type]


def section_schema(section: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    """``section``'s core schema: an instance of it as it is; anything else validated by its
    model (its ``check`` included) and built into it. Dumped (``dump_python``, a pydantic model
    holding it) as its model is."""
    model = model_of(section)
    inner = handler.generate_schema(model)

    def validate(value: Any, validated: core_schema.ValidatorFunctionWrapHandler) -> Any:
        return value if isinstance(value, section) else _built(section, validated(value))

    def as_model(value: Any, serialize: core_schema.SerializerFunctionWrapHandler) -> Any:
        return serialize(model.model_construct(**{item.name: getattr(value, item.name)
                                                  for item in dataclasses.fields(section)}))

    return core_schema.no_info_wrap_validator_function(
        validate, inner,
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
