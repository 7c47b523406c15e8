"""Tables chunked by groups of rows, with the title and header row repeated in every chunk.

Example:
    >>> chunker = TableChunker(count_tokens=lambda texts: [len(t.split()) for t in texts], max_tokens=256)
    >>> parts = chunker.run(TableBlock(frame=pd.DataFrame({"name": ["Ada"], "dept": ["IT"]}), title="Staff"))
    >>> parts[0].text.splitlines()[1]
    '| name | dept |'

A row never straddles two chunks, and every chunk reads on its own ("row/column integrity"): a
question about row 37 finds a chunk that names every column of row 37. Small tables stay whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from erag.schema import TableBlock

CountTokens = Callable[[Sequence[str]], list[int]]


@dataclass
class TablePiece:
    text: str
    row_start: int  # 1-based data-row numbers (the header is row 0)
    row_end: int
    columns: list[str]
    rows: list[list[str]]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    return " ".join(str(value).replace("|", "/").split())


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


class TableChunker:
    """Turn a `TableBlock` into row-group pieces that each fit `max_tokens`."""

    def __init__(self, count_tokens: CountTokens, max_tokens: int = 256) -> None:
        if max_tokens < 16:
            raise ValueError(f"max_tokens must be at least 16, got {max_tokens}")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens

    def run(self, table: TableBlock) -> list[TablePiece]:
        columns = [_cell(c) or f"column_{i + 1}" for i, c in enumerate(table.frame.columns)]
        rows = [[_cell(v) for v in row] for row in table.frame.itertuples(index=False, name=None)]
        caption = "Table: " + (table.title or "untitled")
        if table.sheet and table.sheet not in caption:
            caption += f" (sheet {table.sheet})"
        header = "\n".join([caption, _line(columns), _line(["---"] * len(columns))])
        row_lines = [_line(r) for r in rows]
        header_tokens, *row_tokens = self.count_tokens([header, *row_lines])
        budget = max(self.max_tokens - header_tokens, 1)

        pieces: list[TablePiece] = []
        start = 0
        while start < len(rows):
            end, used = start, 0
            # Always take at least one row, even one longer than the budget: a row is never split.
            while end < len(rows) and (end == start or used + row_tokens[end] <= budget):
                used += row_tokens[end]
                end += 1
            text = header + "\n" + "\n".join(row_lines[start:end])
            pieces.append(TablePiece(text, start + 1, end, columns, rows[start:end]))
            start = end
        return pieces
