"""Files in, searchable chunks out: load, chunk, tag entities, embed, and write to the index incrementally.

Example:
    >>> with IngestPipeline(get_settings()) as pipeline:
    ...     report = pipeline.run([Path("data")])
    >>> report.counts()
    {'added': 9}

Each document is written under a version (hash of its bytes and of the settings and metadata that shape its
chunks); an unchanged version is skipped. A new version replaces the old one in a single index update
(`index.versions.write_version`), so a reader never sees both, and a killed ingest never exposes half a
document. Metadata, access groups included, comes from the file's place (`ingest.metadata`), whichever
folder or file the ingest was started on. One bad file, at any stage (parse, chunk, NER, embed, write), is
that file's one-line failure; the rest of the batch is indexed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tqdm import tqdm

from erag.access import require_groups
from erag.embedder import Embedder
from erag.models import load_spacy
from erag.schema import Chunk, LoadedDocument, TableBlock, point_id
from erag.settings import Settings
from erag.sparse_encoder import SparseEncoder
from erag.table_types import TableTyper, TypedTable
from erag.textsafe import printable
from index import float8
from index.backends import open_store
from index.filters import Filter, Match, doc_filter
from index.store import IndexPoint, Store
from index.tables import TableStore, open_table_store
from index.versions import VersionState, version_state, write_version
from ingest.chunker import DocumentChunker
from ingest.entities import EntityTagger
from ingest.loaders import SUPPORTED_SUFFIXES, FileLoader, LoadError
from ingest.loaders.beir_corpus import is_beir_dataset, read_corpus
from ingest.metadata import META_FILE, MetadataError, MetadataResolver
from ingest.prose_chunker import SemanticChunker
from ingest.table_chunker import TableChunker
from ingest.table_summary import summary_chunks

log = logging.getLogger(__name__)

# Raised whenever the code changes what chunks or tables a file becomes, so every document is ingested again
# (2: table summary chunks, captions with heading and page, typed tables beside the index; 3: "$(1,011)" read as a
# negative, a caption's row of years read as a header row, a lone section caption left out of typing; 4: a rate
# row among money rows left without values instead of turning its columns to text; 5: the int8 embedder copy's
# 7-bit weights, since the 8-bit copy gave meaningless vectors on CPUs without VNNI, erag/int8_build.py).
CHUNK_FORMAT = 5
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
    stage: str = ""  # where a failure happened: parse, tagging, embedding or indexing

    def line(self) -> str:
        """One line for a terminal or a log: control characters in a file name or reason are escaped."""
        detail = f"{self.chunks} chunks" if self.status in ("added", "updated") else self.reason
        return printable(f"{self.status:9} {self.path}" + (f": {detail}" if detail else ""))


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

    def summary(self) -> str:
        """'done: 7 added, 1 failed; 42 chunks (parse ...)', the last line `erag ingest` prints."""
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items())) or "nothing to do"
        t = self.timings
        return (f"done: {counts}; {self.chunks} chunks (parse {t['parse']:.1f}s, ner {t['ner']:.1f}s, "
                f"embed {t['embed']:.1f}s, index {t['index']:.1f}s)")


@dataclass
class DocumentVersion:
    """Every chunk of one version of one document, embedded and ready to write (`index.versions.write_version`),
    and its tables typed for SQL (`index.tables`), with what the table store records beside them."""

    doc_id: str
    version: str
    points: list[IndexPoint]
    tables: list[TypedTable] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    file_name: str = ""
    title: str = ""


class Sink(Protocol):
    """Where prepared document versions go: straight into the index, or (ingestion workers beside an embedded
    index) into the spool that the process holding the index applies (jobs/spool.py)."""

    def open(self, dim: int, embedder: str) -> None: ...

    def state(self, doc_id: str, version: str) -> VersionState: ...

    def write(self, version: DocumentVersion) -> None: ...


class IndexSink:
    """Write versions into `store` with the version-switch protocol, and their tables into `tables`; reads decide
    what is unchanged.

    Tables are written first, each document's in one transaction: killed between the two writes, the table store
    holds a version the index does not show yet, the chat uses no table whose version differs from the chunk it
    retrieved, and the next ingest writes both again (`state` says "updated" while the two disagree).
    """

    def __init__(self, store: Store, tables: TableStore | None = None) -> None:
        self.store = store
        self.tables = tables
        self._table_versions: dict[str, set[str]] | None = None

    def open(self, dim: int, embedder: str) -> None:
        self.store.ensure_collection(dim, embedder)

    def _held_tables(self) -> dict[str, set[str]]:
        if self._table_versions is None:
            self._table_versions = self.tables.document_versions() if self.tables is not None else {}
        return self._table_versions

    def state(self, doc_id: str, version: str) -> VersionState:
        state = version_state(self.store, doc_id, version)
        held = self._held_tables().get(doc_id)
        if state in ("unchanged", "repaired") and held and held != {version}:
            return "updated"
        return state

    def write(self, version: DocumentVersion) -> None:
        held = self._held_tables()
        if self.tables is not None and (version.tables or version.doc_id in held):
            self.tables.replace(version.doc_id, version.version, version.groups, version.tables,
                                version.file_name, version.title)
            if version.tables:
                held[version.doc_id] = {version.version}
            else:
                held.pop(version.doc_id, None)
        write_version(self.store, version.doc_id, version.version, version.points, batch=_UPSERT_BATCH)

    def delete(self, doc_id: str) -> None:
        """Remove the document's tables (the caller removes its chunks)."""
        if self.tables is not None and doc_id in self._held_tables():
            self.tables.delete(doc_id)
            self._held_tables().pop(doc_id, None)


