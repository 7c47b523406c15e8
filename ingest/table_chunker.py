"""Tables chunked by groups of rows, with the title and header row repeated in every chunk.

Example:
    >>> chunker = TableChunker(count_tokens=lambda texts: [len(t.split()) for t in texts], max_tokens=256)
    >>> parts = chunker.run(TableBlock(frame=pd.DataFrame({"name": ["Ada"], "dept": ["IT"]}), title="Staff"))
    >>> parts[0].text.splitlines()[1]
    '| name | dept |'

A row never straddles two chunks, and every chunk reads on its own ("row/column integrity"): a
question about row 37 finds a chunk that names every column of row 37. Small tables stay whole.

A row too wide for one chunk with the whole header (a 10,000-column sheet) is the exception: such rows
are cut into column groups. Each piece then holds a group of rows x a group of columns that fits the
budget, repeats the first column (the row's key) and says which columns it holds in its caption
("Table: Survey (columns 2-31 of 10,000)"). A cell is cut at MAX_CELL_CHARS in chunk text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import pandas as pd

from erag.schema import TableBlock
from erag.textsafe import break_long_runs

CountTokens = Callable[[Sequence[str]], list[int]]

MAX_CELL_CHARS = 1000
MAX_TITLE_CHARS = 300
# Default character bound per chunk: far above real text (about 4-5 characters per token), so it only
# binds on text where one unknown-word token stands for a 200-character run.
CHARS_PER_TOKEN_BOUND = 16
# The smallest piece (caption, key and one column, their header and one row) must always fit.
_MIN_PIECE_CHARS = MAX_TITLE_CHARS + 4 * (MAX_CELL_CHARS + 3) + 128
# Tokens of a header column's separator cell '---' and its pipes (the packaged models' WordPiece tokenizers
# make 3 of '---' and 1 of a pipe), and of the pipe before a row cell. The estimate only sizes the column
# groups: every piece is then counted for real.
_HEADER_CELL_EXTRA = 5
_ROW_CELL_EXTRA = 1
_MARGIN = 4  # tokens kept free for the line-closing pipes and tokenizer differences


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
    text = break_long_runs(" ".join(str(value).replace("|", "/").split()))
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(caption: str, columns: Sequence[str]) -> str:
    return "\n".join([caption, _line(columns), _line(["---"] * len(columns))])


def _span(first: int, last: int, total: int) -> str:
    """' (columns 2-31 of 10,000)': 1-based column numbers of a piece's non-key columns."""
    numbers = f"column {first:,}" if first == last else f"columns {first:,}-{last:,}"
    return f" ({numbers} of {total:,})"


