"""Access groups: the one place that decides what a valid group list is, and how "no restriction" is spelled.

Example:
    >>> require_groups(["all", "hr"])
    ('all', 'hr')
    >>> split_groups("all, hr")
    ('all', 'hr')
    >>> parse_groups("hr, all,")
    ('hr', 'all', '')
    >>> require_groups(UNRESTRICTED) is UNRESTRICTED
    True
    >>> require_groups("all")
    Traceback (most recent call last):
    ...
    erag.access.AccessError: access groups must be a list of group names, not the string 'all' (pass ['all'])

Every search, every stored chunk and every user goes through `require_groups`, so a missing, empty or
blank permission is refused with a clear error instead of quietly meaning "everything" (fail closed).
The only way to search without a group filter is to pass `UNRESTRICTED`, a named object that only the
local administrator's command line hands out; nothing read from a file, a form or a request can produce it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

# Group names become Qdrant keyword values, YAML list items and SQL-visible labels: keep them plain.
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AccessError(ValueError):
    """A group list is missing, empty, blank or malformed; the message says what to pass instead."""


class _Unrestricted:
    """The explicit 'no access filter' of the local admin CLI; a singleton that no data can produce."""

    _instance: _Unrestricted | None = None

    def __new__(cls) -> _Unrestricted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNRESTRICTED"

    def __reduce__(self) -> str:
        return "UNRESTRICTED"  # pickling keeps the singleton (never needed, but never a second 'unrestricted')


UNRESTRICTED: Final = _Unrestricted()
Groups = tuple[str, ...]
GroupScope = Groups | _Unrestricted


def check_group_name(name: object, where: str = "") -> str:
    """One group name, stripped; raises AccessError for a blank or malformed name."""
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str):
        raise AccessError(f"{prefix}a group name must be text, got {type(name).__name__} {name!r}")
    clean = name.strip()
    if not clean:
        raise AccessError(f"{prefix}a group name is blank")
    if not GROUP_NAME.match(clean):
        raise AccessError(f"{prefix}group name {clean!r} is not allowed (letters, digits, dots, dashes, underscores; "
                          "at most 64)")
    return clean


def require_groups(groups: object, where: str = "") -> GroupScope:
    """`groups` as a sorted tuple of valid names, or UNRESTRICTED passed through; anything else is an AccessError.

    None, an empty list, a blank name and a bare string (which Python would split into letters) are refused:
    each has at some point meant "search everything" somewhere, and none of them should.
    """
    if groups is UNRESTRICTED:
        return UNRESTRICTED
    prefix = f"{where}: " if where else ""
    if groups is None:
        raise AccessError(f"{prefix}access groups are required: pass the user's groups (e.g. ['all']), "
                          "or UNRESTRICTED for the local administrator")
    if isinstance(groups, str | bytes):
        shown = groups.decode(errors="replace") if isinstance(groups, bytes) else groups
        raise AccessError(f"{prefix}access groups must be a list of group names, not the string {shown!r} "
                          f"(pass [{shown!r}])")
    if not isinstance(groups, Iterable):
        raise AccessError(f"{prefix}access groups must be a list of group names, got {type(groups).__name__}")
    names = [check_group_name(g, where) for g in groups]
    if not names:
        raise AccessError(f"{prefix}the access group list is empty, so no document could be visible")
    return tuple(sorted(set(names)))


def parse_groups(text: str) -> Groups:
    """The items of a comma-separated group list as typed, stripped, in order, blank items kept: the one place
    that splits a group list; what a blank item means is the caller's (`split_groups` refuses it)."""
    return tuple(part.strip() for part in text.split(","))


def split_groups(text: str | None, where: str = "") -> Groups:
    """A comma-separated list typed by a person ('all, hr'); blank lists and blank items are refused."""
    if text is None or not text.strip():
        raise AccessError(f"{where + ': ' if where else ''}no access group given (e.g. --groups all,hr)")
    groups = require_groups(list(parse_groups(text)), where)
    assert not isinstance(groups, _Unrestricted)
    return groups
