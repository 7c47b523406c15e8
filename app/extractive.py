"""The answer without a language model: the best sentences (or table rows) of the sources, quoted and cited.

Example:
    >>> ExtractiveAnswerer().run(sources)
    '**Extractive answer** (quoted from the documents, no language model): ... [1]'
"""

from __future__ import annotations

from collections.abc import Sequence

from app.evidence import Source

LABEL = "**Extractive answer** (quoted from the documents, no language model)"


class ExtractiveAnswerer:
    """Quote the highest-scoring units across sources, each followed by its citation."""

    def __init__(self, max_units: int = 3, max_chars: int = 700) -> None:
        if max_units < 1 or max_chars < 50:
            raise ValueError(f"need max_units >= 1 and max_chars >= 50, got {max_units} and {max_chars}")
        self.max_units = max_units
        self.max_chars = max_chars

    def run(self, sources: Sequence[Source], reason: str = "") -> tuple[str, list[int]]:
        """The answer text and the source numbers it cites."""
        ranked = sorted(((u.score, s, u) for s in sources for u in s.selected), key=lambda t: -t[0])
        lines: list[str] = []
        cited: list[int] = []
        used = 0
        for _, source, unit in ranked:
            text = source.row_text(unit) if unit.row is not None else unit.read
            if lines and used + len(text) > self.max_chars:
                break
            lines.append(f"- {text} [{source.number}]")
            used += len(text)
            if source.number not in cited:
                cited.append(source.number)
            if len(lines) >= self.max_units:
                break
        head = LABEL + (f": {reason}" if reason else "") + "\n\n"
        return head + "\n".join(lines), cited
