"""Prepared index writes, handed from ingestion workers to the one process that holds the embedded index.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from erag.schema import point_id
    >>> from index.store import IndexPoint
    >>> from ingest.pipeline import DocumentVersion
    >>> sink = SpoolSink()
    >>> # A worker runs IngestPipeline(settings, sink=sink).run([path]): it parses, tags and embeds, writes no index,
    >>> # and hands the sink what it prepared, as here by hand:
    >>> sink.open(dim=4, embedder="all-MiniLM-L6-v2")
    >>> doc, version = "hr/leave.md", "0123456789abcdef01234567"
    >>> payload = {"doc_id": doc, "version": version, "groups": ["all"], "text": "Partners get 6 weeks."}
    >>> point = IndexPoint(point_id(doc, version, 0), np.ones(4, np.float32), [7], [1.0], payload)
    >>> sink.write(DocumentVersion(doc, version, [point], groups=["all"]))
    >>> spool = Spool(Path(tempfile.mkdtemp()) / "spool")
    >>> for prepared in sink.take():
    ...     spool.put(SpoolEntry(job_id=7, attempt=1, dim=sink.dim, embedder=sink.embedder, version=prepared)).name
    '000000000007-001.spool'
    >>> for path in spool.paths():  # the index writer applies them in job order
    ...     entry = spool.read(path)
    >>> entry.doc_id, entry.chunks, entry.groups
    ('hr/leave.md', 1, ['all'])

A Qdrant Edge shard admits one process, so workers cannot write to it while the app serves chat. A worker
runs the ingestion pipeline with a `SpoolSink`, which keeps the document version the pipeline prepared (its
chunks, vectors and payloads); the index writer then writes that version on the real index with the same
version-switch protocol (`index.versions.write_version`), so crash safety is the index's own.

Data, never code: an entry is a safetensors file (the vectors as plain arrays, the header and payloads as JSON
in its metadata), never a pickle, and it is validated field by field before anything is written: a tampered
or damaged entry fails its job with the reason. An entry becomes visible only by an atomic rename after
fsync: a worker killed while writing one leaves a `.tmp` file that is never read (see `clean_partial`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from erag.access import require_groups
from erag.table_types import TypedColumn, TypedTable, Value, is_plain_identifier
from index.store import IndexPoint
from index.versions import VersionState
from ingest.pipeline import DocumentVersion

FORMAT = 1
_HEADER_KEY = "erag_spool"
# Payload fields the pipeline writes (ingest.pipeline.IngestPipeline._payload) plus entity fields: anything else
# in an entry did not come from this product's workers.
_PAYLOAD_KEYS = frozenset({
    "text", "doc_id", "version", "source", "file_name", "title", "doc_type", "kind", "chunk_index", "n_chunks",
    "page", "sheet", "row_start", "row_end", "headings", "table", "department", "owner", "groups", "content_hash",
    "ingested_at", "f8", "people", "orgs", "places", "dates", "money", "departments", "products", "laws", "events",
    "years",
})
_POINT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class SpoolError(ValueError):
    """A spool entry cannot be used (damaged, tampered with, or not an entry at all); the message says why."""


class SpoolSink:
    """The pipeline's sink in a worker: every file is new to it (the writer decides on the real index), and the
    prepared version is kept for the spool instead of being written."""

    def __init__(self) -> None:
        self.dim = 0
        self.embedder = ""
        self.versions: list[DocumentVersion] = []

    def open(self, dim: int, embedder: str) -> None:
        self.dim, self.embedder = dim, embedder

    def state(self, doc_id: str, version: str) -> VersionState:
        return "added"

    def write(self, version: DocumentVersion) -> None:
        self.versions.append(version)

    def take(self) -> list[DocumentVersion]:
        """The versions prepared since the last call."""
        versions, self.versions = self.versions, []
        return versions


class _Header(BaseModel):
    """The JSON part of an entry, checked strictly: the writer trusts nothing it did not validate."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: int
    job_id: int = Field(ge=1)
    attempt: int = Field(ge=1)
    doc_id: str = Field(min_length=1, max_length=4096)
    version: str = Field(pattern=r"^[0-9a-f]{24}$")
    groups: list[str]
    dim: int = Field(ge=1, le=8192)
    embedder: str = Field(max_length=512)
    ids: list[str]
    payloads: list[dict[str, Any]]
    sparse_lengths: list[int]
    file_name: str = Field("", max_length=1024)
    title: str = Field("", max_length=4096)
    tables: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return list(require_groups(value, where="spooled groups"))  # type: ignore[arg-type]


