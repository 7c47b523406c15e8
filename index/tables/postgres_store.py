"""The table store on a Postgres server (`ERAG_TABLES_URL=postgresql+psycopg://...`), for several machines.

Example:
    >>> store = PostgresTableStore(Settings(tables_url="postgresql+psycopg://erag:secret@db/erag"))
    >>> store.catalog(["all"])

Same catalog, same stored tables (`erag_t_<hex>`, typed BIGINT / DECIMAL / DATE / VARCHAR) and same sandbox as
the DuckDB file: queries never run on Postgres, their tables are copied from here into the DuckDB sandbox.
Rows go in with COPY (psycopg) inside the replacing transaction; a per-document advisory lock makes two
replacements of one document take turns, so the second removes what the first wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError

from erag.settings import Settings
from index.tables.base import (
    CATALOG,
    CELLS,
    ENTRY_COLUMNS,
    GROUPS,
    CatalogEntry,
    StaleTableError,
    Step,
    StoredTable,
    TableInfo,
    TableStore,
    TableStoreError,
    catalog_ddl,
)

_SCHEMA = [
    *catalog_ddl("TIMESTAMPTZ NOT NULL DEFAULT now()"),
    f"CREATE INDEX IF NOT EXISTS {CATALOG}_doc ON {CATALOG} (doc_id)",
    f"CREATE INDEX IF NOT EXISTS {GROUPS}_group ON {GROUPS} (group_name)",
]

_SCHEMA_LOCK = 0x65726167  # advisory lock id of schema creation ("erag"): two processes starting at once


class PostgresTableStore(TableStore):
    """Typed tables, their catalog and their access groups in a Postgres database."""

    backend = "postgres"

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        super().__init__(settings)
        url = url or settings.tables_url
        if not url or not url.startswith(("postgresql://", "postgresql+psycopg://")):
            raise TableStoreError(f"the Postgres table store needs a postgresql+psycopg:// URL, got {url!r}")
        if url.startswith("postgresql://"):  # SQLAlchemy would pick psycopg2, which is not installed
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.engine = create_engine(url, pool_pre_ping=True)
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK})
            for statement in _SCHEMA:
                conn.exec_driver_sql(statement)

    def _lock_document(self, conn: Connection, doc_id: str) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:d, 0))"), {"d": f"erag-tables:{doc_id}"})

    def _write(self, doc_id: str, version: str, groups: tuple[str, ...], tables: list[StoredTable], file_name: str,
               title: str, on_step: Callable[[Step], None] | None) -> None:
        with self.engine.begin() as conn:
            self._lock_document(conn, doc_id)
            self._drop(conn, doc_id)
            raw = conn.connection.driver_connection
            for table in tables:
                columns = ", ".join(f'"{c.name}" {c.sql_type}' for c in table.columns)
                conn.exec_driver_sql(f'CREATE TABLE "{table.key}" ({columns}, {CELLS} VARCHAR)')
                names = ", ".join(f'"{n}"' for n in table.data.column_names)
                with raw.cursor() as cursor, cursor.copy(f'COPY "{table.key}" ({names}) FROM STDIN') as copy:
                    for row in zip(*(column.to_pylist() for column in table.data.columns), strict=True):
                        copy.write_row(row)
                conn.execute(text(
                    f"INSERT INTO {CATALOG} ({ENTRY_COLUMNS}) VALUES (:key, :doc, :version, :index, :base, :file, "
                    ":doc_title, :title, :sheet, :page, :columns, :rows)"),
                    {"key": table.key, "doc": doc_id, "version": version, "index": table.position,
                     "base": table.base_name, "file": file_name, "doc_title": title, "title": table.title,
                     "sheet": table.sheet, "page": table.page, "columns": table.columns_json,
                     "rows": table.data.num_rows})
                conn.execute(text(f"INSERT INTO {GROUPS} VALUES (:key, :group)"),
                             [{"key": table.key, "group": g} for g in groups])
            if on_step:
                on_step("written")

    def _drop(self, conn: Connection, doc_id: str) -> int:
        keys = [r[0] for r in conn.execute(text(f"SELECT table_key FROM {CATALOG} WHERE doc_id = :d"),
                                           {"d": doc_id})]
        for key in keys:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{key}"')
        conn.execute(text(f"DELETE FROM {GROUPS} WHERE table_key IN (SELECT table_key FROM {CATALOG} "
                          "WHERE doc_id = :d)"), {"d": doc_id})
        conn.execute(text(f"DELETE FROM {CATALOG} WHERE doc_id = :d"), {"d": doc_id})
        return len(keys)

    def _delete(self, doc_id: str) -> int:
        with self.engine.begin() as conn:
            self._lock_document(conn, doc_id)
            return self._drop(conn, doc_id)

    def _entries(self, groups: tuple[str, ...] | None) -> list[CatalogEntry]:
        where = "" if groups is None else (
            f" WHERE table_key IN (SELECT table_key FROM {GROUPS} WHERE group_name = ANY(:groups))")
        params = {} if groups is None else {"groups": list(groups)}
        with self.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            rows = conn.execute(text(f"SELECT {ENTRY_COLUMNS} FROM {CATALOG}{where}"), params).all()
            memberships = conn.execute(text(
                f"SELECT table_key, group_name FROM {GROUPS} WHERE table_key IN (SELECT table_key FROM {CATALOG}"
                f"{where}) ORDER BY group_name"), params).all()
        by_key: dict[str, list[str]] = {}
        for key, group in memberships:
            by_key.setdefault(key, []).append(group)
        return [CatalogEntry(*row, groups=tuple(by_key.get(row[0], ()))) for row in rows]

    def _load(self, tables: Sequence[TableInfo]) -> dict[str, pa.Table]:
        data: dict[str, pa.Table] = {}
        with self.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            for info in tables:
                _check_current(conn, info)
                names = ", ".join(f'"{c.name}"' for c in info.columns)
                rows = _select(conn, info, f'SELECT {names} FROM "{info.key}" ORDER BY row_id')
                columns = list(zip(*rows, strict=True)) if rows else [() for _ in info.columns]
                data[info.key] = pa.table({c.name: pa.array(list(values), c.arrow_type())
                                           for c, values in zip(info.columns, columns, strict=True)})
        return data

    def _rows(self, info: TableInfo, names: list[str], limit: int,
              row_ids: list[int] | None) -> list[dict[str, Any]]:
        selected = ", ".join(f'"{n}"' for n in [*names, CELLS])
        where = "" if row_ids is None else " WHERE row_id = ANY(%(ids)s)"
        with self.engine.connect() as conn, conn.begin():
            _check_current(conn, info)
            rows = _select(conn, info, f'SELECT {selected} FROM "{info.key}"{where} ORDER BY row_id LIMIT {int(limit)}',
                           {"ids": row_ids} if row_ids is not None else None)
        return [dict(zip([*names, CELLS], row, strict=True)) for row in rows]

    def close(self) -> None:
        self.engine.dispose()


def _check_current(conn: Connection, info: TableInfo) -> None:
    row = conn.execute(text(f"SELECT version FROM {CATALOG} WHERE table_key = :k AND doc_id = :d"),
                       {"k": info.key, "d": info.doc_id}).first()
    if row is None or row[0] != info.version:
        raise StaleTableError(f"table {info.name} ({info.file_name}) was replaced or deleted since the catalog was "
                              "read: read the catalog again")


def _select(conn: Connection, info: TableInfo, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    try:
        return [tuple(r) for r in conn.exec_driver_sql(sql, params or {}).all()]
    except ProgrammingError as exc:  # dropped by a replacement that committed while we waited for its lock
        if getattr(exc.orig, "sqlstate", None) == "42P01":
            raise StaleTableError(f"table {info.name} ({info.file_name}) was replaced since the catalog was read: "
                                  "read the catalog again") from None
        raise
