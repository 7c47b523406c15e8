"""The embedded default: a Qdrant Edge shard in this process, on local disk, WAL-protected.

Example:
    >>> import tempfile
    >>> with EdgeStore(Settings(home=Path(tempfile.mkdtemp()))) as store:   # ./.erag in the app (ERAG_HOME)
    ...     store.ensure_collection(dim=768, embedder="all-mpnet-base-v2")
    ...     store.count()
    0
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from erag.home import private_dir
from erag.schema import Hit
from erag.settings import Settings
from index import spec
from index.filters import Filter, translate
from index.store import DenseQuery, HybridQuery, IndexPoint, Store, StoreError, StoreStats, quantization_search

_META = "erag_meta.json"


def _field(key: str, value: Any, any_of: list[Any] | None) -> qe.FieldCondition:
    return qe.FieldCondition(key=key, match=qe.MatchAny(any_of) if any_of is not None else qe.MatchValue(value))


def to_edge_filter(flt: Filter | None) -> qe.Filter | None:
    return translate(flt, _field, lambda must, must_not, should: qe.Filter(must=must, must_not=must_not,
                                                                           should=should))


def _search_params(dense: DenseQuery) -> qe.SearchParams:
    quantization = qe.QuantizationSearchParams(**quantization_search(dense))
    return qe.SearchParams(exact=dense.exact, quantization=quantization)


def _quantization(kind: str) -> Any:
    """RAM codes of the dense vectors: 1-bit by default; int8 scalar codes for the evaluation's int8 configuration."""
    if kind == "int8":
        return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Pinned)
    return qe.BinaryQuantizationConfig(memory=qe.Memory.Pinned)


def _payload_selector(request: HybridQuery) -> Any:
    if not request.with_payload:
        return False
    return True if request.with_f8 else qe.PayloadSelector.Exclude(spec.HIT_PAYLOAD_EXCLUDE)


def _dir_bytes(path: Path) -> int:
    # Blocks actually used: Qdrant preallocates sparse mmap files whose apparent size means nothing.
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


class EdgeStore(Store):
    """Qdrant Edge shard at `settings.index_path`; one process may hold it at a time."""

    backend = "edge"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.index_path
        private_dir(settings.home)  # an older home made before it was owner-only is tightened here
        self.shard: qe.EdgeShard | None = None
        if (self.path / _META).exists():
            self.shard = self._open(lambda: qe.EdgeShard.load(str(self.path)))

    def _open(self, opener) -> qe.EdgeShard:
        try:
            return opener()
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise StoreError(
                    f"the index at {self.path} is open in another process (the app, a worker or another erag "
                    "command); stop it first, or set ERAG_QDRANT_URL to a Qdrant server for shared access"
                ) from exc
            raise StoreError(f"cannot open the index at {self.path}: {exc}") from exc

    @property
    def _shard(self) -> qe.EdgeShard:
        if self.shard is None:
            raise StoreError(f"no index at {self.path} yet: run `erag ingest PATH` first")
        return self.shard

    def meta(self) -> dict[str, Any]:
        meta_path = self.path / _META
        return json.loads(meta_path.read_text()) if meta_path.exists() else {}

    def ensure_collection(self, dim: int, embedder: str = "") -> None:
        meta = self.meta()
        if meta:
            if meta["dim"] != dim or (embedder and meta.get("embedder") not in ("", embedder)):
                raise StoreError(
                    f"the index at {self.path} was built with {meta.get('embedder')} ({meta['dim']}-d); "
                    f"{embedder} ({dim}-d) cannot search it. Set ERAG_EMBEDDER={meta.get('embedder')}, "
                    "or choose another ERAG_HOME / ERAG_COLLECTION and re-ingest"
                )
            if meta.get("quantization", "binary") != self.settings.dense_quantization:
                raise StoreError(
                    f"the index at {self.path} keeps {meta.get('quantization', 'binary')} codes, not "
                    f"{self.settings.dense_quantization}: choose another ERAG_HOME / ERAG_COLLECTION"
                )
            return
        s = self.settings
        config = qe.EdgeConfig(
            vectors={
                spec.DENSE: qe.EdgeVectorParams(
                    size=dim,
                    distance=qe.Distance.Cosine,
                    # Originals stay on disk and are touched only to rescore; the 1-bit codes live in RAM.
                    memory=qe.Memory.Cold,
                    quantization_config=_quantization(s.dense_quantization),
                )
            },
            sparse_vectors={spec.SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(m=s.hnsw_m, ef_construct=s.hnsw_ef_construct, full_scan_threshold=10000),
            payload_memory=qe.Memory.Cold,
            # Edge builds int8 codes only for segments it indexes, and the default threshold leaves small
            # collections and the newest segment unindexed, so they would be searched as float32. Index them all.
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1) if s.dense_quantization == "int8" else None,
        )
        if self.path.exists():
            # No meta file but a folder: a previous create was killed before it finished, and nothing
            # can have been ingested into it, so it is safe to start over.
            shutil.rmtree(self.path)
        private_dir(self.path)
        self.shard = self._open(lambda: qe.EdgeShard.create(str(self.path), config))
        shard = self.shard
        for name in spec.KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        for name in spec.INTEGER_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Integer))
        shard.flush()
        # Written last: its presence means the shard is complete and may be loaded.
        meta = {"dim": dim, "embedder": embedder, "quantization": s.dense_quantization}
        (self.path / _META).write_text(json.dumps(meta))

    def upsert(self, points: list[IndexPoint]) -> None:
        if not points:
            return
        self._shard.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        id=p.id,
                        vector={
                            spec.DENSE: p.dense.tolist(),
                            spec.SPARSE: qe.SparseVector(indices=p.sparse_indices, values=p.sparse_values),
                        },
                        payload=p.payload,
                    )
                    for p in points
                ]
            )
        )

    def set_payload(self, payload: dict[str, Any], flt: Filter) -> None:
        self._shard.update(qe.UpdateOperation.set_payload_by_filter(to_edge_filter(flt), payload))

    def delete(self, flt: Filter) -> None:
        if self.shard is None:
            return
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(to_edge_filter(flt)))

    def query(self, request: HybridQuery) -> list[Hit]:
        shard = self._shard
        flt = to_edge_filter(request.filter)
        dense, sparse = request.dense, request.sparse
        dense_query = (
            qe.Query.Nearest(dense.vector.tolist(), using=spec.DENSE) if dense is not None else None
        )
        sparse_query = (
            qe.Query.Nearest(qe.SparseVector(indices=sparse.indices, values=sparse.values), using=spec.SPARSE)
            if sparse is not None and sparse.indices
            else None
        )
        payload = _payload_selector(request)
        if dense_query is not None and sparse_query is not None:
            fusion = (
                qe.Fusion.Rrf(k=request.rrf_k, weights=list(request.rrf_weights))
                if request.fusion == "rrf"
                else qe.Fusion.Dbsf()
            )
            qreq = qe.QueryRequest(
                limit=request.limit,
                prefetches=[
                    qe.Prefetch(limit=dense.limit, query=dense_query, params=_search_params(dense), filter=flt),
                    qe.Prefetch(limit=sparse.limit, query=sparse_query, filter=flt),
                ],
                query=fusion,
                filter=flt,
                with_payload=payload,
            )
        elif dense_query is not None:
            qreq = qe.QueryRequest(
                limit=request.limit, query=dense_query, params=_search_params(dense), filter=flt, with_payload=payload
            )
        elif sparse_query is not None:
            qreq = qe.QueryRequest(limit=request.limit, query=sparse_query, filter=flt, with_payload=payload)
        else:
            return []
        return [Hit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in shard.query(qreq)]

    def scroll(self, flt: Filter | None = None, fields: list[str] | None = None, batch: int = 256) -> Iterator[Hit]:
        if self.shard is None:
            return
        selector: Any = qe.PayloadSelector.Include(fields) if fields is not None else True
        offset = None
        while True:
            records, offset = self.shard.scroll(
                qe.ScrollRequest(offset=offset, limit=batch, filter=to_edge_filter(flt), with_payload=selector)
            )
            for r in records:
                yield Hit(id=str(r.id), score=0.0, payload=dict(r.payload or {}))
            if offset is None:
                return

    def count(self, flt: Filter | None = None) -> int:
        if self.shard is None:
            return 0
        return int(self.shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(flt))))

    def facet(self, key: str, flt: Filter | None = None, limit: int = 1000) -> dict[Any, int]:
        if self.shard is None:
            return {}
        response = self.shard.facet(qe.FacetRequest(key=key, limit=limit, exact=True, filter=to_edge_filter(flt)))
        return {hit.value: int(hit.count) for hit in response.hits}

    def stats(self) -> StoreStats:
        if self.shard is None:
            return StoreStats(points=0)
        info = self.shard.info()
        return StoreStats(
            points=int(info.points_count),
            segments=int(info.segments_count),
            disk_bytes=_dir_bytes(self.path),
            extra={"indexed_vectors": int(info.indexed_vectors_count), **self.meta()},
        )

    def optimize(self) -> None:
        if self.shard is not None:
            self.shard.optimize()

    def close(self) -> None:
        if self.shard is not None:
            self.shard.flush()
            self.shard.close()
            self.shard = None