@dataclass
class SpoolEntry:
    """One job's prepared document version: which attempt made it, the groups it carries, and its chunks."""

    job_id: int
    attempt: int
    dim: int
    embedder: str
    version: DocumentVersion

    @property
    def doc_id(self) -> str:
        return self.version.doc_id

    @property
    def chunks(self) -> int:
        return len(self.version.points)

    @property
    def groups(self) -> list[str]:
        return list(self.version.points[0].payload["groups"]) if self.version.points else []

    def to_file(self, path: Path) -> None:
        points = self.version.points
        sparse_idx = [i for p in points for i in p.sparse_indices]
        sparse_val = [v for p in points for v in p.sparse_values]
        header = {
            "format": FORMAT, "job_id": self.job_id, "attempt": self.attempt, "doc_id": self.version.doc_id,
            "version": self.version.version, "groups": self.groups, "dim": self.dim, "embedder": self.embedder,
            "ids": [p.id for p in points], "payloads": [p.payload for p in points],
            "sparse_lengths": [len(p.sparse_indices) for p in points],
            "file_name": self.version.file_name, "title": self.version.title,
            "tables": [_table_to_json(t) for t in self.version.tables],
        }
        tensors = {
            "dense": np.stack([np.asarray(p.dense, dtype=np.float32) for p in points]),
            "sparse_indices": np.asarray(sparse_idx, dtype=np.int64),
            "sparse_values": np.asarray(sparse_val, dtype=np.float32),
        }
        save_file(tensors, str(path), metadata={_HEADER_KEY: json.dumps(header)})

    @classmethod
    def from_file(cls, path: Path) -> SpoolEntry:
        """Read and validate an entry; raises SpoolError with the reason (nothing is executed to read it)."""
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as fh:
                raw_header = (fh.metadata() or {}).get(_HEADER_KEY)
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise SpoolError(f"{path.name} is not a readable spool entry ({exc})") from exc
        if raw_header is None:
            raise SpoolError(f"{path.name} has no spool header")
        try:
            header = _Header.model_validate(json.loads(raw_header))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise SpoolError(f"{path.name} has an invalid header ({' '.join(str(exc).split())[:300]})") from exc
        return cls._from_parts(header, tensors, path.name)

    @classmethod
    def _from_parts(cls, header: _Header, tensors: dict[str, np.ndarray], name: str) -> SpoolEntry:
        if header.format != FORMAT:
            raise SpoolError(f"{name} has format {header.format}, this version reads {FORMAT}")
        n = len(header.ids)
        if not n or not (len(header.payloads) == len(header.sparse_lengths) == n):
            raise SpoolError(f"{name}: ids, payloads and sparse vectors disagree in number (or are empty)")
        if set(tensors) != {"dense", "sparse_indices", "sparse_values"}:
            raise SpoolError(f"{name}: unexpected arrays {sorted(tensors)}")
        dense, idx, val = tensors["dense"], tensors["sparse_indices"], tensors["sparse_values"]
        if dense.dtype != np.float32 or dense.shape != (n, header.dim):
            raise SpoolError(f"{name}: dense vectors are {dense.dtype} {dense.shape}, expected float32 ({n}, "
                             f"{header.dim})")
        if not np.isfinite(dense).all():
            raise SpoolError(f"{name}: dense vectors hold NaN or infinite values")
        if idx.dtype != np.int64 or val.dtype != np.float32 or idx.shape != val.shape or \
                idx.shape != (sum(header.sparse_lengths),) or (idx.size and (idx.min() < 0 or idx.max() >= 2**32)):
            raise SpoolError(f"{name}: BM25 vectors are malformed")
        points, offset = [], 0
        for number, (pid, payload, length) in enumerate(zip(header.ids, header.payloads, header.sparse_lengths,
                                                            strict=True)):
            _check_payload(payload, header, pid, f"{name}, chunk {number}")
            points.append(IndexPoint(pid, dense[number], idx[offset: offset + length].tolist(),
                                     val[offset: offset + length].tolist(), payload))
            offset += length
        tables = [_table_from_json(t, f"{name}, table {i + 1}") for i, t in enumerate(header.tables)]
        return cls(header.job_id, header.attempt, header.dim, header.embedder,
                   DocumentVersion(header.doc_id, header.version, points, tables, list(header.groups),
                                   header.file_name, header.title))


