"""What every table store shares: catalog records, per-user table names, typed rows as Arrow, and the query path.

Example:
    >>> store = open_table_store(get_settings())
    >>> store.replace(doc_id, version, ["hr"], [TableTyper().run(b) for b in tables], "salaries.csv", "Salaries")
    >>> infos = store.catalog(["hr"])
    >>> store.query("SELECT office, avg(salary) FROM salaries GROUP BY office", infos).rows

A stored table is named `erag_t_<random hex>` (its `key`), new at every replace(): a reader that read the
catalog before a replacement finds its key gone (StaleTableError) rather than another version's rows, and
nothing can confuse two versions. The model never sees keys; it sees `TableInfo.name`, made from the file
name and the sheet or table number ("salaries", "budget_2024_q1", "annual_report_t3"), unique within the
catalog of the user asking (a second "salaries" becomes "salaries_2", in a stable order).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Literal

import pyarrow as pa

from erag.access import UNRESTRICTED, AccessError, GroupScope, require_groups
from erag.settings import Settings
from erag.table_types import ROW_ID, ColumnType, TypedTable, Value, is_plain_identifier, sql_name
from index.tables.sandbox import CheckedQuery, QueryRefused, SqlSandbox, check_query

log = logging.getLogger(__name__)

CATALOG, GROUPS = "erag_tables", "erag_table_groups"
CELLS = "_cells"  # stored beside the typed columns: the row's original cell texts (JSON), never in the sandbox
ENTRY_COLUMNS = ("table_key, doc_id, version, table_index, base_name, file_name, doc_title, title, sheet, page, "
                 "columns, row_count")


def catalog_ddl(created_at: str) -> list[str]:
    """The catalog and group tables both backends create; `created_at` is the column's type and default there."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {CATALOG} (
        table_key VARCHAR PRIMARY KEY, doc_id VARCHAR NOT NULL, version VARCHAR NOT NULL,
        table_index INTEGER NOT NULL, base_name VARCHAR NOT NULL, file_name VARCHAR NOT NULL,
        doc_title VARCHAR NOT NULL, title VARCHAR NOT NULL, sheet VARCHAR, page INTEGER,
        columns VARCHAR NOT NULL, row_count BIGINT NOT NULL, created_at {created_at})""",
        f"""CREATE TABLE IF NOT EXISTS {GROUPS} (
        table_key VARCHAR NOT NULL, group_name VARCHAR NOT NULL, PRIMARY KEY (table_key, group_name))""",
    ]


KEY_PREFIX = "erag_t_"
MAX_TABLE_NAME = 48
MAX_COLUMNS = 1500  # Postgres allows 1,600 columns per table; both backends keep the same tables
# Names the sandbox's DuckDB already gives a meaning to.
_RESERVED_TABLES = {"information_schema", "pg_catalog", "main", "temp", "system", "memory"}
Step = Literal["written"]


class TableStoreError(RuntimeError):
    """The table store cannot be opened or written; the message says what to do."""


class StaleTableError(TableStoreError):
    """A table was replaced or deleted after the catalog that named it was read: read the catalog again."""


@dataclass(frozen=True)
class ColumnInfo:
    """A column as the model sees it: SQL `name`, header `label`, `type`, `unit`."""

    name: str
    label: str
    type: ColumnType
    unit: str | None = None
    scale: int = 0  # decimal places of a "number" column

    @property
    def sql_type(self) -> str:
        return {"integer": "BIGINT", "number": f"DECIMAL(38, {self.scale})", "date": "DATE",
                "text": "VARCHAR"}[self.type]

    def arrow_type(self) -> pa.DataType:
        return {"integer": pa.int64(), "number": pa.decimal128(38, self.scale), "date": pa.date32(),
                "text": pa.string()}[self.type]


ROW_ID_COLUMN = ColumnInfo(ROW_ID, "row number in the source table", "integer")


@dataclass(frozen=True)
class TableInfo:
    """One table a user may query. `name` is what their SQL calls it; `columns` start with `row_id`."""

    name: str
    key: str
    doc_id: str
    version: str
    position: int  # the table's index among its document's tables
    title: str
    file_name: str
    doc_title: str
    sheet: str | None
    page: int | None
    columns: tuple[ColumnInfo, ...]
    row_count: int
    groups: tuple[str, ...]

    def describe(self) -> str:
        """The table for a prompt: one line per column with its header and unit.

        TABLE salaries -- "Salaries" (salaries.csv), 40 rows
          row_id BIGINT -- row number in the source table
          salary BIGINT -- "Salary (£)", unit GBP
        """
        where = ", ".join(p for p in (self.file_name, f"sheet {self.sheet}" if self.sheet else "",
                                      f"page {self.page}" if self.page is not None else "") if p)
        lines = [f'TABLE {self.name} -- "{self.title}" ({where}), {self.row_count:,} rows']
        for c in self.columns:
            note = c.label if c.name == ROW_ID else f'"{c.label}"'
            lines.append(f"  {c.name} {c.sql_type} -- {note}" + (f", unit {c.unit}" if c.unit else ""))
        return "\n".join(lines)


@dataclass
class TableRow:
    """One source row: typed values and the cells' original texts, both by column name."""

    row_id: int
    values: dict[str, Value]
    texts: dict[str, str]


