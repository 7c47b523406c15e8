"""Table-native answers: every ingested table stored as a typed SQL table, and a sandbox to query it.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from erag.schema import TableBlock
    >>> from erag.table_types import TableTyper
    >>> from ingest.loaders import FileLoader
    >>> settings = Settings(home=Path(tempfile.mkdtemp()))
    >>> store = open_table_store(settings)     # DuckDB file <ERAG_HOME>/tables.duckdb, or ERAG_TABLES_URL
    >>> doc = FileLoader.from_settings(settings).run(Path("data/hr_restricted/salaries.csv"))
    >>> typer = TableTyper.from_settings(settings)
    >>> tables = [typer.run(b) for b in doc.blocks if isinstance(b, TableBlock)]
    >>> [t.name for t in store.replace(doc.doc_id, "v1", ["hr"], tables, file_name="salaries.csv", title=doc.title)]
    ['salaries']
    >>> store.catalog(["all"])                     # only tables the groups may read: an employee sees none
    []
    >>> catalog = store.catalog(["hr"])
    >>> print("\\n\\n".join(t.describe() for t in catalog))          # the schema for the model
    TABLE salaries -- "salaries" (salaries.csv), 47 rows
      row_id BIGINT -- row number in the source table
      employee_id VARCHAR -- "employee_id"
      name VARCHAR -- "name"
      department VARCHAR -- "department"
      salary_gbp BIGINT -- "salary_gbp"
      bonus_pct DECIMAL(38, 1) -- "bonus_pct"
      band VARCHAR -- "band"
    >>> sql = "SELECT department, count(*) AS staff FROM salaries GROUP BY department ORDER BY staff DESC LIMIT 2"
    >>> result = store.query(sql, catalog)
    >>> result.rows
    [('Engineering', 13), ('Consulting', 11)]
    >>> print(result.text())
    | department | staff |
    |---|---|
    | Engineering | 13 |
    | Consulting | 11 |

Two storage backends behind one surface (`TableStore`), like the vector store's Edge/server split: a DuckDB
file by default, Postgres when `tables_url` is set. Queries run neither on the one nor on the other but in a
fresh in-memory DuckDB holding copies of the permitted tables (`sandbox.py`), so they behave the same on both.
"""

from __future__ import annotations

from erag.settings import Settings
from index.tables.base import (
    ColumnInfo,
    QueryResult,
    StaleTableError,
    TableInfo,
    TableRow,
    TableStore,
    TableStoreError,
)
from index.tables.sandbox import (
    ALLOWED_FUNCTIONS,
    CheckedQuery,
    QueryError,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    SqlSandbox,
    check_query,
)

__all__ = [
    "ALLOWED_FUNCTIONS",
    "CheckedQuery",
    "ColumnInfo",
    "QueryError",
    "QueryFailed",
    "QueryRefused",
    "QueryResult",
    "QueryTimeout",
    "SqlSandbox",
    "StaleTableError",
    "TableInfo",
    "TableRow",
    "TableStore",
    "TableStoreError",
    "check_query",
    "open_table_store",
]


def open_table_store(settings: Settings) -> TableStore:
    """The DuckDB file `<home>/tables.duckdb` by default; Postgres when `tables_url` is set."""
    if settings.tables_url:
        from index.tables.postgres_store import PostgresTableStore

        return PostgresTableStore(settings)
    from index.tables.duckdb_store import DuckDBTableStore

    return DuckDBTableStore(settings)
