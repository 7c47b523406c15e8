"""The embedded table store: one DuckDB file, `<ERAG_HOME>/tables.duckdb`.

Example:
    >>> store = DuckDBTableStore(get_settings())            # creates the file and its catalog on first use
    >>> store.catalog(["all"])

A DuckDB file admits one process at a time, and the app (reading catalogs for the chat) and the ingestion
workers (replacing tables) are separate processes. So no connection is held between operations: each opens
the file, does its work in one transaction and closes it (about 10 ms), and an operation that finds the file
held by another process waits for it (up to `tables_lock_timeout_s`). Writers of one process take turns
(DuckDB's optimistic transactions would otherwise fail each other); readers do not wait for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from erag.home import private_dir, private_file
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

_SCHEMA = catalog_ddl("TIMESTAMP NOT NULL")


_writer_locks: dict[Path, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    with _writer_locks_guard:
        return _writer_locks.setdefault(path, threading.Lock())


class DuckDBTableStore(TableStore):
    """Typed tables, their catalog and their access groups in one DuckDB file."""

    backend = "duckdb"

    def __init__(self, settings: Settings, path: Path | None = None) -> None:
        super().__init__(settings)
        self.path = (path or settings.home / "tables.duckdb").resolve()
        if self.path.exists() and self.path.is_dir():
            raise TableStoreError(f"{self.path} is a folder; the table store is a DuckDB file")
        private_dir(self.path.parent)
        self.lock_timeout_s = settings.tables_lock_timeout_s
        with self._connect() as con:
            for statement in _SCHEMA:
                con.execute(statement)
        for file in (self.path, self.path.with_name(self.path.name + ".wal")):
            if file.exists():
                private_file(file)  # ERAG_HOME is owner-only; so are the documents' tables

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise TableStoreError(f"cannot open the table store {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise TableStoreError(
                        f"the table store {self.path} is held by another process (an `erag` command, worker or "
                        f"app) for over {self.lock_timeout_s:g} s (ERAG_TABLES_LOCK_TIMEOUT_S): {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _write(self, doc_id: str, version: str, groups: tuple[str, ...], tables: list[StoredTable], file_name: str,
               title: str, on_step: Callable[[Step], None] | None) -> None:
        with _writer_lock(self.path), self._transaction() as con:
            self._drop(con, doc_id)
            for table in tables:
                columns = ", ".join(f'"{c.name}" {c.sql_type}' for c in table.columns)
                con.execute(f'CREATE TABLE "{table.key}" ({columns}, {CELLS} VARCHAR)')
                con.register("erag_source", table.data)
                try:
                    con.execute(f'INSERT INTO "{table.key}" SELECT * FROM erag_source')
                finally:
                    con.unregister("erag_source")
                con.execute(
                    f"INSERT INTO {CATALOG} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)",
                    [table.key, doc_id, version, table.position, table.base_name, file_name, title, table.title,
                     table.sheet, table.page, table.columns_json, table.data.num_rows])
                con.executemany(f"INSERT INTO {GROUPS} VALUES (?, ?)", [[table.key, g] for g in groups])
            if on_step:
                on_step("written")

    def _drop(self, con: duckdb.DuckDBPyConnection, doc_id: str) -> int:
        keys = [r[0] for r in con.execute(f"SELECT table_key FROM {CATALOG} WHERE doc_id = ?", [doc_id]).fetchall()]
        for key in keys:
            con.execute(f'DROP TABLE IF EXISTS "{key}"')
        con.execute(f"DELETE FROM {GROUPS} WHERE table_key IN (SELECT table_key FROM {CATALOG} WHERE doc_id = ?)",
                    [doc_id])
        con.execute(f"DELETE FROM {CATALOG} WHERE doc_id = ?", [doc_id])
        return len(keys)

    def _delete(self, doc_id: str) -> int:
        with _writer_lock(self.path), self._transaction() as con:
            return self._drop(con, doc_id)

    def _entries(self, groups: tuple[str, ...] | None) -> list[CatalogEntry]:
        if groups is None:
            where, params = "", []
        else:
            marks = ", ".join("?" for _ in groups)
            where = f" WHERE table_key IN (SELECT table_key FROM {GROUPS} WHERE group_name IN ({marks}))"
            params = list(groups)
        with self._transaction() as con:
            rows = con.execute(f"SELECT {ENTRY_COLUMNS} FROM {CATALOG}{where}", params).fetchall()
            memberships = con.execute(
                f"SELECT table_key, group_name FROM {GROUPS} WHERE table_key IN (SELECT table_key FROM {CATALOG}"
                f"{where}) ORDER BY group_name", params).fetchall()
        by_key: dict[str, list[str]] = {}
        for key, group in memberships:
            by_key.setdefault(key, []).append(group)
        return [CatalogEntry(*row[:12], groups=tuple(by_key.get(row[0], ()))) for row in rows]

    def _load(self, tables: Sequence[TableInfo]) -> dict[str, pa.Table]:
        data: dict[str, pa.Table] = {}
        with self._transaction() as con:  # one snapshot for every table of the query
            for info in tables:
                _check_current(con, info)
                names = ", ".join(f'"{c.name}"' for c in info.columns)
                data[info.key] = con.sql(f'SELECT {names} FROM "{info.key}" ORDER BY row_id').to_arrow_table()
        return data

    def _rows(self, info: TableInfo, names: list[str], limit: int,
              row_ids: list[int] | None) -> list[dict[str, Any]]:
        selected = ", ".join(f'"{n}"' for n in [*names, CELLS])
        where, params = "", []
        if row_ids is not None:
            where, params = " WHERE row_id IN (SELECT unnest(?::BIGINT[]))", [row_ids]
        with self._transaction() as con:
            _check_current(con, info)
            cursor = con.execute(f'SELECT {selected} FROM "{info.key}"{where} ORDER BY row_id LIMIT {int(limit)}',
                                 params)
            columns = [d[0] for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _check_current(con: duckdb.DuckDBPyConnection, info: TableInfo) -> None:
    rows = con.execute(f"SELECT version FROM {CATALOG} WHERE table_key = ? AND doc_id = ?",
                       [info.key, info.doc_id]).fetchall()  # fetched to the end: DuckDB 2 refuses new work otherwise
    if not rows or rows[0][0] != info.version:
        raise StaleTableError(f"table {info.name} ({info.file_name}) was replaced or deleted since the catalog was "
                              "read: read the catalog again")