@dataclass
class QueryResult:
    """What a table query returned. `sql` is the accepted query as it ran; `truncated` means more rows existed."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    sql: str
    tables: list[TableInfo]
    timings: dict[str, float] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def text(self, max_rows: int = 50) -> str:
        """The result as a Markdown table (numbers as written: no float noise, no exponent)."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        for row in self.rows[:max_rows]:
            lines.append("| " + " | ".join(_show(v) for v in row) + " |")
        if self.truncated or len(self.rows) > max_rows:
            lines.append(f"(first {min(max_rows, len(self.rows))} rows shown)")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).replace("|", "/").replace("\n", " ")


@dataclass
class StoredTable:
    """A typed table as a backend writes it: its catalog fields and its rows as Arrow."""

    key: str
    position: int
    base_name: str
    title: str
    sheet: str | None
    page: int | None
    columns: tuple[ColumnInfo, ...]  # row_id first
    data: pa.Table  # row_id, the typed columns, then _cells

    @property
    def columns_json(self) -> str:
        return json.dumps([[c.name, c.label, c.type, c.unit, c.scale] for c in self.columns], ensure_ascii=False)


@dataclass
class CatalogEntry:
    """A catalog row as a backend reads it, before per-user naming."""

    key: str
    doc_id: str
    version: str
    position: int
    base_name: str
    file_name: str
    doc_title: str
    title: str
    sheet: str | None
    page: int | None
    columns_json: str
    row_count: int
    groups: tuple[str, ...] = ()