def _value_to_json(value: Value) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _table_to_json(table: TypedTable) -> dict[str, Any]:
    return {"title": table.title, "page": table.page, "sheet": table.sheet, "headings": list(table.headings),
            "header_rows": table.header_rows, "row_ids": list(table.row_ids),
            "columns": [{"name": c.name, "label": c.label, "type": c.type, "unit": c.unit, "scale": c.scale,
                         "values": [_value_to_json(v) for v in c.values], "texts": list(c.texts)}
                        for c in table.columns]}


def _typed_value(raw: object, kind: str, where: str) -> Value:
    """A cell read back by its column's type; anything that does not fit the type is a tampered entry."""
    if raw is None:
        return None
    try:
        if kind == "integer" and isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if kind == "number" and isinstance(raw, str):
            number = Decimal(raw)
            if number.is_finite():
                return number
        if kind == "date" and isinstance(raw, str):
            return dt.date.fromisoformat(raw)
        if kind == "text" and isinstance(raw, str):
            return raw
    except (ArithmeticError, ValueError):
        pass
    raise SpoolError(f"{where}: a {kind} cell holds {type(raw).__name__} {str(raw)[:40]!r}")


def _table_from_json(data: dict[str, Any], where: str) -> TypedTable:
    try:
        row_ids = [int(r) for r in data["row_ids"]]
        columns = []
        for column in data["columns"]:
            kind = column["type"]
            if kind not in ("integer", "number", "date", "text") or not is_plain_identifier(str(column["name"])):
                raise SpoolError(f"{where}: column {str(column.get('name'))[:40]!r} of type {kind!r} is not valid")
            values = tuple(_typed_value(v, kind, f"{where}, column {column['name']}") for v in column["values"])
            texts = tuple(str(t) for t in column["texts"])
            if len(values) != len(row_ids) or len(texts) != len(row_ids):
                raise SpoolError(f"{where}: column {column['name']} has {len(values)} values for {len(row_ids)} rows")
            columns.append(TypedColumn(str(column["name"]), str(column["label"]), kind,
                                       None if column["unit"] is None else str(column["unit"]), values, texts,
                                       int(column["scale"])))
        return TypedTable(columns, row_ids, str(data["title"]), None if data["page"] is None else int(data["page"]),
                          None if data["sheet"] is None else str(data["sheet"]), [str(h) for h in data["headings"]],
                          int(data["header_rows"]))
    except SpoolError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SpoolError(f"{where}: malformed table ({type(exc).__name__}: {exc})") from exc


def _check_payload(payload: dict[str, Any], header: _Header, pid: str, where: str) -> None:
    if not _POINT_ID.match(pid):
        raise SpoolError(f"{where}: point id {pid!r} is not a UUID")
    unknown = set(payload) - _PAYLOAD_KEYS
    if unknown:
        raise SpoolError(f"{where}: unknown payload fields {sorted(unknown)}")
    if payload.get("doc_id") != header.doc_id or payload.get("version") != header.version:
        raise SpoolError(f"{where}: belongs to another document or version")
    if sorted(payload.get("groups") or []) != sorted(header.groups):
        raise SpoolError(f"{where}: its access groups differ from the entry's")
    if not isinstance(payload.get("text"), str):
        raise SpoolError(f"{where}: has no text")


class Spool:
    """A folder of entries named by job id, so the writer applies them in submission order."""

    def __init__(self, folder: Path) -> None:
        from erag.home import private_dir

        self.folder = private_dir(Path(folder))

    def put(self, entry: SpoolEntry) -> Path:
        final = self.folder / f"{entry.job_id:012d}-{entry.attempt:03d}.spool"
        tmp = final.with_suffix(f".{os.getpid()}.tmp")
        entry.to_file(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob("*.spool"))

    def read(self, path: Path) -> SpoolEntry:
        entry = SpoolEntry.from_file(path)
        if (entry.job_id, entry.attempt) != self.job_of(path):
            raise SpoolError(f"{path.name} holds job {entry.job_id} attempt {entry.attempt}, not the one it is "
                             "named for")
        return entry

    def job_of(self, path: Path) -> tuple[int, int]:
        job, _, attempt = path.stem.partition("-")
        return int(job), int(attempt)

    def clean_partial(self, older_than_s: float = 3600.0) -> int:
        """Remove `.tmp` files that a killed worker left (only old ones: a live worker may be writing)."""
        removed = 0
        for tmp in self.folder.glob("*.tmp"):
            if time.time() - tmp.stat().st_mtime > older_than_s:
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed
