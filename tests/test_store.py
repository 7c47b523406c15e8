"""The same store contract holds on the embedded Qdrant Edge shard and on qdrant-client (local mode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from erag.settings import Settings
from erag.sparse_encoder import SparseEncoder
from index import float8
from index.edge_store import EdgeStore
from index.filters import Filter, Match
from index.server_store import ServerStore
from index.store import DenseQuery, HybridQuery, IndexPoint, SparseQuery, Store, StoreError
from index.versions import visible

TEXTS = [
    "Parental leave for primary carers is twenty six weeks at full pay.",
    "Reset your VPN token in the SafeKey portal.",
    "Quarterly revenue of the consulting segment grew nine percent.",
    "Laptops are requested through the IT helpdesk portal.",
    "Part-time staff receive parental leave pro rata.",
    "The company picnic takes place in July in Leeds.",
]
DEPTS = ["HR", "IT", "Finance", "IT", "HR", "HR"]
GROUPS = [["all"], ["all"], ["finance"], ["all"], ["all"], ["all"]]


def _vectors(dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(len(TEXTS), dim)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


@pytest.fixture(params=["edge", "client-local"])
def store(request, tmp_path: Path):
    settings = Settings(home=tmp_path, qdrant_url=None if request.param == "edge" else ":memory:")
    backend: Store = EdgeStore(settings) if request.param == "edge" else ServerStore(settings)
    backend.ensure_collection(16, "test-model")
    enc = SparseEncoder()
    points = []
    for i, (text, vec) in enumerate(zip(TEXTS, _vectors(), strict=True)):
        idx, val = enc.run(text)
        payload = {"text": text, "doc_id": f"d{i}", "department": DEPTS[i], "groups": GROUPS[i], "slot": 0, "live": 0,
                   "chunk_index": 0, "f8": float8.encode(vec)}
        points.append(IndexPoint(f"00000000-0000-0000-0000-00000000000{i}", vec, idx, val, payload))
    backend.upsert(points)
    backend.optimize()
    yield backend
    backend.close()


def test_filters_restrict_and_hybrid_query_fuses(store: Store) -> None:
    enc, vecs = SparseEncoder(), _vectors()
    idx, val = enc.query("parental leave")
    request = HybridQuery(
        dense=DenseQuery(vecs[4], limit=10, mode="float32"),
        sparse=SparseQuery(idx, val, 10),
        limit=3,
        filter=Filter(must=[Match("department", "HR")]),
    )
    hits = store.query(request)
    assert {h.payload["department"] for h in hits} == {"HR"}
    # d4 is first in both lists (exact vector, and BM25 match): fusion ranks it on top.
    assert hits[0].payload["doc_id"] == "d4"
    assert "f8" not in hits[0].payload  # the float8 copy travels only on request


def test_access_group_filter_never_leaks(store: Store) -> None:
    idx, val = SparseEncoder().query("consulting segment revenue")
    hits = store.query(HybridQuery(sparse=SparseQuery(idx, val, 10), limit=10,
                                   filter=Filter(must=[Match("groups", ["all"])])))
    assert all("finance" not in h.payload["groups"] for h in hits)
    assert "d2" not in {h.payload["doc_id"] for h in hits}


def test_dense_modes_find_the_exact_vector(store: Store) -> None:
    vecs = _vectors()
    for mode in ("float32", "binary", "binary_rescore"):
        hits = store.query(HybridQuery(dense=DenseQuery(vecs[1], limit=3, mode=mode), limit=3))
        assert hits[0].payload["doc_id"] == "d1", mode


def test_delete_count_facet_scroll_and_set_payload(store: Store) -> None:
    assert store.count() == 6
    assert store.facet("department") == {"HR": 3, "IT": 2, "Finance": 1}
    store.set_payload({"live": 1}, Filter(must=[Match("doc_id", "d0")]))
    assert store.count(visible()) == 5
    # Nested conditions (the reader's visibility rule is one) and "at least one of" clauses combine as both must hold.
    either = Filter(should=[Match("department", "IT"), Match("department", "Finance")])
    assert store.count(visible() & either) == 3 and store.count(either & Filter(should=[Match("doc_id", "d2")])) == 1
    store.delete(Filter(must=[Match("department", "IT")]))
    assert store.count() == 4
    seen = sorted(h.payload["doc_id"] for h in store.scroll(fields=["doc_id"]))
    assert seen == ["d0", "d2", "d4", "d5"]


def test_collection_refuses_another_embedder(store: Store) -> None:
    with pytest.raises(StoreError, match="cannot search it"):
        store.ensure_collection(32, "other-model")


def test_edge_shard_is_single_process_with_a_clear_message(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = EdgeStore(settings)
    first.ensure_collection(8, "m")
    with pytest.raises(StoreError, match="open in another process"):
        EdgeStore(settings)
    first.close()
    EdgeStore(settings).close()  # free again once closed


def test_float8_copy_keeps_cosine_within_a_percent() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(200, 768)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    decoded = float8.decode_many([float8.encode(v) for v in vecs])
    cosine = np.sum(decoded * vecs, axis=1)
    assert cosine.min() > 0.99
    assert len(float8.encode(vecs[0])) == 4 * ((768 + 4 + 2) // 3)  # base64 of scale + one byte per dim


def test_edge_bm25_ranks_like_rank_bm25(tmp_path: Path) -> None:
    """Qdrant Edge's BM25 (sparse TF weights x engine IDF) against the rank-bm25 reference."""
    import qdrant_edge as qe

    corpus = [
        *TEXTS,
        "Leave requests are approved by your manager.",
        "Token codes fail if the phone clock is wrong.",
        "Revenue and profit figures are audited yearly.",
    ]
    enc = SparseEncoder(avg_len=8)
    store = EdgeStore(Settings(home=tmp_path))
    store.ensure_collection(4, "m")
    store.upsert([
        IndexPoint(f"00000000-0000-0000-0000-0000000000{i:02d}", np.ones(4, dtype=np.float32), *enc.run(t),
                   {"text": t}) for i, t in enumerate(corpus)
    ])
    tokenize = qe.Bm25(qe.Bm25Config(language="english"))
    # rank-bm25 over the same tokens the engine uses (hashed, stemmed, stopwords removed).
    reference = BM25Okapi([[str(i) for i in tokenize.embed_query(t).indices] for t in corpus])
    for query in ["parental leave", "vpn token phone", "revenue consulting"]:
        qidx, qval = enc.query(query)
        ours = [h.payload["text"] for h in store.query(HybridQuery(sparse=SparseQuery(qidx, qval, 3), limit=3))]
        scores = reference.get_scores([str(i) for i in qidx])
        expected = [corpus[i] for i in np.argsort(-scores)[:3] if scores[i] > 0]
        assert ours[0] == expected[0], query
        assert set(ours[: len(expected)]) == set(expected), query
    store.close()


def test_facet_all_returns_every_value_past_the_facet_limit(store: Store) -> None:
    vec = _vectors()[0]
    points = [IndexPoint(f"10000000-0000-0000-0000-{i:012d}", vec, [], [],
                         {"text": "x", "doc_id": f"many{i}", "groups": ["all"], "slot": 0, "live": 0, "chunk_index": 0})
              for i in range(1_005)]
    for start in range(0, len(points), 256):
        store.upsert(points[start:start + 256])
    assert len(store.facet("doc_id")) == 1_000  # what pruning and the admin page used to read: 11 files missed
    every = store.facet_all("doc_id")
    assert len(every) == 1_011 and {f"many{i}" for i in range(1_005)} <= set(every)