class TableStore(ABC):
    """Typed tables of ingested documents beside the vector index, with their access groups and versions.

    Example:
        >>> store = open_table_store(settings)   # DuckDB file under ERAG_HOME, or Postgres with ERAG_TABLES_URL
        >>> store.replace("hr/salaries.csv", "v1", ["hr"], [typed], "salaries.csv", "Salaries")
        >>> [t.name for t in store.catalog(["all"])]                  # an employee does not see it
        []
        >>> store.query("SELECT count(*) FROM salaries", store.catalog(["hr"])).rows
        [(47,)]
    """

    backend: str = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.max_cells = settings.tables_max_cells
        self.sandbox = SqlSandbox(max_rows=settings.tables_query_max_rows, timeout_s=settings.tables_query_timeout_s,
                                  memory_mb=settings.tables_query_memory_mb, threads=settings.tables_query_threads)

    # --- writing ---------------------------------------------------------------------------------

    def replace(
        self,
        doc_id: str,
        version: str,
        groups: Iterable[str],
        tables: Sequence[TypedTable],
        file_name: str,
        title: str = "",
        on_step: Callable[[Step], None] | None = None,
    ) -> list[TableInfo]:
        """Make `tables` the document's tables, in one transaction: readers see the old set or the new one, never
        a part or a mix (a kill before the commit leaves the old set whole). An empty `tables` removes the
        document's tables. Tables over `tables_max_cells` are left out (logged). `on_step("written")` runs just
        before the commit (the tests' fault-injection hook). Returns the stored tables as the groups see them."""
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise ValueError("doc_id must be a non-empty string")
        if not isinstance(version, str) or not version.strip():
            raise ValueError(f"version of {doc_id} must be a non-empty string")
        scope = require_groups(groups, f"tables of {doc_id}")
        if scope is UNRESTRICTED:
            raise AccessError(f"tables of {doc_id}: a stored table needs real access groups, not UNRESTRICTED")
        stored = self._prepare(tables, file_name)
        self._write(doc_id, version, tuple(scope), stored, file_name, title, on_step)
        return [_info(entry.base_name, entry) for entry in (
            CatalogEntry(s.key, doc_id, version, s.position, s.base_name, file_name, title, s.title, s.sheet, s.page,
                         s.columns_json, s.data.num_rows, tuple(scope)) for s in stored)]

    def _prepare(self, tables: Sequence[TypedTable], file_name: str) -> list[StoredTable]:
        stem = _table_stem(file_name)
        count = len(tables)
        stored: list[StoredTable] = []
        for position, table in enumerate(tables):
            cells = table.n_rows * max(len(table.columns), 1)
            if not table.columns:
                continue
            if cells > self.max_cells or len(table.columns) > MAX_COLUMNS:
                log.warning("table %d of %s (%s rows x %s columns) is over tables_max_cells (%s) or %s columns: "
                            "not stored for SQL", position + 1, file_name, f"{table.n_rows:,}",
                            f"{len(table.columns):,}", f"{self.max_cells:,}", f"{MAX_COLUMNS:,}")
                continue
            columns = (ROW_ID_COLUMN, *(ColumnInfo(c.name, c.label, c.type, c.unit, c.scale) for c in table.columns))
            stored.append(StoredTable(
                key=KEY_PREFIX + uuid.uuid4().hex[:24], position=position,
                base_name=_base_name(stem, table, position, count), title=table.title, sheet=table.sheet,
                page=table.page, columns=columns, data=_arrow(table, columns)))
        return stored

    def delete(self, doc_id: str) -> int:
        """Remove every table of the document; returns how many there were."""
        return self._delete(doc_id)

    # --- reading ---------------------------------------------------------------------------------

    def catalog(self, groups: GroupScope, doc_ids: Iterable[str] | None = None) -> list[TableInfo]:
        """The tables these groups may read (a table's groups intersect them; UNRESTRICTED reads all), optionally
        only those of `doc_ids`. Names are unique over everything the groups can read, so they stay the same
        whichever documents are asked for."""
        scope = require_groups(groups, "table catalog")
        entries = sorted(self._entries(None if scope is UNRESTRICTED else tuple(scope)),  # type: ignore[arg-type]
                         key=lambda e: (e.base_name, e.doc_id, e.position))
        bases = {e.base_name for e in entries}
        used: set[str] = set()
        infos: list[TableInfo] = []
        for entry in entries:
            name, n = entry.base_name, 2
            while name in used or (name != entry.base_name and name in bases):
                name, n = f"{entry.base_name}_{n}", n + 1
            used.add(name)
            infos.append(_info(name, entry))
        if doc_ids is not None:
            wanted = set(doc_ids)
            infos = [i for i in infos if i.doc_id in wanted]
        return infos

    def document_versions(self) -> dict[str, set[str]]:
        """Every document that has tables, with the version(s) they were stored under: one read, so ingestion can
        check thousands of documents against it without a query each (a document whose vector index is current
        but whose tables are not is written again)."""
        out: dict[str, set[str]] = {}
        for entry in self._entries(None):
            out.setdefault(entry.doc_id, set()).add(entry.version)
        return out

    def rows(self, info: TableInfo, limit: int = 20, row_ids: Iterable[int] | None = None) -> list[TableRow]:
        """Rows of a catalog table in source order (the first `limit`, or those of `row_ids`), with the cells'
        original texts: for samples in a prompt and for showing the rows an answer came from."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        wanted = sorted({int(r) for r in row_ids}) if row_ids is not None else None
        names = [c.name for c in info.columns]
        out: list[TableRow] = []
        for record in self._rows(info, names, limit, wanted):
            texts = json.loads(record[CELLS] or "[]")
            values = {n: record[n] for n in names if n != ROW_ID}
            out.append(TableRow(int(record[ROW_ID]), values, dict(zip(names[1:], texts, strict=False))))
        return out

    def query(self, sql: str, tables: Sequence[TableInfo], max_rows: int | None = None,
              timeout_s: float | None = None) -> QueryResult:
        """Run one SELECT over `tables` (catalog entries, named as in the catalog) in a fresh sandbox holding
        copies of only the tables the query reads. Raises QueryRefused (not a single SELECT over these tables,
        or a forbidden function), QueryFailed / QueryTimeout (DuckDB's error, or the time limit) and
        StaleTableError (a table was replaced since the catalog was read)."""
        started = time.perf_counter()
        by_name = {t.name.lower(): t for t in tables}
        if len(by_name) != len(tables):
            raise QueryRefused("two tables were given the same name")
        checked: CheckedQuery = check_query(sql, by_name)
        used = [by_name[name] for name in checked.tables]
        checked_at = time.perf_counter()
        data = self._load(used)
        fetched = time.perf_counter()
        sandbox = self.sandbox
        if max_rows is not None or timeout_s is not None:
            sandbox = SqlSandbox(max_rows or sandbox.max_rows, timeout_s or sandbox.timeout_s, sandbox.memory_mb,
                                 sandbox.threads)
        result = sandbox.run(checked, {t.name.lower(): data[t.key] for t in used})
        timings = {"check_s": checked_at - started, "fetch_s": fetched - checked_at, "copy_s": result.load_s,
                   "run_s": result.run_s, "total_s": time.perf_counter() - started}
        return QueryResult(result.columns, result.rows, result.truncated, checked.sql, used, timings)

    # --- backend primitives --------------------------------------------------------------------

    @abstractmethod
    def _write(self, doc_id: str, version: str, groups: tuple[str, ...], tables: list[StoredTable], file_name: str,
               title: str, on_step: Callable[[Step], None] | None) -> None:
        """Drop the document's tables and catalog rows and write `tables`, all in one transaction."""

    @abstractmethod
    def _delete(self, doc_id: str) -> int: ...

    @abstractmethod
    def _entries(self, groups: tuple[str, ...] | None) -> list[CatalogEntry]:
        """Catalog rows whose groups intersect `groups` (None: every row), each with all its groups."""

    @abstractmethod
    def _load(self, tables: Sequence[TableInfo]) -> dict[str, pa.Table]:
        """Every table's rows (row_id and typed columns, no _cells) by key, read in one snapshot; StaleTableError
        when a table's key or version is no longer in the catalog."""

    @abstractmethod
    def _rows(self, info: TableInfo, names: list[str], limit: int,
              row_ids: list[int] | None) -> list[dict[str, Any]]: ...

    def close(self) -> None:  # noqa: B027 - the DuckDB file is opened per operation: nothing to release
        """Release connections."""

    def __enter__(self) -> TableStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _info(name: str, entry: CatalogEntry) -> TableInfo:
    columns = tuple(ColumnInfo(n, label, kind, unit, scale) for n, label, kind, unit, scale in
                    json.loads(entry.columns_json))
    return TableInfo(name=name, key=entry.key, doc_id=entry.doc_id, version=entry.version, position=entry.position,
                     title=entry.title, file_name=entry.file_name, doc_title=entry.doc_title, sheet=entry.sheet,
                     page=entry.page, columns=columns, row_count=entry.row_count, groups=entry.groups)


def _arrow(table: TypedTable, columns: tuple[ColumnInfo, ...]) -> pa.Table:
    arrays: dict[str, pa.Array] = {ROW_ID: pa.array(table.row_ids, pa.int64())}
    for info, column in zip(columns[1:], table.columns, strict=True):
        values = list(column.values)
        if info.type == "text":  # Postgres text cannot hold NUL; a NUL in a cell is never meant
            values = [v.replace("\x00", "") if isinstance(v, str) else v for v in values]
        arrays[info.name] = pa.array(values, info.arrow_type())
    texts = zip(*(c.texts for c in table.columns), strict=True)
    arrays[CELLS] = pa.array([json.dumps(list(row), ensure_ascii=False) for row in texts], pa.string())
    return pa.table(arrays)


def _table_stem(file_name: str) -> str:
    stem = sql_name(PurePath(file_name).stem, 32).rstrip("_")
    return stem or "table"


def _base_name(stem: str, table: TypedTable, position: int, count: int) -> str:
    """The table's preferred SQL name: the file's stem, plus the sheet ("budget_q1") or the table's number
    ("report_t3") when the document has several tables."""
    if count == 1:
        name = stem
    else:
        part = sql_name(table.sheet, 16).rstrip("_") if table.sheet else ""
        name = f"{stem}_{part or f't{position + 1}'}"
    name = name[:MAX_TABLE_NAME].rstrip("_")
    if name in _RESERVED_TABLES or not is_plain_identifier(name):
        name = f"{name}_table"
    return name