class TableChunker:
    """Turn a `TableBlock` into row-group pieces that each fit `max_tokens` (and `max_chars`)."""

    def __init__(self, count_tokens: CountTokens, max_tokens: int = 256, max_chars: int | None = None) -> None:
        if max_tokens < 16:
            raise ValueError(f"max_tokens must be at least 16, got {max_tokens}")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.max_chars = max(max_chars or max_tokens * CHARS_PER_TOKEN_BOUND, _MIN_PIECE_CHARS)

    def run(self, table: TableBlock) -> list[TablePiece]:
        columns = [_cell(c) or f"column_{i + 1}" for i, c in enumerate(table.frame.columns)]
        rows = [[_cell(v) for v in row] for row in table.frame.itertuples(index=False, name=None)]
        caption = "Table: " + (table.title or "untitled")
        if table.sheet and table.sheet not in caption:
            caption += f" (sheet {table.sheet})"
        # The heading above the table and its page: a question names the section far more often than a cell.
        if table.headings and table.headings[-1] and table.headings[-1] not in caption:
            caption += f" - {table.headings[-1]}"
        if table.page is not None and f"page {table.page}" not in caption:
            caption += f", page {table.page}"
        if len(caption) > MAX_TITLE_CHARS:
            caption = caption[: MAX_TITLE_CHARS - 1] + "…"
        header = _header(caption, columns)
        row_lines = [_line(r) for r in rows]
        header_tokens, *row_tokens = self.count_tokens([header, *row_lines])
        fits = [
            header_tokens + tokens <= self.max_tokens and len(header) + 1 + len(line) <= self.max_chars
            for tokens, line in zip(row_tokens, row_lines, strict=True)
        ]
        if all(fits) or len(columns) <= 2:  # every ordinary table: groups of whole rows
            return self._row_groups(header, header_tokens, columns, rows, row_lines, row_tokens, 0)
        pieces: list[TablePiece] = []
        start = 0
        for fit, run in groupby(fits):
            end = start + len(list(run))
            if fit:
                pieces += self._row_groups(header, header_tokens, columns, rows[start:end], row_lines[start:end],
                                           row_tokens[start:end], start)
            else:
                pieces += self._column_groups(caption, columns, rows[start:end], start)
            start = end
        return pieces

    def _row_groups(
        self,
        header: str,
        header_tokens: int,
        columns: list[str],
        rows: list[list[str]],
        row_lines: list[str],
        row_tokens: list[int],
        first_row: int,
    ) -> list[TablePiece]:
        """Consecutive rows under one header, as many per piece as the budget holds."""
        budget = max(self.max_tokens - header_tokens, 1)
        char_budget = self.max_chars - len(header)
        pieces: list[TablePiece] = []
        start = 0
        while start < len(rows):
            end, used, chars = start, 0, 0
            # Always take at least one row, even one longer than the budget: a row is never split here.
            while end < len(rows) and (
                end == start
                or (used + row_tokens[end] <= budget and chars + 1 + len(row_lines[end]) <= char_budget)
            ):
                used += row_tokens[end]
                chars += 1 + len(row_lines[end])
                end += 1
            text = header + "\n" + "\n".join(row_lines[start:end])
            pieces.append(TablePiece(text, first_row + start + 1, first_row + end, columns, rows[start:end]))
            start = end
        return pieces

    def _column_groups(
        self, caption: str, columns: list[str], rows: list[list[str]], first_row: int
    ) -> list[TablePiece]:
        """Rows too wide for one piece: blocks of rows, each cut into groups of columns that repeat the key
        column; each group's rows are then grouped as usual under a header naming only its columns."""
        width = len(columns)
        header_cost = [t + _HEADER_CELL_EXTRA for t in self.count_tokens(columns)]
        flat = self.count_tokens([cell for row in rows for cell in row])
        cell_cost = [[t + _ROW_CELL_EXTRA for t in flat[r * width:(r + 1) * width]] for r in range(len(rows))]
        longest = caption + _span(width - 1, width, width)
        (caption_tokens,) = self.count_tokens([longest])
        token_budget = self.max_tokens - caption_tokens - _MARGIN
        char_budget = self.max_chars - len(longest) - 16  # newlines, and the pipes opening and closing lines
        per_piece = _rows_per_piece(header_cost, cell_cost, token_budget)
        pieces: list[TablePiece] = []
        for start in range(0, len(rows), per_piece):
            block = range(start, min(start + per_piece, len(rows)))
            tokens = [header_cost[j] + sum(cell_cost[r][j] for r in block) for j in range(width)]
            chars = [len(columns[j]) + 9 + sum(len(rows[r][j]) + 3 for r in block) for j in range(width)]
            groups = _pack(tokens, chars, token_budget, char_budget)
            for group in groups:
                picked = [0, *group]
                span = _span(group[0] + 1, group[-1] + 1, width) if len(groups) > 1 else ""
                sub_header = _header(caption + span, [columns[j] for j in picked])
                sub_rows = [[rows[r][j] for j in picked] for r in block]
                sub_lines = [_line(r) for r in sub_rows]
                header_tokens, *row_tokens = self.count_tokens([sub_header, *sub_lines])
                pieces += self._row_groups(sub_header, header_tokens, [columns[j] for j in picked], sub_rows,
                                           sub_lines, row_tokens, first_row + start)
        return pieces


def _rows_per_piece(header_cost: list[int], cell_cost: list[list[int]], budget: int) -> int:
    """Rows per piece of a wide table: the count that puts the most cells in a piece (more rows repeat the
    header less often but leave room for fewer columns), from average column costs."""
    rows, width = len(cell_cost), len(header_cost)
    key_header, header = header_cost[0], sum(header_cost[1:]) / (width - 1)
    key_cell = sum(row[0] for row in cell_cost) / rows
    cell = sum(sum(row[1:]) for row in cell_cost) / (rows * (width - 1))
    best, best_cells = 1, 0
    for count in range(1, rows + 1):
        fitting = int((budget - key_header - count * key_cell) // (header + count * cell))
        if fitting < 1:
            break
        if fitting * count > best_cells:
            best, best_cells = count, fitting * count
    return best


def _pack(tokens: list[int], chars: list[int], token_budget: int, char_budget: int) -> list[list[int]]:
    """Consecutive non-key columns, as many per group as fit beside the key column (column 0); a group always
    takes at least one column."""
    groups: list[list[int]] = []
    group: list[int] = []
    used, length = tokens[0], chars[0]
    for j in range(1, len(tokens)):
        if group and (used + tokens[j] > token_budget or length + chars[j] > char_budget):
            groups.append(group)
            group, used, length = [], tokens[0], chars[0]
        group.append(j)
        used += tokens[j]
        length += chars[j]
    groups.append(group)
    return groups
