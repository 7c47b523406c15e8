"""What the admin page shows and does to the index: documents, delete, re-ingest targets, statistics, feedback.

Example:
    >>> admin = IndexAdmin(settings, store)
    >>> [(d.file_name, d.chunks, d.groups) for d in admin.documents()][:1]
    [('salaries.csv', 5, ['hr'])]
    >>> admin.delete([doc_id])       # -> chunks removed (and the uploaded file, if it was uploaded)
    >>> feedback_summary(FeedbackStore(db)).share_up
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.feedback import FeedbackStore
from erag.settings import Settings
from index.filters import Filter, Match, doc_filter
from index.store import Store
from index.tables import TableStore
from index.versions import visible
from ingest.metadata import file_sidecar

_DOC_FIELDS = ["doc_id", "file_name", "title", "department", "owner", "groups", "ingested_at", "source", "doc_type"]
# How each search mode uses the index's quantized codes, for the statistics panel.
_MODES = {"float32": "float32 originals", "binary": "1-bit codes only", "binary_rescore": "1-bit codes, rescored "
          "with float32 originals", "binary_f8": "1-bit codes, rescored with the float8 copy"}


@dataclass
class DocumentRow:
    doc_id: str
    file_name: str
    title: str
    department: str
    owner: str
    groups: list[str]
    chunks: int
    ingested_at: str
    source: str
    doc_type: str


@dataclass
class IndexStats:
    documents: int
    chunks: int
    points: int
    disk_bytes: int
    bytes_per_chunk: float | None
    quantization: str
    search_mode: str
    embedder: str
    backend: str


@dataclass
class FeedbackSummary:
    ratings: int
    up: int
    down: int
    comments: int
    share_up: float | None
    recent: list[dict[str, Any]] = field(default_factory=list)


class IndexAdmin:
    """Read and change the index for administrators (no access filter: admins manage every document)."""

    def __init__(self, settings: Settings, store: Store, tables: TableStore | None = None) -> None:
        self.settings = settings
        self.store = store
        self.tables = tables

    def documents(self) -> list[DocumentRow]:
        """Every visible document, newest first, with its chunk count."""
        counts = self.store.facet_all("doc_id", visible())
        rows = []
        for hit in self.store.scroll(Filter(must=[Match("chunk_index", 0)]) & visible(), fields=_DOC_FIELDS):
            p = hit.payload
            groups = p.get("groups") or []
            rows.append(DocumentRow(str(p.get("doc_id", "")), str(p.get("file_name", "")), str(p.get("title", "")),
                                    str(p.get("department") or ""), str(p.get("owner") or ""),
                                    [groups] if isinstance(groups, str) else list(groups),
                                    int(counts.get(p.get("doc_id"), 0)), str(p.get("ingested_at", "")),
                                    str(p.get("source", "")), str(p.get("doc_type", ""))))
        return sorted(rows, key=lambda d: (d.ingested_at, d.file_name), reverse=True)

    def delete(self, doc_ids: list[str]) -> int:
        """Remove documents and their chunks; a file that was uploaded is removed from the upload area too."""
        uploads = self.settings.upload_path.resolve()
        removed = 0
        for doc_id in doc_ids:
            flt = doc_filter(doc_id)
            removed += self.store.count(flt)
            self.store.delete(flt)
            if self.tables is not None:
                self.tables.delete(doc_id)
            path = Path(doc_id)
            if path.is_relative_to(uploads) and path.is_file():
                path.unlink()
                file_sidecar(path).unlink(missing_ok=True)
        return removed

    def reingest_targets(self, doc_ids: list[str]) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
        """(file, metadata) to queue for each document whose source file still exists; problems for the rest.

        The metadata is empty: a re-ingest reads the file's groups where they live (its folder's `_meta.json` or,
        for an upload, its own sidecar), never from what the index held before."""
        by_id = {d.doc_id: d for d in self.documents()}
        targets, problems = [], []
        for doc_id in doc_ids:
            doc = by_id.get(doc_id)
            if doc is None:
                problems.append(f"{doc_id}: not in the index any more")
            elif not doc.source or not Path(doc.source).is_file():
                problems.append(f"{doc.file_name}: its file {doc.source or '(unknown)'} no longer exists; upload it")
            else:
                targets.append((Path(doc.source), {}))
        return targets, problems

    def stats(self) -> IndexStats:
        info = self.store.stats()
        docs = self.store.facet_all("doc_id", visible())
        chunks = sum(docs.values())
        per = info.disk_bytes / info.points if info.disk_bytes and info.points else None
        s = self.settings
        codes = "1-bit binary codes" if s.dense_quantization == "binary" else "int8 scalar codes"
        return IndexStats(len(docs), chunks, info.points, info.disk_bytes, per, f"{codes} in RAM + float8 copy",
                          _MODES.get(s.search_mode, s.search_mode), str(info.extra.get("embedder") or s.embedder),
                          self.store.backend)


def feedback_summary(store: FeedbackStore, recent: int = 10) -> FeedbackSummary:
    """Ratings so far and the latest rated answers (with comments first), for the admin page."""
    rated = store.rated()
    up = sum(1 for fb, _ in rated if fb.rating > 0)
    down = len(rated) - up
    latest = sorted(rated, key=lambda pair: (bool(pair[0].comment), pair[0].updated_at), reverse=True)[:recent]
    rows = [{"rating": "👍" if fb.rating > 0 else "👎", "question": turn.question, "comment": fb.comment,
             "user": fb.username, "when": fb.updated_at} for fb, turn in latest]
    return FeedbackSummary(len(rated), up, down, sum(1 for fb, _ in rated if fb.comment),
                           up / len(rated) if rated else None, rows)
