"""Backend-neutral filters: each backend translates them into its own native filter objects.

Example:
    >>> Filter(must=[Match("department", ["HR"]), Match("groups", ["all", "hr"])])
"""

from __future__ import annotations

from dataclasses import dataclass, field

Value = str | int | bool


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


@dataclass
class Filter:
    """All `must` conditions hold, no `must_not` condition holds, and at least one `should` does."""

    must: list[Match] = field(default_factory=list)
    must_not: list[Match] = field(default_factory=list)
    should: list[Match] = field(default_factory=list)

    def __and__(self, other: Filter | None) -> Filter:
        if other is None:
            return self
        return Filter(self.must + other.must, self.must_not + other.must_not, self.should + other.should)

    def is_empty(self) -> bool:
        return not (self.must or self.must_not or self.should)


def doc_filter(doc_id: str, **extra: Value) -> Filter:
    return Filter(must=[Match("doc_id", doc_id), *(Match(k, v) for k, v in extra.items())])
