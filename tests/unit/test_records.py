"""``@record`` behaves as ``@dataclass(frozen=True)`` (equality, hash, repr, immutability,
``replace``, pickling, the methods a class writes itself) and compiles half the methods."""

from __future__ import annotations

import builtins
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.records import record


def _pair(**fields: Any) -> tuple[type[Any], type[Any]]:
    """The same class body made a record and a frozen dataclass."""
    def body() -> dict[str, Any]:
        namespace: dict[str, Any] = {"__annotations__": {}, "__qualname__": "Cell"}
        for name, (annotation, spec) in fields.items():
            namespace["__annotations__"][name] = annotation
            if spec is not None:
                namespace[name] = spec() if callable(spec) else spec
        return namespace

    return (record(type("Cell", (), body())),
            dataclass(frozen=True)(type("Cell", (), body())))


FIELDS = {
    "region": ("str", None),
    "latency": ("float | None", None),
    "samples": ("tuple[float, ...]", ()),
    "note": ("str", lambda: field(default="", compare=False)),
    "secret": ("str", lambda: field(default="", repr=False)),
    "tag": ("str", lambda: field(default="", hash=False)),
}
values = st.fixed_dictionaries({
    "region": st.sampled_from(["eu-west-1", "us-east-1"]),
    "latency": st.none() | st.floats(allow_nan=False, width=32),
    "samples": st.tuples(st.floats(width=16)) | st.just(()),
    "note": st.sampled_from(["", "n"]),
    "secret": st.sampled_from(["", "s"]),
    "tag": st.sampled_from(["", "t"]),
})


@given(values, values)
def test_equality_hash_and_repr_are_the_dataclass_ones(a: dict[str, Any],
                                                        b: dict[str, Any]) -> None:
    ours, theirs = _pair(**FIELDS)
    assert (ours(**a) == ours(**b)) == (theirs(**a) == theirs(**b))
    assert (ours(**a) != ours(**b)) == (theirs(**a) != theirs(**b))
    assert repr(ours(**a)) == repr(theirs(**a))
    if ours(**a) == ours(**b):
        assert hash(ours(**a)) == hash(ours(**b))


def test_another_class_is_not_equal_and_fields_compare_only_where_they_should() -> None:
    ours, _ = _pair(**FIELDS)
    other, _ = _pair(**FIELDS)
    assert ours(region="a", latency=1.0) != other(region="a", latency=1.0)
    assert ours.__eq__(ours(region="a", latency=1.0), object()) is NotImplemented
    assert ours(region="a", latency=1.0, note="x") == ours(region="a", latency=1.0, note="y")
    assert "secret" not in repr(ours(region="a", latency=1.0, secret="s"))
    assert ours.__eq__.__qualname__ == "Cell.__eq__"


def test_frozen_replace_asdict_and_pickle_work_as_on_a_dataclass() -> None:
    ours, _ = _pair(**FIELDS)
    cell = ours(region="a", latency=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.latency = 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        del cell.region
    assert dataclasses.replace(cell, latency=2.0).latency == 2.0
    assert dataclasses.asdict(cell)["region"] == "a"
    assert [f.name for f in dataclasses.fields(cell)] == list(FIELDS)


@record
class Picklable:
    name: str
    values: tuple[int, ...] = ()


@record(kw_only=True)
class Base:
    name: str


@record(kw_only=True)
class Derived(Base):
    extra: int = 0


@record
class OwnMethods:
    name: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OwnMethods) and other.name.lower() == self.name.lower()

    def __hash__(self) -> int:
        return hash(self.name.lower())

    def __repr__(self) -> str:
        return f"<{self.name}>"


@record
class EqOnly:
    name: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EqOnly)


@record
class Unhashable:
    name: str
    __hash__ = None  # type: ignore[assignment]


@record
class Node:
    children: list[Any] = field(default_factory=list, compare=False, hash=False)


def test_pickle_subclasses_own_methods_and_cycles() -> None:
    assert pickle.loads(pickle.dumps(Picklable("a", (1, 2)))) == Picklable("a", (1, 2))
    assert Derived(name="a", extra=1) != Derived(name="a", extra=2)  # the subclass's fields
    assert repr(Derived(name="a")) == "Derived(name='a', extra=0)"
    with pytest.raises(TypeError):
        Base("a")  # type: ignore[misc]  # keyword only
    assert OwnMethods("A") == OwnMethods("a")
    assert hash(OwnMethods("A")) == hash(OwnMethods("a"))
    assert repr(OwnMethods("A")) == "<A>"
    # an __eq__ of the body with no __hash__: dataclass hashes the fields, so does record
    assert hash(EqOnly("a")) == hash(EqOnly("a"))
    assert EqOnly("a") == EqOnly("b")
    with pytest.raises(TypeError):
        hash(Unhashable("a"))  # a body's __hash__ = None is kept
    node = Node()
    node.children.append(node)
    assert repr(node) == "Node(children=[...])"


def test_fields_compare_as_a_tuple_as_cpython_3_11_and_3_12_generate() -> None:
    ours, _ = _pair(**FIELDS)
    nan = float("nan")
    assert ours(region="a", latency=nan) == ours(region="a", latency=nan)  # the same object
    assert ours(region="a", latency=nan) != ours(region="a", latency=float("nan"))
    assert ours.__eq__.__module__ == ours.__module__


def test_it_compiles_init_setattr_and_delattr_and_nothing_else(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What makes a record cheaper to define than a frozen dataclass (bench/startup.py)."""
    compiled: list[str] = []
    real_exec = builtins.exec

    def counting_exec(source: Any, *args: Any) -> Any:
        compiled.append(str(source))
        return real_exec(source, *args)

    monkeypatch.setattr(builtins, "exec", counting_exec)
    ours, theirs = _pair(**FIELDS)
    monkeypatch.undo()
    for name in ("__init__", "__setattr__", "__delattr__", "__eq__", "__hash__", "__repr__"):
        written = sum(f"def {name}(" in source for source in compiled)
        assert written == (1 if name in ("__init__", "__setattr__", "__delattr__") else 0) + 1, (
            name, compiled)
    assert ours(region="a", latency=None) == ours(region="a", latency=None)
    assert repr(ours(region="a", latency=None)) == repr(theirs(region="a", latency=None))
