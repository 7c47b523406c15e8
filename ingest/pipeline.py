"""Files in, searchable chunks out: load, chunk, tag entities, embed, and write to the index incrementally.

Example:
    >>> with IngestPipeline(get_settings()) as pipeline:
    ...     report = pipeline.run([Path("data")])
    >>> report.counts()
    {'added': 9}

Each document is written under a version (hash of its bytes and of the settings that shape its
chunks). New chunks are written invisible (`committed=false`), made visible in one update, and only
then are older versions removed. Search only sees committed chunks, so a killed ingest never exposes
a half-written document, and a re-run finds the leftovers by version and finishes the job.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from erag.models import load_spacy
from erag.schema import Chunk, LoadedDocument, point_id
from erag.settings import Settings
from index import float8
from index.filters import Filter, Match, doc_filter
from index.store import IndexPoint, Store, open_store
from ingest.chunker import DocumentChunker
from ingest.embedder import Embedder
from ingest.entities import EntityTagger
from ingest.loaders import SUPPORTED_SUFFIXES, FileLoader, LoadError
from ingest.loaders.beir_corpus import is_beir_dataset, read_corpus
from ingest.prose_chunker import SemanticChunker
from ingest.sparse_encoder import SparseEncoder
from ingest.table_chunker import TableChunker

META_FILE = "_meta.json"
_UPSERT_BATCH = 64
_FLUSH_CHUNKS = 256  # chunks gathered across files before one embedding pass: big batches embed faster
_CHUNK_GROUP = 64  # documents whose sentence breakpoints are embedded in one batch
_PREFETCH_FILES = 4  # files parsed ahead of the one being embedded

K = TypeVar("K")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FileResult:
    path: str
    status: str  # added | updated | unchanged | repaired | failed | removed | skipped
    chunks: int = 0
    reason: str = ""

    def line(self) -> str:
        detail = f"{self.chunks} chunks" if self.status in ("added", "updated") else self.reason
        return f"{self.status:9} {self.path}" + (f": {detail}" if detail else "")


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("parse", "ner", "embed", "index"), 0.0))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results if r.status in ("added", "updated"))

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]


@dataclass
class _Pending:
    document: LoadedDocument
    version: str
    chunks: list[Chunk]
    result: FileResult


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, LoadError) else f"{type(exc).__name__}: {text}"


def prefetched(items: Iterator[tuple[K, Callable[[], T] | R]], ahead: int) -> Iterator[tuple[K, T | R | Exception]]:
    """`(key, work)` pairs in order, with each callable `work` already run on a background thread.

    Parsing and chunking (Python, holding the GIL) then overlap with NER and embedding on the calling
    thread (ONNX Runtime / PyTorch release the GIL), so on two cores neither waits for the other.
    Non-callable items pass through; a failed work item comes back as its exception.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-parse") as pool:
        queue: deque[tuple[K, Future | R]] = deque()

        def drain_one() -> tuple[K, T | R | Exception]:
            key, job = queue.popleft()
            if not isinstance(job, Future):
                return key, job
            try:
                return key, job.result()
            except Exception as exc:  # reported per item by the caller
                return key, exc

        for key, work in items:
            queue.append((key, pool.submit(work) if callable(work) else work))
            while sum(isinstance(job, Future) for _, job in queue) > ahead:
                yield drain_one()
        while queue:
            yield drain_one()


