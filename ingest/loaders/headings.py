"""The heading trail above the current position of a document (h1 > h2 > h3 ...)."""

from __future__ import annotations


class HeadingTrail:
    """Tracks headings by level; a heading closes every open heading of its level or deeper."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, text: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))

    @property
    def path(self) -> list[str]:
        return [text for _, text in self._stack]
