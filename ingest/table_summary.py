"""One summary chunk per table: what the table is about, so a question that repeats none of its cells finds it.

Example:
    >>> chunk = summary_chunk(document, typed_table, index=12)
    >>> print(chunk.text)
    Table: salaries (salaries.csv) - summary
    Columns: employee_id (text), name (text), department (text), salary_gbp (integer), bonus_pct (integer), band (text)
    47 rows. Values of department: Consulting, Engineering, Executive Office, Finance, HR, IT, Legal, Sales.
    ...

Row chunks carry the cells; a question about a table rarely repeats them ("which employees are in salary band
B2?" names a column and a value; "what is the average salary in Legal?" only the column). The summary names the
title, the columns with their types and units, the distinct values of short text columns (bands, offices,
departments) and the range of each numeric or date column, within the chunk budget.
"""

from __future__ import annotations

from collections.abc import Callable

from erag.schema import Chunk, LoadedDocument
from erag.table_types import TypedTable

SUMMARY_KIND = "table_summary"  # a chunk kind of its own: it has no rows to render, cite or read as a row
MAX_DISTINCT = 12  # a column with more distinct texts is an identifier or free text: its values do not summarise it
MAX_LINE_CHARS = 400
_COLUMNS, _VALUES = "Columns: ", "Values of "  # the lines `summary_columns` and `summary_values` read back


def _shown(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def summary_values(text: str) -> set[str]:
    """The values a summary lists for its short text columns, lower-cased ("engineering", "leeds"): read back by the
    chat, which asks whether a question names a row of the table."""
    return {v.strip().lower() for line in text.splitlines() if line.startswith(_VALUES)
            for v in line.split(": ", 1)[-1].split(", ")}


def summary_columns(text: str) -> str:
    """A summary's line of columns with their types and units."""
    return " ".join(line for line in text.splitlines() if line.startswith(_COLUMNS))


def summary_text(table: TypedTable, title: str, where: str) -> str:
    """The summary of one typed table (see the module docstring)."""
    columns = ", ".join(
        f"{c.label or c.name} ({c.type}{', ' + c.unit if c.unit else ''})" for c in table.columns)
    lines = [f"Table: {title} ({where}) - summary", f"{_COLUMNS}{columns}"[:MAX_LINE_CHARS * 2],
             f"{table.n_rows:,} rows."]
    for column in table.columns:
        values = [v for v in column.values if v is not None]
        if not values:
            continue
        if column.type == "text":
            distinct = sorted({" ".join(str(v).split()) for v in values})
            if 1 < len(distinct) <= MAX_DISTINCT:
                lines.append(f"{_VALUES}{column.label or column.name}: " + ", ".join(_shown(v) for v in distinct))
        else:
            low, high = min(values), max(values)  # type: ignore[type-var]
            unit = f" {column.unit}" if column.unit else ""
            lines.append(f"{column.label or column.name}: {_shown(low)} to {_shown(high)}{unit}")
    return "\n".join(line[:MAX_LINE_CHARS] for line in lines)


def summary_chunks(document: LoadedDocument, tables: list[TypedTable], first_index: int,
                   fits: Callable[[str], str]) -> list[Chunk]:
    """A summary chunk per table of `document`, indexed after its other chunks; `fits` trims a text to the
    embedder's chunk budget."""
    where_file = str(document.metadata.get("file_name") or document.title or document.doc_id)
    chunks = []
    for table in tables:
        where = ", ".join(p for p in (where_file, f"sheet {table.sheet}" if table.sheet else "",
                                      f"page {table.page}" if table.page is not None else "") if p)
        title = table.title or document.title or where_file
        chunks.append(Chunk(document.doc_id, first_index + len(chunks), fits(summary_text(table, title, where)),
                            kind=SUMMARY_KIND, page=table.page, sheet=table.sheet, headings=list(table.headings)))
    return chunks
