"""Prepared index writes, handed from ingestion workers to the one process that holds the embedded index.

Example:
    >>> recorder = RecordingStore()
    >>> IngestPipeline(settings, store=recorder).run([path])        # parses, tags, embeds; writes nothing
    >>> spool = Spool(settings.home / "spool")
    >>> spool.put(SpoolEntry(job_id=7, attempt=1, doc_id=..., version=..., chunks=12, dim=384, embedder=...,
    ...                      ops=recorder.take()))
    >>> for path, entry in spool.entries(): ...                     # the index writer replays them in job order

A Qdrant Edge shard admits one process, so workers cannot write to it while the app serves chat. A
worker runs the ingestion pipeline against a `RecordingStore`, which keeps the pipeline's writes (delete
leftovers, upsert uncommitted chunks, commit, drop old versions) as a list of operations; the index writer
replays that list on the real index, so the commit protocol and its crash safety are the pipeline's own.
An entry becomes visible only by an atomic rename after fsync: a worker killed while writing one leaves a
`.tmp` file that is never read (and is removed by `clean_partial`).
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erag.schema import Hit
from index.filters import Filter
from index.store import HybridQuery, IndexPoint, Store, StoreError, StoreStats

Operation = tuple[str, tuple[Any, ...]]  # ("upsert" | "set_payload" | "delete", arguments)


class RecordingStore(Store):
    """A write-only store: records ingestion's writes for replay; reads see an empty index.

    Reads come back empty, so the pipeline plans every file as new; the writer decides on the real index
    whether a replay is needed at all (`ingest.pipeline.version_state`).
    """

    backend = "recording"

    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self.dim = 0
        self.embedder = ""

    def ensure_collection(self, dim: int, embedder: str = "") -> None:
        self.dim, self.embedder = dim, embedder

    def upsert(self, points: list[IndexPoint]) -> None:
        if points:
            self.ops.append(("upsert", (list(points),)))

    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        self.ops.append(("set_payload", (dict(payload), flt)))

    def delete(self, flt: Filter) -> None:
        self.ops.append(("delete", (flt,)))

    def query(self, request: HybridQuery) -> list[Hit]:
        raise StoreError("a recording store cannot be searched")

    def scroll(self, flt: Filter | None = None, fields: list[str] | None = None, batch: int = 256) -> Iterator[Hit]:
        return iter(())

    def count(self, flt: Filter | None = None) -> int:
        return 0

    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        return {}

    def stats(self) -> StoreStats:
        return StoreStats(points=0)

    def take(self) -> list[Operation]:
        """The operations recorded since the last call."""
        ops, self.ops = self.ops, []
        return ops


@dataclass
class SpoolEntry:
    """One job's prepared writes: which attempt made them, for which document version, and the operations."""

    job_id: int
    attempt: int
    doc_id: str
    version: str
    chunks: int
    dim: int
    embedder: str
    ops: list[Operation] = field(default_factory=list)

    def replay(self, store: Store) -> None:
        for name, args in self.ops:
            if name not in ("upsert", "set_payload", "delete"):
                raise ValueError(f"unknown spooled operation '{name}'")
            getattr(store, name)(*args)


def version_of(ops: list[Operation]) -> tuple[str, str]:
    """The document id and version the upserted chunks carry (all chunks of one job share them)."""
    for name, args in ops:
        if name == "upsert":
            payload = args[0][0].payload
            return str(payload["doc_id"]), str(payload["version"])
    raise ValueError("the spooled job upserts no chunk")


class Spool:
    """A folder of entries named by job id, so the writer applies them in submission order.

    Entries are pickles: the spool is private to one deployment and written by its own workers with
    the same code version, and pickle keeps the numpy vectors without a conversion step.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, entry: SpoolEntry) -> Path:
        final = self.folder / f"{entry.job_id:012d}-{entry.attempt:03d}.spool"
        tmp = final.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(entry, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob("*.spool"))

    def read(self, path: Path) -> SpoolEntry:
        with path.open("rb") as fh:
            entry = pickle.load(fh)  # written by this deployment's own workers: see the class docstring
        if not isinstance(entry, SpoolEntry):
            raise ValueError(f"{path.name} is not a spool entry")
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
