"""Table-native answers: every ingested table stored as a typed SQL table, and a sandbox to query it.

Example:
    >>> from erag.table_types import TableTyper
    >>> store = open_table_store(get_settings())     # DuckDB file <ERAG_HOME>/tables.duckdb, or ERAG_TABLES_URL
    >>> typer = TableTyper.from_settings(get_settings())
    >>> tables = [typer.run(b) for b in doc.blocks if isinstance(b, TableBlock)]
    >>> store.replace(doc.doc_id, version, groups, tables, file_name="salaries.csv", title=doc.title)
    >>> catalog = store.catalog(user.groups)                       # only tables the user may read
    >>> print("\\n\\n".join(t.describe() for t in catalog))          # the schema for the model
    >>> result = store.query("SELECT office, count(*) FROM salaries GROUP BY office", catalog)
    >>> result.columns, result.rows, result.text()

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
