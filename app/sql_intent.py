"""Does the model's query read what the question asks? Three checks the packaged 1.5B model needs on business tables.

Example:
    >>> from index.tables import ColumnInfo, TableInfo
    >>> cols = tuple(ColumnInfo(n, n, t) for n, t in (("row_id", "integer"), ("line_item", "text"),
    ...              ("q3_2026_budget", "integer"), ("q3_2026_actual", "integer")))
    >>> report = TableInfo("report", "k", "d", "v", 0, "Q3 2026 results", "q3.pdf", "Q3", None, 1, cols, 9, ("all",))
    >>> print(actual_not_planned("What was total revenue in Q3 2026?",
    ...                          "SELECT q3_2026_budget FROM report WHERE line_item = 'Total revenue'", [report]))
    SELECT q3_2026_actual FROM report WHERE line_item = 'Total revenue'
    >>> years_not_read("What was total revenue in Q3 2024?", "SELECT q3_2026_actual FROM report", [report], [])
    ['2024']
    >>> is_total_row_answer("Which department spent most?", [("Total operating expenses",)])
    True

What each catches, seen on the sample company's question set (eval/sets/sample_company):
- `actual_not_planned`: a quarterly report has budget and actual columns side by side; asked "What was total
  revenue in Q3 2026?", the model read the budget column. A question that names no plan (budget, forecast,
  target, plan) asks for what happened, so a planned column with an actual twin is read as that twin.
- `years_not_read`: asked for Q3 2024, the model answered from the Q3 2026 report's only revenue row. A year the
  question names must be read somewhere (the query, the table's title, a column, a cell), else the table does
  not hold the answer and the text path (and its abstention) takes the question.
- `is_total_row_answer`: asked which department spent most, the model returned the "Total operating expenses"
  row. A which/who question is never answered by a total row unless it asks about totals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from app.evidence import years_named
from index.tables import TableInfo

_PLANNED = re.compile(r"budget\w*|forecast\w*|plan(ned)?|target\w*|estimate\w*|projected", re.I)
TOTAL_ROW = re.compile(r"^\s*(grand |sub-?)?total\b|^\s*all\b", re.IGNORECASE)
_WHICH = re.compile(r"^\s*(which|who|what (department|team|office|segment|region|quarter|division|unit))\b", re.I)


def actual_not_planned(question: str, sql: str, tables: Sequence[TableInfo]) -> str | None:
    """`sql` with each planned column (q3_2026_budget) read as its actual twin (q3_2026_actual) when the question
    names no plan and the table has that twin; None when nothing changes."""
    if _PLANNED.search(question):
        return None
    names = {c.name.lower() for t in tables for c in t.columns}
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return None
    changed = False

    def twin(node: exp.Expression) -> exp.Expression:
        nonlocal changed
        if isinstance(node, exp.Column) and _PLANNED.search(node.name):
            actual = _PLANNED.sub("actual", node.name.lower())
            if actual in names and actual != node.name.lower():
                changed = True
                return exp.column(actual, table=node.table or None)
        return node

    fixed = tree.transform(twin)
    return fixed.sql(dialect="duckdb") if changed else None


def years_not_read(question: str, sql: str, tables: Sequence[TableInfo], cells: Sequence[str]) -> list[str]:
    """Years the question names that neither the query, the tables' titles and columns, nor `cells` (the tables'
    text) hold."""
    asked = years_named(question)
    if not asked:
        return []
    seen = " ".join([sql, *(f"{t.title} {t.doc_title} {t.file_name} {t.sheet or ''}" for t in tables),
                     *(f"{c.name} {c.label}" for t in tables for c in t.columns), *cells])
    return [year for year in asked if year not in seen]


def is_total_row_answer(question: str, rows: Sequence[Sequence[object]]) -> bool:
    """A which/who question answered with a total row's label ("Total operating expenses")."""
    if not _WHICH.search(question) or re.search(r"\btotals?\b", question, re.I):
        return False
    labels = [row[0] for row in rows if row and isinstance(row[0], str)]
    return bool(labels) and all(TOTAL_ROW.search(label) for label in labels)
