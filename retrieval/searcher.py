"""Hybrid search: dense (quantized, rescored) plus BM25, fused, over the visible version of each document.

Example:
    >>> searcher = HybridSearcher(get_settings())
    >>> hits = searcher.run("How many days of parental leave do I get?", groups=["all"], top_k=5)
    >>> hits[0].payload["file_name"], hits[0].location()
    ('parental_leave_policy.md', '')

Fusion: by default (`ERAG_FUSION_POLICY=bm25_gap`) the dense and BM25 lists are searched apart and fused here,
1:1 unless BM25's first hit stands clear of its tenth, when BM25's order leads (`fusion_weights`): nDCG@10
+0.045 on tatqa_dev, +0.026 on wtq_dev, +0.007 on scifact, -0.002 on docugami_sec10q (n.s.) against the engine's
1:1 RRF, at +1 to 4 ms a query p50 on the dev sets and +21 ms p95 at 100k chunks (two searches instead of one
fused query). `ERAG_FUSION_POLICY=fixed` lets the engine fuse every query with `rrf_weights`. With
`ERAG_FUSION=convex` (nomic's default) the two lists' min-max scores are summed instead (`convex_fusion`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from erag.access import UNRESTRICTED, AccessError, GroupScope, require_groups
from erag.embedder import Embedder
from erag.schema import Hit
from erag.settings import SearchMode, Settings
from erag.sparse_encoder import SparseEncoder
from index import float8
from index.backends import open_store
from index.filters import Filter, Match
from index.store import DenseQuery, HybridQuery, SparseQuery, Store
from index.versions import visible

MAX_QUERY_CHARS = 2000
RETRIEVERS = ("hybrid", "dense", "bm25")


class QueryError(ValueError):
    """The query cannot be searched; the message is meant for the person who typed it."""


def clean_query(query: str | None) -> str:
    """The query with whitespace collapsed and cut to MAX_QUERY_CHARS; refuses an empty one.

    The embedder reads at most a few hundred tokens, and a pasted page adds only noise to BM25.
    """
    text = " ".join((query or "").split())
    if not text:
        raise QueryError("the query is empty: type a question or some keywords")
    return text[:MAX_QUERY_CHARS]


def ranked(hits: list[Hit]) -> list[Hit]:
    """Hits by score, equal scores by point id. Reciprocal rank fusion ties often (ranks 1 and 2 in one list, 2 and
    1 in the other), and the engine returns tied points in no fixed order: the same question then numbered its
    sources differently from one asking to the next, and the answer cited [2] where it had cited [1]."""
    return sorted(hits, key=lambda h: (-h.score, str(h.id)))


def reciprocal_rank_fusion(rankings: list[list[Hit]], k: int, weights: tuple[float, ...] | None = None) -> list[Hit]:
    """RRF over ranked lists. The engine fuses in every other mode; this runs only for binary_f8,
    whose rescored dense list exists only in this process. Hand-written because ranx's `fuse`
    compiles with numba on first use (seconds), which an interactive query cannot afford."""
    fused: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, hit in enumerate(ranking):
            entry = fused.setdefault(hit.id, replace(hit, score=0.0, scores={}))
            entry.scores.update(hit.scores)
            entry.score += weight / (k + rank)  # 0-based rank, as Qdrant's own RRF scores it
    return ranked(list(fused.values()))


def convex_fusion(rankings: list[list[Hit]], weights: tuple[float, ...]) -> list[Hit]:
    """A weighted sum of each list's min-max normalised scores (the convex combination of Bruch et al., "An
    Analysis of Fusion Functions for Hybrid Retrieval", 2023): unlike RRF it keeps how far apart two hits score,
    so a dense first hit far ahead of its second stays ahead. A chunk missing from a list gets that list's
    minimum (0). The same numbers as ranx's `fuse(norm="min-max", method="wsum")` (tests/test_retrieval.py), by
    hand for the reason `reciprocal_rank_fusion` gives, except that a list whose scores are all equal (one BM25
    match) counts as 1, not 0: a lone match is the list's best hit, not its worst."""
    fused: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if not ranking:
            continue
        low = min(h.score for h in ranking)
        span = max(h.score for h in ranking) - low
        for hit in ranking:
            entry = fused.setdefault(hit.id, replace(hit, score=0.0, scores={}))
            entry.scores.update(hit.scores)
            entry.score += weight * ((hit.score - low) / span if span > 0 else 1.0)
    return ranked(list(fused.values()))