def iter_files(root: Path) -> Iterator[Path]:
    """Files under `root` in a stable order, skipping hidden files and metadata sidecars."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts) and path.name != META_FILE:
            yield path


def folder_metadata(path: Path, root: Path) -> dict[str, Any]:
    """Fields from `_meta.json` files between `root` and the file's folder; the nearest one wins."""
    meta: dict[str, Any] = {}
    folders = [p for p in [path.parent, *path.parent.parents] if p == root or root in p.parents]
    for folder in reversed(folders):
        sidecar = folder / META_FILE
        if sidecar.is_file():
            try:
                meta.update(json.loads(sidecar.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise LoadError(f"{sidecar}: invalid JSON ({exc})") from exc
    return meta


def version_state(store: Store, doc_id: str, version: str) -> str:
    """What ingesting this version does, as a FileResult status: 'added', 'unchanged', 'updated', or
    'repaired' (the version was committed but a killed run left older ones; they are removed here).

    Also used by the index writer that applies batches prepared by ingestion workers (jobs/writer.py).
    """
    versions = store.facet("version", doc_filter(doc_id))
    if not versions:
        return "added"
    if version in versions:
        committed = store.count(doc_filter(doc_id, version=version, committed=1))
        if committed == versions[version]:
            if len(versions) == 1:
                return "unchanged"
            store.delete(Filter(must=[Match("doc_id", doc_id)], must_not=[Match("version", version)]))
            return "repaired"
    return "updated"


class IngestPipeline:
    """Ingest files or already-loaded documents into the index, touching only what changed."""

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        embedder: Embedder | None = None,
        progress: bool = True,
        on_stage: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        # Told 'parsing', 'tagging', 'embedding', 'indexing' as work starts (ingestion workers show it per file).
        self.on_stage = on_stage or (lambda stage: None)
        self.embedder = embedder or Embedder.from_settings(settings)
        self.store = store or open_store(settings)
        self.store.ensure_collection(self.embedder.dim, self.embedder.name)
        self.progress = progress
        self.loader = FileLoader(settings.max_file_mb)
        self._chunker: DocumentChunker | None = None
        self._tagger: EntityTagger | None = None
        self.sparse = SparseEncoder(settings.bm25_k1, settings.bm25_b, settings.bm25_avg_len)

    # --- lazily built stages: a run where nothing changed loads no model beyond the embedder ---------
    @property
    def chunker(self) -> DocumentChunker:
        if self._chunker is None:
            s = self.settings
            fast = Embedder.from_settings(s, s.breakpoint_embedder) if s.breakpoint_embedder else None
            prose = SemanticChunker(
                self.embedder.tokenizer,
                fast.run if fast else None,
                max_tokens=min(s.chunk_max_tokens, self.embedder.max_tokens),
                min_tokens=s.chunk_min_tokens,
                breakpoint_percentile=s.breakpoint_percentile,
            )
            tables = TableChunker(prose.count_tokens, max_tokens=min(s.table_max_tokens, self.embedder.max_tokens))
            self._chunker = DocumentChunker(prose, tables)
        return self._chunker

    @property
    def tagger(self) -> EntityTagger:
        if self._tagger is None:
            self._tagger = EntityTagger(load_spacy(self.settings.spacy_model, tuple(self.settings.departments)))
        return self._tagger

    def fingerprint(self, metadata: dict[str, Any]) -> str:
        """Settings that change a document's chunks or payload: any change re-ingests it."""
        s = self.settings
        shaping = [
            self.embedder.name, s.chunk_max_tokens, s.chunk_min_tokens, s.breakpoint_percentile,
            s.breakpoint_embedder, s.table_max_tokens, s.bm25_k1, s.bm25_b, s.bm25_avg_len, s.departments,
            sorted(metadata.items()),
        ]
        return json.dumps(shaping, sort_keys=True, default=str)

    # --- public API --------------------------------------------------------------------------------
    def run(
        self,
        paths: Iterable[Path],
        metadata: dict[str, Any] | None = None,
        prune: bool = True,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> IngestReport:
        """Ingest files and folders. With `prune`, documents from a given folder whose file is gone are removed."""
        report = IngestReport()
        pending: list[_Pending] = []

        def record(result: FileResult) -> None:
            report.results.append(result)
            if on_result:
                on_result(result)

        roots = [Path(p) for p in paths]
        jobs: list[tuple[Path, Path]] = []
        for root in roots:
            if not root.exists():
                record(FileResult(str(root), "failed", reason="no such file or folder"))
                continue
            if root.is_dir() and is_beir_dataset(root):
                # An evaluation corpus: its documents are the lines of corpus.jsonl, not the files.
                beir = self.ingest_documents(read_corpus(root / "corpus.jsonl"))
                for result in beir.results:
                    record(result)
                for stage, seconds in beir.timings.items():
                    report.timings[stage] += seconds
                continue
            jobs += [(f, root) for f in iter_files(root)]

        def planned() -> Iterator[tuple[Path, Callable[[], _Pending] | FileResult]]:
            for path, root in jobs:
                if root.is_dir() and path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    yield path, FileResult(str(path), "skipped", reason=f"unsupported type '{path.suffix or '(none)'}'")
                    continue
                try:
                    meta = {**folder_metadata(path, root if root.is_dir() else path.parent), **(metadata or {})}
                    yield path, self._plan_file(path, meta, report)
                except Exception as exc:  # one bad file never stops the batch
                    yield path, FileResult(str(path), "failed", reason=_one_line(exc))

        bar = tqdm(total=len(jobs), desc="ingest", unit="file", disable=not self.progress, leave=False)
        for path, item in prefetched(planned(), _PREFETCH_FILES):
            bar.update(1)
            bar.set_postfix_str(path.name[-40:])
            if isinstance(item, Exception):
                item = FileResult(str(path), "failed", reason=_one_line(item))
            if isinstance(item, FileResult):
                record(item)
                continue
            pending.append(item)
            if sum(len(p.chunks) for p in pending) >= _FLUSH_CHUNKS:
                self._write(pending, report, record)
        bar.close()
        self._write(pending, report, record)
        if prune:
            for root in roots:
                if root.is_dir() and not is_beir_dataset(root):
                    for doc_source in self._missing_sources(root):
                        self.delete(doc_source)
                        record(FileResult(doc_source, "removed", reason="file no longer exists"))
        self._finish(report)
        return report

    def ingest_documents(self, documents: Iterable[LoadedDocument]) -> IngestReport:
        """Ingest documents loaded elsewhere (evaluation corpora, connectors), with the same versioning."""
        report = IngestReport()
        pending: list[_Pending] = []

        def chunk_group(group: list[tuple[LoadedDocument, str, str]]) -> list[_Pending]:
            started = time.perf_counter()
            self.chunker.warm([doc for doc, _, _ in group])
            chunked = [_Pending(doc, version, self.chunker.run(doc), FileResult(doc.doc_id, state))
                       for doc, version, state in group]
            self.chunker.prose.forget()
            report.timings["parse"] += time.perf_counter() - started
            return chunked

        def groups() -> Iterator[tuple[int, Callable[[], list[_Pending]]]]:
            group: list[tuple[LoadedDocument, str, str]] = []
            for document in documents:
                content = json.dumps([document.title, [getattr(b, "text", "") for b in document.blocks]])
                version = self._version(content.encode(), document.metadata)
                state = self._state(document.doc_id, version)
                if state in ("unchanged", "repaired"):
                    report.results.append(FileResult(document.doc_id, state))
                    continue
                group.append((document, version, state))
                if len(group) >= _CHUNK_GROUP:
                    yield len(group), partial(chunk_group, group)
                    group = []
            if group:
                yield len(group), partial(chunk_group, group)

        bar = tqdm(desc="ingest", unit="doc", disable=not self.progress, leave=False)
        for size, chunked in prefetched(groups(), 1):
            bar.update(size)
            if isinstance(chunked, Exception):
                raise chunked
            pending.extend(chunked)
            if sum(len(p.chunks) for p in pending) >= _FLUSH_CHUNKS:
                self._write(pending, report, report.results.append)
        bar.close()
        self._write(pending, report, report.results.append)
        self._finish(report)
        return report

    def delete(self, doc_ref: str) -> int:
        """Remove a document by id, source path or unique file name; returns the chunks removed."""
        doc_id = self.resolve_doc(doc_ref)
        if doc_id is None:
            return 0
        flt = doc_filter(doc_id)
        removed = self.store.count(flt)
        self.store.delete(flt)
        return removed

    def resolve_doc(self, doc_ref: str) -> str | None:
        for key, value in (("doc_id", doc_ref), ("source", str(Path(doc_ref).resolve())), ("file_name", doc_ref)):
            ids = self.store.facet("doc_id", Filter(must=[Match(key, value)]))
            if len(ids) == 1:
                return str(next(iter(ids)))
            if len(ids) > 1:
                raise ValueError(f"'{doc_ref}' matches {len(ids)} documents; give the full path or the doc id")
        return None

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> IngestPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- steps -------------------------------------------------------------------------------------
    def _version(self, content: bytes, metadata: dict[str, Any]) -> str:
        digest = hashlib.sha256(content)
        digest.update(self.fingerprint(metadata).encode())
        return digest.hexdigest()[:24]

    def _state(self, doc_id: str, version: str) -> str:
        return version_state(self.store, doc_id, version)

    def _plan_file(
        self, path: Path, meta: dict[str, Any], report: IngestReport
    ) -> Callable[[], _Pending] | FileResult:
        """What to do with a file: a result when nothing is to be done, else the parse-and-chunk work.

        The index is only read here, on the calling thread; the returned work touches no index, so it
        may run on the prefetch thread.
        """
        size = path.stat().st_size
        if size > self.loader.max_bytes:  # checked before hashing: never read a huge file whole
            self.loader.run(path)  # raises the size error with its message
        doc_id = str(path.resolve())
        version = self._version(path.read_bytes(), meta)
        state = self._state(doc_id, version)
        if state in ("unchanged", "repaired"):
            return FileResult(str(path), state)

        def parse() -> _Pending:
            self.on_stage("parsing")
            started = time.perf_counter()
            document = self.loader.run(path, doc_id)
            document.metadata.update(meta)
            self.chunker.warm([document])
            chunks = self.chunker.run(document)
            self.chunker.prose.forget()
            report.timings["parse"] += time.perf_counter() - started
            if not chunks:
                raise LoadError("no text to index")
            return _Pending(document, version, chunks, FileResult(str(path), state, len(chunks)))

        return parse

    def _write(self, pending: list[_Pending], report: IngestReport, record: Callable[[FileResult], None]) -> None:
        if not pending:
            return
        texts = [c.text for p in pending for c in p.chunks]
        self.on_stage("tagging")
        started = time.perf_counter()
        entities = self.tagger.run(texts)
        report.timings["ner"] += time.perf_counter() - started
        self.on_stage("embedding")
        started = time.perf_counter()
        vectors = self.embedder.run(texts, show_progress=False)
        report.timings["embed"] += time.perf_counter() - started
        self.on_stage("indexing")

        started = time.perf_counter()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        offset = 0
        for item in pending:
            doc, n = item.document, len(item.chunks)
            points = []
            for chunk, ents, vec in zip(item.chunks, entities[offset : offset + n], vectors[offset : offset + n],
                                        strict=True):
                indices, values = self.sparse.run(chunk.text)
                payload = self._payload(doc, item.version, chunk, n, ents, now)
                payload["f8"] = float8.encode(vec)
                pid = point_id(doc.doc_id, item.version, chunk.index)
                points.append(IndexPoint(pid, vec, indices, values, payload))
            offset += n
            # Leftovers of a killed run of this very version are overwritten by id; other uncommitted ones go.
            self.store.delete(
                Filter(must=[Match("doc_id", doc.doc_id), Match("committed", 0)],
                       must_not=[Match("version", item.version)])
            )
            for start in range(0, len(points), _UPSERT_BATCH):
                self.store.upsert(points[start : start + _UPSERT_BATCH])
            self.store.set_payload({"committed": 1}, doc_filter(doc.doc_id, version=item.version))
            self.store.delete(Filter(must=[Match("doc_id", doc.doc_id)], must_not=[Match("version", item.version)]))
            item.result.chunks = n
            record(item.result)
        report.timings["index"] += time.perf_counter() - started
        pending.clear()

    @staticmethod
    def _payload(
        doc: LoadedDocument, version: str, chunk: Chunk, n_chunks: int, entities: dict[str, list], now: str
    ) -> dict[str, Any]:
        meta = doc.metadata
        groups = meta.get("groups") or ["all"]
        payload: dict[str, Any] = {
            "text": chunk.text,
            "doc_id": doc.doc_id,
            "version": version,
            "committed": 0,
            "source": doc.source,
            "file_name": meta.get("file_name", ""),
            "title": doc.title,
            "doc_type": doc.doc_type,
            "kind": chunk.kind,
            "chunk_index": chunk.index,
            "n_chunks": n_chunks,
            "page": chunk.page,
            "sheet": chunk.sheet,
            "row_start": chunk.row_start,
            "row_end": chunk.row_end,
            "headings": chunk.headings or None,
            "table": chunk.table,
            "department": meta.get("department"),
            "owner": meta.get("owner"),
            "groups": [groups] if isinstance(groups, str) else list(groups),
            "content_hash": chunk.content_hash,
            "ingested_at": now,
            **entities,
        }
        return {k: v for k, v in payload.items() if v is not None}

    def _missing_sources(self, root: Path) -> list[str]:
        prefix = str(root.resolve())
        sources = self.store.facet("source", Filter(must=[Match("chunk_index", 0)]), limit=100_000)
        return sorted(
            s for s in sources if isinstance(s, str) and s.startswith(prefix + "/") and not Path(s).exists()
        )

    def _finish(self, report: IngestReport) -> None:
        if any(r.status in ("added", "updated", "removed", "repaired") for r in report.results):
            started = time.perf_counter()
            self.store.optimize()
            report.timings["index"] += time.perf_counter() - started
