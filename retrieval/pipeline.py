"""The whole retrieval path used by the CLI, the app, the evaluation and the LangChain adapter.

query understanding -> access and metadata filters -> hybrid search (engine-fused) -> entity boosts
-> cross-encoder rerank (optional) -> top k.

Example:
    >>> retriever = Retriever(get_settings())
    >>> result = retriever.run("parental leave in HR", groups=["all"], top_k=5)
    >>> [(h.payload["file_name"], h.scores, h.matched) for h in result.hits]

`groups` is required: the caller's access groups, or `erag.access.UNRESTRICTED` (the local admin CLI only).
A missing, empty or blank list, or a bare string, is refused (QueryError), never widened to everything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from erag.access import UNRESTRICTED, AccessError, GroupScope, require_groups
from erag.embedder import Embedder
from erag.models import load_spacy
from erag.schema import Hit
from erag.settings import SearchMode, Settings
from index.backends import open_store
from index.filters import Filter, Match
from index.spec import INDEXED_FIELDS
from index.store import Store
from index.versions import visible
from retrieval.query_analyzer import QueryAnalysis, QueryAnalyzer
from retrieval.recency import asks_latest, document_period
from retrieval.reranker import Reranker
from retrieval.searcher import HybridSearcher, QueryError, access_filter, boost_scale, clean_query, readable_by

_KNOWN_FIELDS = ("department", "title", "file_name", "people", "orgs", "places", "years")
_KNOWN_TTL_S = 60.0  # documents come and go while the app runs; refresh the vocabulary now and then
_BOOST_DEPTH = 4  # candidates per result searched when the query names documents, departments or entities
_SHARE_OF = 40  # candidates a boost's share is counted over (`Settings.boost_max_share`)
# The boosts that lift nothing when common (`Settings.boost_max_share`): years, which every period column of a
# financial or HR table repeats; their boost is what cost tatqa_dev. Not the organisation whose report is asked for,
# which decides the answer even when most candidates are its filings (docugami_sec10q loses 0.03-0.07 nDCG@10
# without it). Places and people were left alone: removing their boosts moved no set beyond noise.
_GATED_BOOSTS = frozenset({"years"})
_KNOWN_LIMIT = 10_000  # titles, file names and entities per field the query analyser matches queries against
log = logging.getLogger(__name__)
_MAX_ANALYZERS = 64  # distinct group sets cached; a deployment has a handful


@dataclass
class RetrievalResult:
    query: str
    hits: list[Hit]
    analysis: QueryAnalysis
    filters: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _payload_matches(payload: dict[str, Any], match: Match) -> bool:
    value = payload.get(match.key)
    values = value if isinstance(value, list) else [value]
    return any(v in match.values for v in values)


# A department named in a question is the document's owner ("IT's laptop policy") or what the figures are about
# ("the staff cost budget of the IT department", which the Finance budget's rows for IT answer): a chunk of either
# kind is what the query names. The rows carry the department in their `departments` entities, tagged at ingest.
# Restricted to the owner alone, that question read the IT handbook.
_ALSO_NAMED_IN = {"department": "departments"}


def _named_matches(match: Match) -> list[Match]:
    """The fields a value the query names may sit in: its own, and `_ALSO_NAMED_IN`'s."""
    also = _ALSO_NAMED_IN.get(match.key)
    return [match, Match(also, match.values)] if also else [match]


def _names(payload: dict[str, Any], match: Match) -> bool:
    """Whether a chunk is what a query's named value points at (the check `_named_condition` filters by)."""
    return any(_payload_matches(payload, m) for m in _named_matches(match))


def _named_condition(match: Match) -> Match | Filter:
    """The filter for a value the query names: any of its fields holds it."""
    matches = _named_matches(match)
    return matches[0] if len(matches) == 1 else Filter(should=list(matches))


def validate_filter(flt: Filter | None) -> None:
    """Refuse filters on fields the index cannot filter by, with the list of those it can."""
    if flt is None:
        return
    for match in flt.matches():
        if match.key not in INDEXED_FIELDS:
            known = ", ".join(sorted(INDEXED_FIELDS))
            raise QueryError(f"unknown filter field '{match.key}' (known: {known})")