def boost_scale(settings: Settings) -> float:
    """What the query boosts (`boost_weight`, sized on RRF scores) are multiplied by under this fusion: a chunk
    first in both lists scores 2/k under RRF and 1 under the convex fusion, so a boost keeps its share of the
    best score."""
    return settings.rrf_k / 2 if settings.fusion == "convex" else 1.0


def access_filter(groups: GroupScope) -> Filter:
    """The access condition of a search: chunks readable by one of `groups`; none for UNRESTRICTED."""
    if groups is UNRESTRICTED:
        return Filter()
    return Filter(must=[Match("groups", list(groups))])  # type: ignore[arg-type]


def readable_by(groups: GroupScope) -> Filter:
    """What a user in `groups` may read: committed chunks (the crash-safe version switch, `index.versions`) of
    documents shared with one of the groups. Every search, facet and filter list a user sees starts here."""
    return visible() & access_filter(groups)


class HybridSearcher:
    """Search the index with one query: `run(query, top_k, filters)` returns ranked hits."""

    def __init__(self, settings: Settings, store: Store | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder.from_settings(settings)
        self.store = store or open_store(settings)
        self.sparse = SparseEncoder(settings.bm25_k1, settings.bm25_b, settings.bm25_avg_len)

    def run(
        self,
        query: str,
        top_k: int | None = None,
        *,
        groups: GroupScope | list[str],
        filters: Filter | None = None,
        mode: SearchMode | None = None,
        retriever: str = "hybrid",
        exact: bool = False,
    ) -> list[Hit]:
        """Ranked hits readable by `groups` (required, as in `Retriever.run`) among the visible chunks."""
        try:
            scope = require_groups(groups)
        except AccessError as exc:
            raise QueryError(str(exc)) from exc
        text = clean_query(query)
        if retriever not in RETRIEVERS:
            raise QueryError(f"unknown retriever '{retriever}' (choose from {', '.join(RETRIEVERS)})")
        s = self.settings
        top_k = top_k or s.top_k
        mode = mode or s.search_mode
        readable = readable_by(scope) & filters

        dense = sparse = None
        if retriever in ("hybrid", "dense"):
            # Queries take the model's query prompt; a test double or cache that only has `run` still works.
            vector = getattr(self.embedder, "run_queries", self.embedder.run)([text])[0]
            dense = DenseQuery(
                vector, limit=max(s.dense_candidates, top_k), mode=mode, oversampling=s.oversampling, exact=exact
            )
        if retriever in ("hybrid", "bm25"):
            indices, values = self.sparse.query(text)
            sparse = SparseQuery(indices, values, limit=max(s.sparse_candidates, top_k))
            if not indices and dense is None:
                return []  # only stopwords or symbols: nothing for BM25 to match

        if dense is not None and mode == "binary_f8":
            return self._f8_search(dense, sparse, readable, top_k)
        if dense is not None and sparse is not None and sparse.indices \
                and (s.fusion == "convex" or (s.fusion == "rrf" and s.fusion_policy != "fixed")):
            dense_hits = ranked(self.store.query(HybridQuery(dense=dense, limit=dense.limit, filter=readable)))
            for hit in dense_hits:
                hit.scores["dense"] = hit.score
            return self._fuse(dense_hits, sparse, readable, top_k)
        request = HybridQuery(dense=dense, sparse=sparse, limit=top_k, filter=readable, fusion=s.fusion,
                              rrf_k=s.rrf_k, rrf_weights=s.rrf_weights)
        hits = ranked(self.store.query(request))
        label = "fused" if dense is not None and sparse is not None and sparse.indices else retriever
        for hit in hits:
            hit.scores[label] = hit.score
        return hits

    def _f8_search(self, dense: DenseQuery, sparse: SparseQuery | None, flt: Filter, top_k: int) -> list[Hit]:
        """Binary first pass with oversampling, rescored against the float8 copies, then fused with BM25."""
        wide = replace(dense, limit=int(dense.limit * dense.oversampling), mode="binary")
        candidates = self.store.query(HybridQuery(dense=wide, limit=wide.limit, filter=flt, with_f8=True))
        if any("f8" not in h.payload for h in candidates):
            raise QueryError("some chunks have no float8 copy (ingested by an older version): re-ingest them, "
                             "or search with another mode (ERAG_SEARCH_MODE=binary_rescore)")
        if candidates:
            matrix = float8.decode_many([h.payload.pop("f8") for h in candidates])
            scores = matrix @ (dense.vector / (np.linalg.norm(dense.vector) + 1e-12))
            for hit, score in zip(candidates, scores, strict=True):
                hit.score = float(score)
                hit.scores["dense"] = hit.score
            candidates.sort(key=lambda h: h.score, reverse=True)
        dense_hits = candidates[: dense.limit]
        if sparse is None or not sparse.indices:
            return dense_hits[:top_k]
        return self._fuse(dense_hits, sparse, flt, top_k)

    def _fuse(self, dense_hits: list[Hit], sparse: SparseQuery, flt: Filter, top_k: int) -> list[Hit]:
        """The BM25 list, fused here with the dense one: RRF under the weights `fusion_weights` picks for this
        query, or (`fusion="convex"`) the convex combination, BM25 weighted up where `bm25_leads`."""
        bm25_hits = ranked(self.store.query(HybridQuery(sparse=sparse, limit=sparse.limit, filter=flt)))
        for hit in bm25_hits:
            hit.scores["bm25"] = hit.score
        s = self.settings
        bm25_scores, dense_top = [h.score for h in bm25_hits], dense_hits[0].score if dense_hits else None
        if s.fusion == "convex":
            led = bm25_leads(s, bm25_scores, dense_top)
            alpha = s.convex_bm25_led_dense_weight if led else s.convex_dense_weight
            fused = convex_fusion([dense_hits, bm25_hits], (alpha, 1.0 - alpha))[:top_k]
        else:
            fused = reciprocal_rank_fusion([dense_hits, bm25_hits], s.rrf_k,
                                           fusion_weights(s, bm25_scores, dense_top))[:top_k]
        for hit in fused:
            hit.scores["fused"] = hit.score
        return fused


def fusion_weights(settings: Settings, bm25_scores: list[float], dense_top: float | None = None) -> tuple[float, float]:
    """Dense and BM25 weights for one query. Under the `bm25_gap` policy, a BM25 list whose first score stands
    clear of its tenth ((s1 - s10) / s1 above the threshold; a missing tenth counts 0) is trusted: BM25's first hit
    is then gold for 71-78% of such queries against 58-70% for the 1:1 fusion's (tatqa, scifact, wtq), and 1:1 RRF
    lets chunks both lists rank in the middle overtake it. Flat BM25 scores (long filings sharing their words)
    keep 1:1. Chosen on seeded dev halves, scored on the other halves: docs/eval/fusion/report.md. With an
    embedder whose first hit is as often right (`bm25_gap_dense_below`), a sure dense first hit (`dense_top`, its
    cosine) keeps 1:1 too.

    >>> s = Settings()  # fusion_policy="bm25_gap", the default
    >>> fusion_weights(s, [12.0, 11.5, 11.0, 10.9, 10.8, 10.7, 10.6, 10.5, 10.4, 10.3])  # flat: 1:1
    (1.0, 1.0)
    >>> fusion_weights(s, [12.0, 7.0, 6.5, 6.4, 6.3, 6.2, 6.1, 6.0, 5.9, 5.8])  # one clear winner: BM25 leads
    (0.0372, 1.0)
    """
    if settings.fusion_policy != "bm25_gap":
        return settings.rrf_weights
    return settings.bm25_led_weights if bm25_leads(settings, bm25_scores, dense_top) else (1.0, 1.0)


def bm25_leads(settings: Settings, bm25_scores: list[float], dense_top: float | None = None) -> bool:
    """Whether the `bm25_gap` policy trusts BM25's order for this query (see `fusion_weights`); never under
    the `fixed` policy."""
    if settings.fusion_policy != "bm25_gap":
        return False
    top = bm25_scores[0] if bm25_scores else 0.0
    tenth = bm25_scores[9] if len(bm25_scores) >= 10 else 0.0
    dense_sure = settings.bm25_gap_dense_below is not None and dense_top is not None \
        and dense_top >= settings.bm25_gap_dense_below
    return top > 0 and (top - tenth) / top > settings.bm25_gap_threshold and not dense_sure
