"""A dataset's own cached collections, built by the product's ingestion with embeddings computed once.

Example:
    >>> indexes = DatasetIndexes(settings, EvalDataset(path), cache_root=Path(".erag/eval"))
    >>> built = indexes.build("binary")          # ingests once; later runs find every document unchanged
    >>> Retriever(built.settings, store=built.store, embedder=indexes.embedder)

Layout under the cache root: `<dataset>/<embedder>-<precision>/embeddings.sqlite` (vectors keyed by
text hash) and `<dataset>/<embedder>-<precision>/home/index/eval-<dataset>-<codes>` (one Qdrant Edge
shard per kind of dense codes: `binary` serves every configuration but `dense-int8`, which needs a
collection of int8 codes). With ERAG_QDRANT_URL set the collections live on that server.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from erag.settings import Settings
from erag.sparse_encoder import SparseEncoder
from eval.datasets import EvalDataset
from eval.embedding_cache import EmbeddingCache, model_key
from index.backends import open_store
from index.store import Store
from index.versions import visible
from ingest.pipeline import IngestPipeline

Codes = Literal["binary", "int8"]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass
class BuiltIndex:
    """One ingested collection, open, with what the report needs to know about it."""

    codes: Codes
    settings: Settings
    store: Store
    chunks: int
    documents: int
    disk_bytes: int
    sparse_terms: float
    ingest: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class DatasetIndexes:
    """Build (or reuse) the collections of one dataset for one embedder; `close()` releases them."""

    def __init__(self, settings: Settings, dataset: EvalDataset, cache_root: Path, embedder, progress: bool = True):
        self.settings = settings
        self.dataset = dataset
        self.embedder = embedder  # queries are embedded live, so latency includes the query embedding
        self.root = Path(cache_root) / slug(dataset.name) / slug(model_key(embedder))
        self.cache = EmbeddingCache(embedder, self.root / "embeddings.sqlite")
        self.progress = progress
        self.built: dict[str, BuiltIndex] = {}
        if self.cache.reset and (self.root / "home").exists():
            # The model now embeds differently (a new backend under the same name): everything indexed with
            # the old vectors is stale, and ingestion would call it unchanged, so start over.
            print(f"note: {embedder.name} embeds differently than when {self.root} was built; rebuilding",
                  file=sys.stderr)
            shutil.rmtree(self.root / "home")

    def settings_for(self, codes: Codes) -> Settings:
        collection = f"eval-{slug(self.dataset.name)}-{codes}"
        if self.settings.qdrant_url:  # one namespace on a server: the embedder must be in the name
            collection = f"eval-{slug(self.dataset.name)}-{slug(model_key(self.embedder))}-{codes}"
        return self.settings.model_copy(
            update={"home": self.root / "home", "collection": collection, "dense_quantization": codes}
        )

    def build(self, codes: Codes) -> BuiltIndex:
        if codes in self.built:
            return self.built[codes]
        settings = self.settings_for(codes)
        started = time.perf_counter()
        store = open_store(settings)
        pipeline = IngestPipeline(settings, store=store, embedder=self.cache, progress=self.progress)
        report = pipeline.ingest_documents(self.dataset.documents())
        wanted = {r.path for r in report.results}
        indexed = store.facet("doc_id", None, limit=1_000_000)
        for stale in sorted(set(map(str, indexed)) - wanted):  # documents the dataset no longer has
            pipeline.delete(stale)
        readable = visible()
        encoder = SparseEncoder(settings.bm25_k1, settings.bm25_b, settings.bm25_avg_len)
        chunks, terms = 0, 0
        for hit in store.scroll(readable, fields=["text"]):
            chunks += 1
            terms += len(encoder.run(hit.text)[0])
        built = BuiltIndex(
            codes=codes,
            settings=settings,
            store=store,
            chunks=chunks,
            documents=len(store.facet("doc_id", readable, limit=1_000_000)),
            disk_bytes=store.stats().disk_bytes,
            sparse_terms=terms / max(chunks, 1),
            ingest=report.counts(),
            seconds=time.perf_counter() - started,
        )
        self.built[codes] = built
        return built

    def close(self) -> None:
        for built in self.built.values():
            built.store.close()
        self.built.clear()
        self.cache.close()