class Retriever:
    """Answer `run(query, groups, filters)` with ranked, explained hits.

    The constructor checks the settings and keeps what it is given; `warm_up()` opens the index, loads the
    query encoder and, when reranking is on by default, the cross-encoder. `run` and `store` warm up on first
    use; a `run(rerank=True)` on a retriever without a reranker loads it there, in `_reranker_for`.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        if reranker is None and settings.rerank and not settings.reranker:
            raise QueryError("reranking is on (ERAG_RERANK) but no reranker is set (ERAG_RERANKER)")
        self.settings = settings
        self._given_store, self._given_embedder = store, embedder
        self._searcher: HybridSearcher | None = None
        self.reranker = reranker
        # Decided once: loading the model for one `run(rerank=True)` must not turn reranking on for later calls.
        self.rerank_by_default = reranker is not None or settings.rerank
        self._analyzers: dict[tuple[str, ...] | None, tuple[QueryAnalyzer, float]] = {}

    def warm_up(self) -> Retriever:
        """Open the index and load the models searching needs now, not on the first query."""
        if self._searcher is None:
            store = self._given_store or open_store(self.settings)
            self._searcher = HybridSearcher(self.settings, store=store, embedder=self._given_embedder)
        self._reranker_for(self.rerank_by_default)
        return self

    @property
    def searcher(self) -> HybridSearcher:
        if self._searcher is None:
            self.warm_up()
        assert self._searcher is not None
        return self._searcher

    @property
    def store(self) -> Store:
        return self.searcher.store

    def _reranker_for(self, use: bool) -> Reranker | None:
        """The reranker when `use` asks for one, loaded the first time it is asked for."""
        if not use:
            return None
        if self.reranker is None:
            s = self.settings
            if not s.reranker:
                raise QueryError("reranking was asked for but no reranker is set (ERAG_RERANKER)")
            self.reranker = Reranker.from_name(
                s.reranker, s.model_cache, s.rerank_top_n, s.rerank_batch_size, s.torch_threads,
                s.rerank_max_tokens, s.rerank_precision, s.rerank_fused_weight, s.rrf_k, s.rerank_fusion,
            )
        return self.reranker

    def analyzer(self, groups: GroupScope) -> QueryAnalyzer:
        """The analyzer for a user in `groups`: it knows only the titles, file names and entities of documents
        that user may read, so nothing it reports (a restricting filter, a note) names a document they may not."""
        key = None if groups is UNRESTRICTED else tuple(groups)  # type: ignore[arg-type]
        cached = self._analyzers.get(key)
        if cached is None or time.monotonic() - cached[1] > _KNOWN_TTL_S:
            readable = readable_by(groups)
            known = {field: set(self.store.facet(field, readable, limit=_KNOWN_LIMIT)) for field in _KNOWN_FIELDS}
            for field, values in known.items():
                if len(values) >= _KNOWN_LIMIT:
                    # Matching more names against every query would cost more than it finds: keep the cap, say so.
                    log.warning("query analysis knows only the first %d %s values of this user's documents",
                                _KNOWN_LIMIT, field)
            nlp = load_spacy(self.settings.spacy_model, tuple(self.settings.departments))
            if len(self._analyzers) >= _MAX_ANALYZERS:
                self._analyzers.clear()
            cached = (QueryAnalyzer(nlp, known), time.monotonic())
            self._analyzers[key] = cached
        return cached[0]

    def run(
        self,
        query: str,
        top_k: int | None = None,
        *,
        groups: GroupScope | list[str],
        filters: Filter | None = None,
        mode: SearchMode | None = None,
        retriever: str = "hybrid",
        rerank: bool | None = None,
    ) -> RetrievalResult:
        """Search as a user in `groups` (required: `UNRESTRICTED` only for the local admin CLI)."""
        s = self.settings
        top_k = top_k or s.top_k
        try:
            scope = require_groups(groups)
        except AccessError as exc:
            raise QueryError(str(exc)) from exc
        validate_filter(filters)
        text = clean_query(query)

        base = (filters or Filter()) & access_filter(scope)
        analysis = self.analyzer(scope).run(text) if s.query_filters != "off" else QueryAnalysis(text)
        result = RetrievalResult(query=text, hits=[], analysis=analysis)
        flt, restricted, boosts = self._filter_and_boosts(base, analysis, result.notes)
        applied = [m for m in flt.must if isinstance(m, Match)] + [m for m in restricted if m not in flt.must]
        result.filters = [f"{m.key}={'|'.join(map(str, m.values))}" for m in applied]

        reranker = self._reranker_for(self.rerank_by_default if rerank is None else rerank)
        depth = max(top_k, reranker.top_n if reranker else top_k)
        if boosts:
            # A boost can only lift what was retrieved: look deeper so a boosted document just below the cut
            # (the staff list for "How many employees ... in Berlin?", under the budget rows naming Berlin) can rise.
            depth = max(depth, top_k * _BOOST_DEPTH)
        # A very selective filter leaves HNSW too few reachable neighbours: search those chunks exactly.
        exact = not flt.is_empty() and self.store.count(flt & visible()) < s.exact_below
        hits = self.searcher.run(text, top_k=depth, groups=scope, filters=flt if not flt.is_empty() else None,
                                 mode=mode, retriever=retriever, exact=exact)
        self._explain_and_boost(hits, restricted, boosts)
        if s.query_filters != "off" and asks_latest(text):
            self._lift_latest(hits)
        hits.sort(key=lambda h: h.score, reverse=True)
        if reranker is not None:
            hits = reranker.run(text, hits)
        result.hits = hits[:top_k]
        return result

    def _filter_and_boosts(self, base: Filter, analysis: QueryAnalysis,
                           notes: list[str]) -> tuple[Filter, list[Match], list[Match]]:
        """The filter to search with, the named values it restricts to, and the matches that only boost: what the
        query names restricts the search when enough chunks match (in `auto` mode), and otherwise lifts them."""
        s = self.settings
        boosts = list(analysis.boost)
        if not analysis.restrict:
            return base, [], boosts
        candidate = base & Filter(must=[_named_condition(m) for m in analysis.restrict])
        enough = self.store.count(candidate & visible()) >= s.min_filtered_candidates
        if s.query_filters == "auto" and enough:
            return candidate, list(analysis.restrict), boosts
        notes.append(f"{', '.join(analysis.describe()[: len(analysis.restrict)])} used as a boost"
                     + ("" if enough else f" (fewer than {s.min_filtered_candidates} matching chunks)"))
        return base, [], list(analysis.restrict) + boosts

    def _explain_and_boost(self, hits: list[Hit], restricted: list[Match], boosts: list[Match]) -> None:
        """Say which named document, department or entity each hit matched, and lift the boosted ones: those a
        value singles out. A year many candidates name (TAT-QA's "between 2018 and 2019", which every report's
        tables cover) lifts nothing and only pushes down the paragraph that does not repeat it: the year boost cost
        tatqa_dev about 0.01 nDCG@10 under either embedder. Gated at `boost_max_share` of the first 40 candidates
        (both picked on seeded dev halves of tatqa_dev, scifact and docugami_sec10q), tatqa_dev gains +0.010 and the
        other sets move within noise (docs/eval/query-entities/boost-share/report.md)."""
        s = self.settings
        top = hits[:_SHARE_OF]
        common = {m for m in boosts if m.key in _GATED_BOOSTS and top
                  and sum(_names(h.payload, m) for h in top) / len(top) > s.boost_max_share}
        for hit in hits:
            hit.matched = [f"{m.key}={v}" for m in restricted for v in m.values if _names(hit.payload, m)]
            bonus = 0.0
            for m in boosts:
                if _names(hit.payload, m):
                    hit.matched.append(f"{m.key}={'|'.join(str(v) for v in m.values)}")
                    if m not in common:
                        bonus += (s.org_boost_weight if m.key == "orgs" else s.boost_weight) * boost_scale(s)
            if bonus:
                hit.score += bonus
                hit.scores["boost"] = bonus

    def _lift_latest(self, hits: list[Hit]) -> None:
        """For "the latest report", lift the hits of the newest period among the retrieved documents' titles and
        file names. Asked for Apple's "most recent 10-Q", its four quarterly filings ranked in any order."""
        periods = {h.id: document_period(h.payload) for h in hits}
        known = {p for p in periods.values() if p is not None}
        if len(known) < 2:
            return
        newest, weight = max(known), self.settings.boost_weight * boost_scale(self.settings)
        for hit in hits:
            if periods[hit.id] == newest:
                hit.score += weight
                hit.scores["boost"] = hit.scores.get("boost", 0.0) + weight
                hit.matched.append("latest period")

    def close(self) -> None:
        store = self._searcher.store if self._searcher is not None else self._given_store
        if store is not None:
            store.close()