@dataclass
class _Pending:
    document: LoadedDocument
    version: str
    chunks: list[Chunk]
    result: FileResult
    tables: list[TypedTable] = field(default_factory=list)


def _one_line(exc: BaseException, stage: str = "") -> str:
    """A failure as one line: a LoadError's message is already written for the user; anything else is an
    unexpected error, named with its type and the stage it broke."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, LoadError):
        return text
    return f"{stage + ' failed: ' if stage else ''}{type(exc).__name__}: {text}"


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
    """Files under `root` in a stable order, skipping hidden files and metadata sidecars.

    Symbolic links to folders are not descended into (pathlib's `**` does not follow them); a link to a file is
    listed and later ingested as its target (`ingest.metadata`).
    """
    if not root.is_dir():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts) and path.name != META_FILE:
            yield path


class IngestPipeline:
    """Ingest files or already-loaded documents into the index, touching only what changed.

    `store` (default: the configured index) receives the chunks and `tables` (default: the configured table
    store) the typed tables; a `sink` instead receives each prepared document version (ingestion workers spool
    them for the process that holds the embedded index).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        embedder: Embedder | None = None,
        progress: bool = True,
        on_stage: Callable[[str], None] | None = None,
        sink: Sink | None = None,
        tables: TableStore | None = None,
    ) -> None:
        if sink is not None and tables is not None:
            raise ValueError("give either a sink or a table store: a sink writes tables itself")
        self.settings = settings
        # Told 'parsing', 'tagging', 'embedding', 'indexing' as work starts (ingestion workers show it per file).
        self.on_stage = on_stage or (lambda stage: None)
        self._given = (embedder, store, tables, sink)
        self._opened: tuple[Embedder, Store | None, TableStore | None, Sink] | None = None
        self.typer = TableTyper.from_settings(settings)
        self.progress = progress
        self.loader = FileLoader.from_settings(settings)
        self._chunker: DocumentChunker | None = None
        self._tagger: EntityTagger | None = None
        self._stage = "tagging"  # the stage a failure of `_analyse` is reported under
        self.sparse = SparseEncoder(settings.bm25_k1, settings.bm25_b, settings.bm25_avg_len)

    def warm_up(self) -> IngestPipeline:
        """Load the embedder and open the index and table store (creating the collection on first use), once.

        Every method that reads or writes calls this, so constructing a pipeline never touches disk or models.
        """
        if self._opened is None:
            embedder, store, tables, sink = self._given
            embedder = embedder or Embedder.from_settings(self.settings)
            if sink is None:
                store = store or open_store(self.settings)
                tables = tables if tables is not None else open_table_store(self.settings)
                sink = IndexSink(store, tables)
            sink.open(embedder.dim, embedder.name)
            self._opened = (embedder, store, tables, sink)
        return self

    @property
    def embedder(self) -> Embedder:
        return self.warm_up()._opened[0]  # type: ignore[index]

    @property
    def store(self) -> Store | None:
        """The index written to, or None when a sink receives the documents instead."""
        return self.warm_up()._opened[1]  # type: ignore[index]

    @property
    def tables(self) -> TableStore | None:
        return self.warm_up()._opened[2]  # type: ignore[index]

    @property
    def sink(self) -> Sink:
        return self.warm_up()._opened[3]  # type: ignore[index]

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
            CHUNK_FORMAT, self.embedder.name, s.chunk_max_tokens, s.chunk_min_tokens, s.breakpoint_percentile,
            s.breakpoint_embedder, s.table_max_tokens, s.bm25_k1, s.bm25_b, s.bm25_avg_len, s.departments,
            sorted(metadata.items()), *([] if s.table_summaries else ["no table summaries"]),
        ]
        return json.dumps(shaping, sort_keys=True, default=str)

    # --- public API --------------------------------------------------------------------------------
    def run(
        self,
        paths: Iterable[Path],
        prune: bool = True,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> IngestReport:
        """Ingest files and folders. With `prune`, documents from a given folder whose file is gone are removed.

        Metadata and access groups come from each file's place (`ingest.metadata`), never from the caller.
        """
        report = IngestReport()
        pending: list[_Pending] = []
        resolver = MetadataResolver(self.settings.default_groups, self.settings.doc_roots)
        reported_sidecars: set[Path] = set()

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
                try:
                    corpus_meta = resolver.run(root / "corpus.jsonl")
                except MetadataError as exc:
                    record(FileResult(str(exc.sidecar), "failed", reason=str(exc)))
                    continue
                beir = self.ingest_documents(read_corpus(root / "corpus.jsonl"), corpus_meta, on_result=record)
                for stage, seconds in beir.timings.items():
                    report.timings[stage] += seconds
                continue
            jobs += [(f, root) for f in iter_files(root)]

        def planned() -> Iterator[tuple[Path, Callable[[], _Pending] | FileResult | None]]:
            seen: set[Path] = set()
            for path, root in jobs:
                if root.is_dir() and path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    yield path, FileResult(str(path), "skipped", reason=f"unsupported type '{path.suffix or '(none)'}'")
                    continue
                try:
                    real = path.resolve(strict=True)
                    if real in seen:  # a link to a file of the same batch: one document, ingested once
                        yield path, FileResult(str(path), "skipped", reason=f"same file as {real}")
                        continue
                    seen.add(real)
                    yield path, self._plan_file(path, real, resolver.run(real), report)
                except MetadataError as exc:
                    # One line per broken sidecar, not one per file below it.
                    first = exc.sidecar not in reported_sidecars
                    reported_sidecars.add(exc.sidecar)
                    yield path, FileResult(str(exc.sidecar), "failed", reason=str(exc)) if first else None
                except Exception as exc:  # one bad file never stops the batch
                    yield path, FileResult(str(path), "failed", reason=_one_line(exc))

        bar = tqdm(total=len(jobs), desc="ingest", unit="file", disable=not self.progress, leave=False)
        for path, item in prefetched(planned(), _PREFETCH_FILES):
            bar.update(1)
            bar.set_postfix_str(printable(path.name[-40:]))
            if isinstance(item, Exception):
                item = FileResult(str(path), "failed", reason=_one_line(item, "parse"), stage="parse")
            if item is None:
                continue
            if isinstance(item, FileResult):
                record(item)
                continue
            pending.append(item)
            if sum(len(p.chunks) for p in pending) >= _FLUSH_CHUNKS:
                self._write(pending, report, record)
        bar.close()
        self._write(pending, report, record)
        if prune and self.store is not None:
            for root in roots:
                if root.is_dir() and not is_beir_dataset(root):
                    for doc_source in self._missing_sources(root):
                        self.delete(doc_source)
                        record(FileResult(doc_source, "removed", reason="file no longer exists"))
        self._finish(report)
        return report

    def ingest_documents(
        self,
        documents: Iterable[LoadedDocument],
        metadata: dict[str, Any] | None = None,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> IngestReport:
        """Ingest documents loaded elsewhere (evaluation corpora, connectors), with the same versioning.

        Each document's own metadata wins over `metadata`; groups missing from both are the configured default
        groups, and invalid groups fail that document.
        """
        report = IngestReport()
        pending: list[_Pending] = []
        base = {"groups": list(self.settings.default_groups), **(metadata or {})}

        def record(result: FileResult) -> None:
            report.results.append(result)
            if on_result:
                on_result(result)

        def chunk_group(group: list[tuple[LoadedDocument, str, str]]) -> list[_Pending | FileResult]:
            started = time.perf_counter()
            self.chunker.warm([doc for doc, _, _ in group])
            chunked: list[_Pending | FileResult] = []
            for doc, version, state in group:
                try:
                    chunks, tables = self._chunks_and_tables(doc)
                    chunked.append(_Pending(doc, version, chunks, FileResult(doc.doc_id, state), tables))
                except Exception as exc:  # one document that cannot be chunked never stops the corpus
                    chunked.append(FileResult(doc.doc_id, "failed", reason=_one_line(exc, "chunking")))
            self.chunker.prose.forget()
            report.timings["parse"] += time.perf_counter() - started
            return chunked

        def groups() -> Iterator[tuple[int, Callable[[], list[_Pending | FileResult]]]]:
            group: list[tuple[LoadedDocument, str, str]] = []
            for document in documents:
                try:
                    document.metadata = {**base, **document.metadata}
                    document.metadata["groups"] = list(require_groups(document.metadata["groups"],  # type: ignore[arg-type]
                                                                      where=f"document {document.doc_id}"))
                    content = json.dumps([document.title, [getattr(b, "text", "") for b in document.blocks]])
                    version = self._version(content.encode(), document.metadata)
                    state = self.sink.state(document.doc_id, version)
                except Exception as exc:
                    record(FileResult(document.doc_id, "failed", reason=_one_line(exc)))
                    continue
                if state in ("unchanged", "repaired"):
                    record(FileResult(document.doc_id, state))
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
                raise chunked  # the corpus itself cannot be read (a malformed line): nothing sensible to go on with
            for item in chunked:
                if isinstance(item, FileResult):
                    record(item)
                else:
                    pending.append(item)
            if sum(len(p.chunks) for p in pending) >= _FLUSH_CHUNKS:
                self._write(pending, report, record)
        bar.close()
        self._write(pending, report, record)
        self._finish(report)
        return report

    def delete(self, doc_ref: str) -> int:
        """Remove a document by id, source path or unique file name; returns the chunks removed."""
        doc_id = self.resolve_doc(doc_ref)
        if doc_id is None:
            return 0
        flt = doc_filter(doc_id)
        removed = self._store.count(flt)
        self._store.delete(flt)
        if isinstance(self.sink, IndexSink):
            self.sink.delete(doc_id)
        return removed

    def resolve_doc(self, doc_ref: str) -> str | None:
        for key, value in (("doc_id", doc_ref), ("source", str(Path(doc_ref).resolve())), ("file_name", doc_ref)):
            ids = self._store.facet("doc_id", Filter(must=[Match(key, value)]))
            if len(ids) == 1:
                return str(next(iter(ids)))
            if len(ids) > 1:
                raise ValueError(f"'{doc_ref}' matches {len(ids)} documents; give the full path or the doc id")
        return None

    def close(self) -> None:
        if self._opened is None:
            _, store, tables, _ = self._given  # never warmed up: close only what the caller handed over
        else:
            _, store, tables, _ = self._opened
        if store is not None:
            store.close()
        if tables is not None:
            tables.close()

    def __enter__(self) -> IngestPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- steps -------------------------------------------------------------------------------------
    @property
    def _store(self) -> Store:
        if self.store is None:
            raise RuntimeError("this pipeline writes to a sink and has no index to read")
        return self.store

    def _version(self, content: bytes, metadata: dict[str, Any]) -> str:
        digest = hashlib.sha256(content)
        digest.update(self.fingerprint(metadata).encode())
        return digest.hexdigest()[:24]

    def _typed_tables(self, document: LoadedDocument) -> list[TypedTable]:
        """The document's tables typed for SQL; one the typer cannot read is left out of SQL (its text is still
        indexed), never a reason to fail the file."""
        typed = []
        for position, block in enumerate(b for b in document.blocks if isinstance(b, TableBlock)):
            try:
                typed.append(self.typer.run(block))
            except Exception as exc:
                log.warning("table %d of %s is not stored for SQL: %s", position + 1, document.doc_id,
                            _one_line(exc))
        return typed

    def _chunks_and_tables(self, document: LoadedDocument) -> tuple[list[Chunk], list[TypedTable]]:
        """The document's chunks, one summary chunk per typed table after them (`ingest.table_summary`), and the
        typed tables for the table store."""
        chunks = self._chunks(document)
        tables = self._typed_tables(document)
        if not self.settings.table_summaries:
            return chunks, tables
        limit = self.chunker.max_chars
        return chunks + summary_chunks(document, tables, len(chunks), lambda text: text[:limit]), tables

    def _chunks(self, document: LoadedDocument) -> list[Chunk]:
        chunks = self.chunker.run(document)
        if not chunks:
            raise LoadError("no text to index")
        return chunks

    def _plan_file(
        self, path: Path, real: Path, meta: dict[str, Any], report: IngestReport
    ) -> Callable[[], _Pending] | FileResult:
        """What to do with a file: a result when nothing is to be done, else the parse-and-chunk work.

        `real` is the file itself (links resolved): its path is the document id. The index is only read here,
        on the calling thread; the returned work touches no index, so it may run on the prefetch thread.
        """
        size = real.stat().st_size
        if size > self.loader.max_bytes:  # checked before hashing: never read a huge file whole
            self.loader.run(real)  # raises the size error with its message
        doc_id = str(real)
        loader = self.loader.output_version(real)
        version = self._version(real.read_bytes(), {**meta, "loader": loader} if loader > 1 else meta)
        state = self.sink.state(doc_id, version)
        if state in ("unchanged", "repaired"):
            return FileResult(str(path), state)

        def parse() -> _Pending:
            self.on_stage("parsing")
            started = time.perf_counter()
            document = self.loader.run(real, doc_id)
            document.metadata.update(meta)
            self.chunker.warm([document])
            try:
                chunks, tables = self._chunks_and_tables(document)
            finally:
                self.chunker.prose.forget()
                report.timings["parse"] += time.perf_counter() - started
            return _Pending(document, version, chunks, FileResult(str(path), state, len(chunks)), tables)

        return parse

    def _write(self, pending: list[_Pending], report: IngestReport, record: Callable[[FileResult], None]) -> None:
        """Tag, embed and write the pending documents; a failure is pinned on the one document that caused it."""
        if not pending:
            return
        items = list(pending)
        pending.clear()
        try:
            entities, vectors = self._analyse(items, report)
        except Exception as exc:
            if len(items) > 1:
                # Which document broke the batch? Each alone finds out; the others are still written.
                for item in items:
                    self._write([item], report, record)
                return
            items[0].result.status, items[0].result.reason = "failed", _one_line(exc, self._stage)
            items[0].result.stage = self._stage
            record(items[0].result)
            return
        self.on_stage("indexing")
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        offset = 0
        for item in items:
            doc, n = item.document, len(item.chunks)
            try:
                points = []
                for chunk, ents, vec in zip(item.chunks, entities[offset : offset + n],
                                            vectors[offset : offset + n], strict=True):
                    indices, values = self.sparse.run(chunk.text)
                    payload = self._payload(doc, item.version, chunk, n, ents, now)
                    payload["f8"] = float8.encode(vec)
                    points.append(IndexPoint(point_id(doc.doc_id, item.version, chunk.index), vec, indices, values,
                                             payload))
                self.sink.write(DocumentVersion(doc.doc_id, item.version, points, item.tables,
                                                list(doc.metadata["groups"]), str(doc.metadata.get("file_name", "")),
                                                doc.title))
                item.result.chunks = n
            except Exception as exc:  # e.g. a payload the engine refuses: this document fails, the batch goes on
                item.result.status, item.result.reason = "failed", _one_line(exc, "indexing")
                item.result.stage = "indexing"
            offset += n
            record(item.result)
        report.timings["index"] += time.perf_counter() - started

    def _analyse(self, items: list[_Pending], report: IngestReport) -> tuple[list[dict[str, list]], Any]:
        """Entities and vectors of every chunk of `items`, in order (the NER and embedding stages)."""
        texts = [c.text for p in items for c in p.chunks]
        self._stage = "tagging"
        self.on_stage("tagging")
        started = time.perf_counter()
        entities = self.tagger.run(texts)
        report.timings["ner"] += time.perf_counter() - started
        self._stage = "embedding"
        self.on_stage("embedding")
        started = time.perf_counter()
        vectors = self.embedder.run(texts, show_progress=False)
        report.timings["embed"] += time.perf_counter() - started
        return entities, vectors

    @staticmethod
    def _payload(
        doc: LoadedDocument, version: str, chunk: Chunk, n_chunks: int, entities: dict[str, list], now: str
    ) -> dict[str, Any]:
        meta = doc.metadata
        # Checked again where the chunk is made: whatever path the metadata took, no chunk is stored readable by
        # 'everyone' because its groups were missing or blank.
        groups = require_groups(meta.get("groups"), where=f"groups of {doc.doc_id}")
        payload: dict[str, Any] = {
            "text": chunk.text,
            "doc_id": doc.doc_id,
            "version": version,
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
            "groups": list(groups),  # type: ignore[arg-type]
            "content_hash": chunk.content_hash,
            "ingested_at": now,
            **entities,
        }
        return {k: v for k, v in payload.items() if v is not None}

    def _missing_sources(self, root: Path) -> list[str]:
        prefix = str(root.resolve())
        sources = self._store.facet_all("source", Filter(must=[Match("chunk_index", 0)]))
        return sorted(
            s for s in sources if isinstance(s, str) and s.startswith(prefix + "/") and not Path(s).exists()
        )

    def _finish(self, report: IngestReport) -> None:
        if self.store is not None and any(r.status in ("added", "updated", "removed", "repaired")
                                          for r in report.results):
            started = time.perf_counter()
            self.store.optimize()
            report.timings["index"] += time.perf_counter() - started
