"""``@record``: a frozen dataclass whose comparison, hash and repr are not compiled per class.

``dataclasses.dataclass(frozen=True)`` writes six methods of every class as source text and
compiles each one with ``exec``: on CPython 3.12 about 0.9 ms for an 8-field class, and the ~60
result and configuration classes the Lambda handler imports were the largest part of its cold
start after pydantic. ``@record`` is that dataclass with ``eq=False, repr=False`` (three methods
compiled: ``__init__``, ``__setattr__``, ``__delattr__``) and then gives it ``__eq__``,
``__hash__`` and ``__repr__`` made of ``operator.attrgetter`` closures over its fields, which
compile nothing: defining a class costs 30-50 % less (more for wider classes; BENCHMARKS.md).

They behave as the ones CPython 3.11 and 3.12 generate: equal when of the same class with equal
compared fields, compared as tuples (so a field holding the same NaN object is equal to itself;
3.13's dataclasses compare field by field), ``NotImplemented`` for another class; hashed over
the compared fields (or ``hash=``); a repr of the ``repr=True`` fields that says ``...`` for a
cycle. A method the class body defines is kept, as ``dataclass`` keeps it (``__hash__ = None``
keeps a class unhashable). ``dataclasses.fields``/``replace``/``asdict`` work as on any
dataclass; type checkers see a frozen dataclass (PEP 681).

The price: ``==`` and ``hash`` cost about twice the generated ones per call (a few hundred ns;
nothing on a probe's path is bound by them); ``__dataclass_params__`` says ``eq=False,
repr=False``, so pytest's attribute-by-attribute diff of a failed ``==`` and ``pprint``'s
one-field-a-line layout do not apply (the repr still shows every field), and ruff's
dataclass rules (RUF008, RUF009) do not see these classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["record"]

C = TypeVar("C")


def _field_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``self`` → the tuple of its fields ``names`` (what the generated methods compare)."""
    if not names:
        return lambda self: ()
    if len(names) == 1:
        name = names[0]
        return lambda self: (getattr(self, name),)
    return attrgetter(*names)


def _set_method(cls: type[Any], name: str, method: Callable[..., Any]) -> None:
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    method.__module__ = cls.__module__
    setattr(cls, name, method)


def _methods(cls: type[Any]) -> None:
    fields = dataclasses.fields(cls)
    own = dict(cls.__dict__)  # the class body's, before any method is set here
    if "__eq__" not in own:
        compared = _field_getter(tuple(f.name for f in fields if f.compare))

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is self.__class__:
                return compared(self) == compared(other)
            return NotImplemented

        _set_method(cls, "__eq__", __eq__)
    # as dataclass decides: a __hash__ of the body is kept; the None that Python sets for a
    # body that defines __eq__ alone is not one
    own_hash = own.get("__hash__", dataclasses.MISSING)
    if own_hash is dataclasses.MISSING or (own_hash is None and "__eq__" in own):
        hashed = _field_getter(tuple(f.name for f in fields
                               if (f.compare if f.hash is None else f.hash)))

        def __hash__(self: Any) -> int:
            return hash(hashed(self))

        _set_method(cls, "__hash__", __hash__)
    if "__repr__" not in own:
        shown = tuple(f.name for f in fields if f.repr)

        @recursive_repr()
        def __repr__(self: Any) -> str:
            return (f"{self.__class__.__qualname__}("
                    + ", ".join(f"{name}={getattr(self, name)!r}" for name in shown) + ")")

        _set_method(cls, "__repr__", __repr__)


@overload
def record(cls: type[C], /) -> type[C]: ...


@overload
def record(*, kw_only: bool = False) -> Callable[[type[C]], type[C]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[C] | None = None, /, *, kw_only: bool = False) -> Any:
    """``@record`` or ``@record(kw_only=True)`` on a class: a frozen dataclass (see the module)."""
    def build(cls: type[C]) -> type[C]:
        made: type[C] = dataclasses.dataclass(cls, frozen=True, eq=False, repr=False,
                                              kw_only=kw_only)
        _methods(made)
        return made

    return build if cls is None else build(cls)
