"""The peer baseline: the hybrid retrieval stack most RAG projects ship, built with the real libraries.

Example:
    >>> peer = PeerBaseline.build(dataset.passages(), settings, cache_dir=Path(".erag/eval/scifact/peer"), k=30)
    >>> peer.run("0-dimensional biomaterials show inductive properties.")[:3]     # document ids, best first

LangChain `EnsembleRetriever` (weighted RRF, weights 0.5/0.5) over a FAISS flat float32 index
(`langchain_community.vectorstores.FAISS`, faiss-cpu) and `BM25Retriever` (rank_bm25), documents split with
`RecursiveCharacterTextSplitter(chunk_size=1500, chunk_overlap=100)` and embedded by all-MiniLM-L6-v2 through
LangChain's `HuggingFaceEmbeddings` (sentence-transformers, float32), loaded offline from the packaged weights.
Library defaults are kept (whitespace BM25 tokens, L2 distance) because that is what such projects run.
The only addition is that document vectors come from the evaluation's embedding cache, so re-runs do
not embed the corpus again; queries are embedded live, as the peer would.
"""

from __future__ import annotations

import pickle
import tempfile
import tracemalloc
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from erag.models import resolve_model_path
from erag.settings import Settings
from eval.embedding_cache import EmbeddingCache

PEER_MODEL = "all-MiniLM-L6-v2"
CHUNK_SIZE = 1500
CHUNK_OVERLAP = 100
WEIGHTS = (0.5, 0.5)


class _LangChainEncoder:
    """The peer's LangChain embeddings with the `.run/.name/.dim` shape the embedding cache wraps."""

    def __init__(self, embeddings: Embeddings, name: str) -> None:
        self.embeddings = embeddings
        self.name = name
        self.dim = len(embeddings.embed_query("dimension probe"))

    def run(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return np.asarray(self.embeddings.embed_documents(list(texts)), dtype=np.float32)


class _CachedDocuments(Embeddings):
    """LangChain embeddings whose document vectors come from the cache and whose queries are embedded live."""

    def __init__(self, live: Embeddings, cache: EmbeddingCache) -> None:
        self.live = live
        self.cache = cache

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.cache.run(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.live.embed_query(text)


@dataclass
class PeerFootprint:
    chunks: int
    ram_bytes: int
    disk_bytes: int
    dim: int


class PeerBaseline:
    """`run(query)` returns document ids ranked by LangChain's EnsembleRetriever."""

    def __init__(self, ensemble, footprint: PeerFootprint, cache: EmbeddingCache) -> None:
        self.ensemble = ensemble
        self.footprint = footprint
        self.cache = cache

    @classmethod
    def build(cls, passages: list[tuple[str, str]], settings: Settings, cache_dir: Path, k: int = 30) -> PeerBaseline:
        """Split, embed (cached) and index `(doc_id, text)` passages; `k` chunks per retriever per query."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        import torch
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        with warnings.catch_warnings():  # langchain-community is being sunset upstream, yet it is what peers run
            warnings.simplefilter("ignore")
            from langchain_community.embeddings import HuggingFaceEmbeddings
            from langchain_community.retrievers import BM25Retriever
            from langchain_community.vectorstores import FAISS

            torch.set_num_threads(settings.torch_threads)
            live = HuggingFaceEmbeddings(
                model_name=resolve_model_path(PEER_MODEL, settings.model_cache), model_kwargs={"device": "cpu"}
            )
        cache = EmbeddingCache(_LangChainEncoder(live, f"langchain-hf/{PEER_MODEL}"), cache_dir / "embeddings.sqlite")
        # One-time allocations (lazy imports, model warm-up) must not count as index memory: build a throwaway
        # pair first. Then trace from the split on: chunk texts, docstore and BM25 index stay in Python memory.
        warm = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE).create_documents(["warm up"])
        FAISS.from_documents(warm, _CachedDocuments(live, cache))
        BM25Retriever.from_documents(warm, k=k)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
        docs = splitter.create_documents([t for _, t in passages], metadatas=[{"doc_id": d} for d, _ in passages])
        vectors = FAISS.from_documents(docs, _CachedDocuments(live, cache))
        bm25 = BM25Retriever.from_documents(docs, k=k)
        python_bytes = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        ensemble = EnsembleRetriever(
            retrievers=[bm25, vectors.as_retriever(search_kwargs={"k": k})], weights=list(WEIGHTS)
        )
        index = vectors.index
        with tempfile.TemporaryDirectory() as folder:
            vectors.save_local(folder)
            disk = sum(f.stat().st_size for f in Path(folder).iterdir())
        disk += len(pickle.dumps(bm25.vectorizer)) + len(pickle.dumps(bm25.docs))
        footprint = PeerFootprint(
            chunks=len(docs),
            # FAISS keeps its float32 vectors in C++ memory that tracemalloc does not see: count them exactly.
            ram_bytes=int(index.ntotal * index.d * 4 + python_bytes),
            disk_bytes=int(disk),
            dim=int(index.d),
        )
        return cls(ensemble, footprint, cache)

    def run(self, query: str) -> list[str]:
        return [doc.metadata["doc_id"] for doc in self.ensemble.invoke(query)]

    def close(self) -> None:
        self.cache.close()

