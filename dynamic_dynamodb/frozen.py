"""Copies of frozen dataclasses with some fields changed, cheap enough for the pass's hot path."""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def evolve(value: T, **changes: Any) -> T:
    """dataclasses.replace for a frozen dataclass whose __init__ only stores its fields.

    replace() rebuilds the value through __init__ field by field, some ten times slower than
    copying the instance's dict; a pass copies each target's memory several times per
    dimension. Not for dataclasses with __post_init__, InitVar or init=False fields, nor for a
    class a compiled build makes native (it has no __dict__): such a class is marked
    @mypyc_attr(native_class=False), as policy.Memory is.
    """
    assert changes.keys() <= value.__dataclass_fields__.keys(), f"no such field: {changes.keys()}"  # type: ignore[attr-defined]
    copy = object.__new__(type(value))
    copy.__dict__.update(value.__dict__, **changes)
    return copy


def by_fields(value: Any) -> tuple[type, tuple]:
    """A frozen dataclass's __reduce__: pickle and copy rebuild it through __init__ from its fields.

    In a compiled build (mypyc) a frozen class keeps its fields in slots, and the default
    restore, attribute by attribute, is refused by the frozen __setattr__.
    """
    return type(value), tuple(getattr(value, f.name) for f in dataclasses.fields(value))


class ByFields:
    """The base of a frozen dataclass that a compiled build compiles: pickled and copied by its
    fields (by_fields), in both builds."""

    def __reduce__(self) -> tuple:
        return by_fields(self)
