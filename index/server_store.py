"""A Qdrant server (or qdrant-client's local mode) behind the same store interface as the embedded shard.

Example:
    >>> store = ServerStore(Settings(qdrant_url="http://localhost:6333"))   # or ":memory:" / a folder for tests
    >>> store.ensure_collection(dim=768, embedder="all-mpnet-base-v2")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from qdrant_client import QdrantClient, models

from erag.schema import Hit
from erag.settings import Settings
from index import spec
from index.filters import Filter, translate
from index.store import DenseQuery, HybridQuery, IndexPoint, Store, StoreError, StoreStats, quantization_search


def _field(key: str, value: Any, any_of: list[Any] | None) -> models.FieldCondition:
    match = models.MatchAny(any=any_of) if any_of is not None else models.MatchValue(value=value)
    return models.FieldCondition(key=key, match=match)


def to_client_filter(flt: Filter | None) -> models.Filter | None:
    return translate(flt, _field, lambda must, must_not, should: models.Filter(must=must, must_not=must_not,
                                                                               should=should))


def _search_params(dense: DenseQuery) -> models.SearchParams:
    quantization = models.QuantizationSearchParams(**quantization_search(dense))
    return models.SearchParams(exact=dense.exact, quantization=quantization)


def _quantization(kind: str) -> models.QuantizationConfig:
    """RAM codes of the dense vectors: 1-bit by default; int8 scalar codes for the evaluation's int8 configuration."""
    if kind == "int8":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
        )
    return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))


class ServerStore(Store):
    """qdrant-client over a URL (server or cluster), ':memory:' or a local folder (local mode)."""

    backend = "server"

    def __init__(self, settings: Settings) -> None:
        url = settings.qdrant_url or ":memory:"
        self.settings = settings
        self.name = settings.collection
        if url == ":memory:":
            self.client = QdrantClient(location=":memory:")
        elif url.startswith(("http://", "https://")):
            self.client = QdrantClient(url=url, api_key=settings.qdrant_api_key, timeout=60)
        else:
            self.client = QdrantClient(path=url)
        self.backend = "local" if not url.startswith("http") else "server"

    def _exists(self) -> bool:
        return bool(self.client.collection_exists(self.name))

    def ensure_collection(self, dim: int, embedder: str = "") -> None:
        if self._exists():
            info = self.client.get_collection(self.name)
            vectors = info.config.params.vectors
            size = vectors[spec.DENSE].size if isinstance(vectors, dict) else None
            built_with = (info.config.metadata or {}).get("embedder", "") if hasattr(info.config, "metadata") else ""
            if size != dim or (embedder and built_with and built_with != embedder):
                raise StoreError(
                    f"collection '{self.name}' was built with {built_with or 'another model'} ({size}-d); "
                    f"{embedder} ({dim}-d) cannot search it. Use ERAG_COLLECTION to choose another collection"
                )
            return
        s = self.settings
        self.client.create_collection(
            self.name,
            vectors_config={
                spec.DENSE: models.VectorParams(
                    size=dim,
                    distance=models.Distance.COSINE,
                    on_disk=True,
                    quantization_config=_quantization(s.dense_quantization),
                )
            },
            sparse_vectors_config={spec.SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            hnsw_config=models.HnswConfigDiff(m=s.hnsw_m, ef_construct=s.hnsw_ef_construct),
            on_disk_payload=True,
            metadata={"embedder": embedder},
        )
        schema = (
            [(name, models.PayloadSchemaType.KEYWORD) for name in spec.KEYWORD_FIELDS]
            + [(name, models.PayloadSchemaType.INTEGER) for name in spec.INTEGER_FIELDS]
        )
        for name, kind in schema:
            self.client.create_payload_index(self.name, name, kind)

    def upsert(self, points: list[IndexPoint]) -> None:
        if not points:
            return
        self.client.upsert(
            self.name,
            [
                models.PointStruct(
                    id=p.id,
                    vector={
                        spec.DENSE: p.dense.tolist(),
                        spec.SPARSE: models.SparseVector(indices=p.sparse_indices, values=p.sparse_values),
                    },
                    payload=p.payload,
                )
                for p in points
            ],
            wait=True,
        )

    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        self.client.set_payload(self.name, payload=payload, points=to_client_filter(flt), wait=True)

    def delete(self, flt: Filter) -> None:
        if self._exists():
            selector = models.FilterSelector(filter=to_client_filter(flt))
            self.client.delete(self.name, points_selector=selector, wait=True)

    def _payload(self, request: HybridQuery) -> Any:
        if not request.with_payload:
            return False
        return True if request.with_f8 else models.PayloadSelectorExclude(exclude=spec.HIT_PAYLOAD_EXCLUDE)

    def query(self, request: HybridQuery) -> list[Hit]:
        if not self._exists():
            raise StoreError(f"collection '{self.name}' does not exist yet: run `erag ingest PATH` first")
        flt = to_client_filter(request.filter)
        dense, sparse = request.dense, request.sparse
        has_sparse = sparse is not None and bool(sparse.indices)
        sparse_vec = models.SparseVector(indices=sparse.indices, values=sparse.values) if has_sparse else None
        kwargs: dict[str, Any] = {"limit": request.limit, "with_payload": self._payload(request), "query_filter": flt}
        if dense is not None and has_sparse:
            fusion = (
                models.RrfQuery(rrf=models.Rrf(k=request.rrf_k, weights=list(request.rrf_weights)))
                if request.fusion == "rrf"
                else models.FusionQuery(fusion=models.Fusion.DBSF)
            )
            kwargs["prefetch"] = [
                models.Prefetch(
                    query=dense.vector.tolist(), using=spec.DENSE, limit=dense.limit,
                    params=_search_params(dense), filter=flt,
                ),
                models.Prefetch(query=sparse_vec, using=spec.SPARSE, limit=sparse.limit, filter=flt),
            ]
            kwargs["query"] = fusion
        elif dense is not None:
            kwargs.update(query=dense.vector.tolist(), using=spec.DENSE, search_params=_search_params(dense))
        elif has_sparse:
            kwargs.update(query=sparse_vec, using=spec.SPARSE)
        else:
            return []
        points = self.client.query_points(self.name, **kwargs).points
        return [Hit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in points]

    def scroll(self, flt: Filter | None = None, fields: list[str] | None = None, batch: int = 256) -> Iterator[Hit]:
        if not self._exists():
            return
        selector: Any = models.PayloadSelectorInclude(include=fields) if fields is not None else True
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.name, scroll_filter=to_client_filter(flt), limit=batch, offset=offset, with_payload=selector
            )
            for r in records:
                yield Hit(id=str(r.id), score=0.0, payload=dict(r.payload or {}))
            if offset is None:
                return

    def count(self, flt: Filter | None = None) -> int:
        if not self._exists():
            return 0
        return int(self.client.count(self.name, count_filter=to_client_filter(flt), exact=True).count)

    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        if not self._exists():
            return {}
        response = self.client.facet(self.name, key=key, facet_filter=to_client_filter(flt), limit=limit, exact=True)
        return {hit.value: int(hit.count) for hit in response.hits}

    def stats(self) -> StoreStats:
        if not self._exists():
            return StoreStats(points=0)
        info = self.client.get_collection(self.name)
        return StoreStats(
            points=int(info.points_count or 0),
            segments=int(info.segments_count or 0),
            extra={"indexed_vectors": int(info.indexed_vectors_count or 0)},
        )

    def close(self) -> None:
        self.client.close()
