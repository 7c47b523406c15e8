"""One store interface over the embedded Qdrant Edge shard and a Qdrant server, with typed requests.

Example:
    >>> store = open_store(get_settings())          # index.backends: Edge under ./.erag, or a server (ERAG_QDRANT_URL)
    >>> store.ensure_collection(dim=768)
    >>> hits = store.query(HybridQuery(dense=DenseQuery(vec, limit=50), sparse=SparseQuery(idx, val, 50), limit=5))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from erag.schema import Hit
from erag.settings import SearchMode
from index.filters import Filter


class StoreError(RuntimeError):
    """The index cannot be opened or used; the message says what to do."""


@dataclass
class IndexPoint:
    id: str
    dense: np.ndarray
    sparse_indices: list[int]
    sparse_values: list[float]
    payload: dict[str, Any]


@dataclass
class DenseQuery:
    """Nearest neighbours of `vector`. `mode` picks how quantized vectors are used:
    float32 (originals), binary (1-bit codes only), binary_rescore (codes, then originals);
    binary_f8 is composed by the retriever from `binary` plus the payload's float8 copy."""

    vector: np.ndarray
    limit: int
    mode: SearchMode = "binary_rescore"
    oversampling: float = 3.0
    exact: bool = False


@dataclass
class SparseQuery:
    indices: list[int]
    values: list[float]
    limit: int


@dataclass
class HybridQuery:
    """Dense and/or BM25 candidates, fused by the engine when both are given."""

    dense: DenseQuery | None = None
    sparse: SparseQuery | None = None
    limit: int = 10
    filter: Filter | None = None
    fusion: str = "rrf"
    rrf_k: int = 60
    rrf_weights: tuple[float, float] = (1.0, 1.0)  # dense, BM25
    with_payload: bool = True
    with_f8: bool = False


@dataclass
class StoreStats:
    points: int
    segments: int = 0
    disk_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def quantization_search(dense: DenseQuery) -> dict[str, Any]:
    """How a dense mode reads the quantized codes, as the keyword arguments both engines' QuantizationSearchParams
    take: float32 ignores the codes, binary reads them alone (binary_f8 rescoring happens in this process), and
    binary_rescore rescores an oversampled candidate list with the original vectors."""
    if dense.mode == "float32":
        return {"ignore": True}
    if dense.mode in ("binary", "binary_f8"):
        return {"ignore": False, "rescore": False}
    return {"ignore": False, "rescore": True, "oversampling": dense.oversampling}


class Store(ABC):
    """The operations ingestion and retrieval need; backends translate them to their engine."""

    backend: str = ""

    @abstractmethod
    def ensure_collection(self, dim: int, embedder: str = "") -> None:
        """Create the collection (vectors, BM25, payload indexes) unless it exists with the same size."""

    @abstractmethod
    def upsert(self, points: list[IndexPoint]) -> None: ...

    @abstractmethod
    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None: ...

    @abstractmethod
    def delete(self, flt: Filter) -> None: ...

    @abstractmethod
    def query(self, request: HybridQuery) -> list[Hit]: ...

    @abstractmethod
    def scroll(self, flt: Filter | None = None, fields: list[str] | None = None, batch: int = 256) -> Iterator[Hit]:
        """Every matching point, with only `fields` of its payload (all when None)."""

    @abstractmethod
    def count(self, flt: Filter | None = None) -> int: ...

    @abstractmethod
    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]: ...

    def facet_all(self, key: str, flt: Filter | None = None) -> dict[Any, int]:
        """Every value of `key` with its count, however many there are: `facet` returns at most `limit` values
        without saying it stopped, so the limit grows until fewer come back (pruning deleted files, the admin
        page's groups and the chat's document filter must not silently miss the 1,001st)."""
        limit = 1000
        while True:
            values = self.facet(key, flt, limit=limit)
            if len(values) < limit:
                return values
            limit *= 10

    @abstractmethod
    def stats(self) -> StoreStats: ...

    def optimize(self) -> None:  # noqa: B027 - a server optimizes in the background: nothing to do
        """Build indexes and quantized codes after bulk writes."""

    def close(self) -> None:  # noqa: B027 - only the embedded shard holds an exclusive lock
        """Release the index (the embedded shard allows one process at a time)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
