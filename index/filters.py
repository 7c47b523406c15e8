"""Backend-neutral filters: each backend translates them into its own native filter objects.

Example:
    >>> hr_or_all = Filter(must=[Match("department", ["HR"]), Match("groups", ["all", "hr"])])
    >>> [m.key for m in hr_or_all.matches()]
    ['department', 'groups']

A condition is a `Match` or a nested `Filter` (Qdrant evaluates nested filters natively on every backend),
which is what lets the reader's visibility rule (`index.versions.visible`) be one filter clause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

Value = str | int | bool
N = TypeVar("N")


@dataclass(frozen=True)
class Match:
    """The payload field `key` holds one of `values` (for a list field: any element does)."""

    key: str
    values: tuple[Value, ...]

    def __init__(self, key: str, values: Value | list[Value] | tuple[Value, ...]) -> None:
        if not key:
            raise ValueError("a filter condition needs a field name")
        vals = tuple(values) if isinstance(values, list | tuple) else (values,)
        if not vals:
            raise ValueError(f"filter on '{key}' has no values")
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "values", vals)


Condition = Union[Match, "Filter"]


@dataclass
class Filter:
    """All `must` conditions hold, no `must_not` condition holds, and at least one `should` does."""

    must: list[Condition] = field(default_factory=list)
    must_not: list[Condition] = field(default_factory=list)
    should: list[Condition] = field(default_factory=list)

    def __and__(self, other: Filter | None) -> Filter:
        if other is None or other.is_empty():
            return self
        if self.is_empty():
            return other
        if self.should and other.should:
            # Two "at least one of" clauses must each hold: concatenating them would mean "one of either".
            return Filter(must=[self, other])
        return Filter(self.must + other.must, self.must_not + other.must_not, self.should + other.should)

    def is_empty(self) -> bool:
        return not (self.must or self.must_not or self.should)

    def matches(self) -> Iterator[Match]:
        """Every field condition at any depth (for validating field names)."""
        for condition in (*self.must, *self.must_not, *self.should):
            if isinstance(condition, Filter):
                yield from condition.matches()
            else:
                yield condition


def doc_filter(doc_id: str, **extra: Value) -> Filter:
    return Filter(must=[Match("doc_id", doc_id), *(Match(k, v) for k, v in extra.items())])


def translate(
    flt: Filter | None,
    field: Callable[[str, Value | None, list[Value] | None], Any],
    native: Callable[[list[Any] | None, list[Any] | None, list[Any] | None], N],
) -> N | None:
    """`flt` in a backend's own types. `field(key, value, any_of)` makes one field condition (exactly one of
    `value` / `any_of` is set) and `native(must, must_not, should)` one filter; both Qdrant clients share
    this shape, so the recursion lives here once."""
    if flt is None or flt.is_empty():
        return None

    def convert(conditions: list[Condition]) -> list[Any] | None:
        out = []
        for c in conditions:
            if isinstance(c, Filter):
                out.append(translate(c, field, native))
            elif len(c.values) == 1:
                out.append(field(c.key, c.values[0], None))
            else:
                out.append(field(c.key, None, list(c.values)))
        return out or None

    return native(convert(flt.must), convert(flt.must_not), convert(flt.should))
