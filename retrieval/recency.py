""""The latest report": which retrieved documents are the newest, by the period their title or file name gives.

Example:
    >>> document_period({"title": "AAPL 10-Q 2023 Q3 page 4"}), document_period({"file_name": "budget_2026.xlsx"})
    ((2023, 3), (2026, 0))
    >>> asks_latest("What was Apple's gross margin in the most recent 10-Q?"), asks_latest("What was it in 2022?")
    (True, False)
    >>> quarters_named("Revenue in Q2 2023 against the third quarter of 2022")
    [(2023, 2), (2022, 3)]

A document's period is read from what names it (title, file name), never from its text: a filing quotes the
prior year's figures on every page, and a policy cites the year of the law it follows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_LATEST = re.compile(r"\b(?:latest|most recent|newest)\b", re.IGNORECASE)
# Not \b like the query analyzer's year: a file name joins its words with "_" ("budget_2026"), a word character.
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
# "2023 Q3", "Q3 2023", "q3_2026", "2023-Q3", "H1 2024": a part of the year next to it (at most 3 characters apart).
_PART_AFTER = re.compile(r"(?<!\d)((?:19|20)\d\d)[\s_\-/]{0,3}([QH])([1-4])(?!\d)", re.IGNORECASE)
_PART_BEFORE = re.compile(r"(?<![A-Za-z])([QH])([1-4])[\s_\-/]{0,3}((?:19|20)\d\d)(?!\d)", re.IGNORECASE)
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_QUARTER_WORDS = re.compile(r"\b(first|second|third|fourth)\s+(?:fiscal\s+)?quarter\s+(?:of\s+|in\s+)?"
                            r"(?:fiscal\s+|FY\s*)?((?:19|20)\d\d)(?!\d)", re.IGNORECASE)


def _parts(text: str) -> list[tuple[int, str, int]]:
    """(year, "Q" or "H", number) of every part of a year the text names, in either order; no third half."""
    found = [(int(y), p.upper(), int(n)) for y, p, n in _PART_AFTER.findall(text)]
    found += [(int(y), p.upper(), int(n)) for p, n, y in _PART_BEFORE.findall(text)]
    return [(y, p, n) for y, p, n in found if p == "Q" or n <= 2]


def quarters_named(text: str) -> list[tuple[int, int]]:
    """The quarters a text names with their year, once each: "Q2 2023", "2023 Q3", "the second quarter of 2023"."""
    found = [(y, n) for y, p, n in _parts(text) if p == "Q"]
    found += [(int(y), _ORDINAL[w.lower()]) for w, y in _QUARTER_WORDS.findall(text)]
    return list(dict.fromkeys(found))


def asks_latest(query: str) -> bool:
    """The query asks for the newest document and names no year of its own."""
    return bool(_LATEST.search(query)) and not _YEAR.search(query)


def document_period(payload: Mapping[str, Any]) -> tuple[int, int] | None:
    """(year, quarter or 0) of the latest period a document's title or file name gives, or None. A half counts as
    the quarter it ends with (H1 -> 2)."""
    name = " ".join(str(payload.get(key) or "") for key in ("title", "file_name"))
    periods = [(y, n * 2 if p == "H" else n) for y, p, n in _parts(name)]
    periods += [(int(y), 0) for y in _YEAR.findall(name)]
    return max(periods) if periods else None
