"""Named retrieval configurations that an evaluation runs side by side.

Example:
    >>> settings = Settings()   # from the ERAG_* environment
    >>> [c.name for c in resolve_configs(["bm25", "hybrid"], settings)]
    ['bm25', 'hybrid']
    >>> CONFIGS["dense-int8"].collection
    'int8'

Each product configuration is a set of arguments for `retrieval.pipeline.Retriever.run` plus the settings
it needs (which collection, whether query understanding applies, whether to rerank), so every query goes
through the product's own retrieval path. `peer-baseline` is the LangChain stack of `eval.peer_baseline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from erag.settings import Fusion, FusionPolicy, SearchMode, Settings

DEFAULT_CONFIG = "hybrid"
PEER = "peer-baseline"


@dataclass(frozen=True)
class EvalConfig:
    name: str
    description: str
    retriever: Literal["hybrid", "dense", "bm25", "peer"]
    mode: SearchMode | None = None  # None: the settings' search mode (the product default)
    collection: Literal["binary", "int8"] = "binary"
    query_filters: Literal["auto", "off"] = "off"
    rerank: bool = False
    fusion_policy: FusionPolicy | None = None  # None: the settings' policy (the product default)
    fusion: Fusion | None = None  # None: the settings' fusion (follows the embedder)

    @property
    def is_peer(self) -> bool:
        return self.retriever == "peer"

    def settings_overrides(self) -> dict[str, object]:
        """What this configuration changes in the product settings (recorded in results.json)."""
        out: dict[str, object] = {"retriever": self.retriever, "collection": self.collection,
                                  "query_filters": self.query_filters, "rerank": self.rerank}
        if self.mode:
            out["search_mode"] = self.mode
        if self.fusion_policy:
            out["fusion_policy"] = self.fusion_policy
        if self.fusion:
            out["fusion"] = self.fusion
        return out


_ALL = [
    EvalConfig("bm25", "BM25 only (Qdrant sparse vectors, IDF by the engine)", "bm25"),
    EvalConfig("dense-float32", "dense only, float32 originals (HNSW, no quantization)", "dense", "float32"),
    EvalConfig("dense-int8", "dense only, int8 scalar codes, no rescoring (own collection)", "dense", "binary", "int8"),
    EvalConfig("dense-binary", "dense only, 1-bit codes, no rescoring", "dense", "binary"),
    EvalConfig("dense-binary-rescore", "dense only, 1-bit codes rescored with the float32 originals", "dense",
               "binary_rescore"),
    EvalConfig("dense-binary-f8", "dense only, 1-bit codes rescored with the float8 copy", "dense", "binary_f8"),
    EvalConfig("hybrid", "dense (default mode) + BM25 fused (ERAG_FUSION: RRF, or with nomic the convex combination "
               "of min-max scores), BM25 leading when its first hit stands clear (ERAG_FUSION_POLICY=bm25_gap): the "
               "product default", "hybrid"),
    EvalConfig("hybrid-rrf", "hybrid with RRF whatever the embedder (ERAG_FUSION=rrf; nomic's default before "
               "2026-12-01)", "hybrid", fusion="rrf"),
    EvalConfig("hybrid-fixed", "dense + BM25 fused by the engine with RRF 1:1 for every query "
               "(ERAG_FUSION_POLICY=fixed, ERAG_FUSION=rrf, the default before 2026-11-30)", "hybrid",
               fusion_policy="fixed", fusion="rrf"),
    EvalConfig("hybrid-filters", "hybrid + query-derived metadata filters and boosts (as the Retriever applies)",
               "hybrid", query_filters="auto"),
    EvalConfig("hybrid-rerank", "hybrid + cross-encoder rerank of the top candidates (ERAG_RERANKER)", "hybrid",
               rerank=True),
    EvalConfig(PEER, "LangChain EnsembleRetriever: FAISS flat float32 + BM25Retriever (0.5/0.5), "
               "RecursiveCharacterTextSplitter(1500, 100), all-MiniLM-L6-v2", "peer"),
]
CONFIGS = {c.name: c for c in _ALL}


class ConfigError(ValueError):
    """An unknown or unavailable configuration name; the message lists the choices."""


def resolve_configs(names: list[str] | None, settings: Settings) -> list[EvalConfig]:
    """Configurations by name (comma-separated values allowed; `all` = every available one), in a stable order.
    None or empty: the product default only."""
    wanted = [n.strip() for item in (names or []) for n in item.split(",") if n.strip()] or [DEFAULT_CONFIG]
    if "all" in wanted:
        wanted = [c.name for c in _ALL if not (c.rerank and not settings.reranker)] + [w for w in wanted if w != "all"]
    unknown = [n for n in wanted if n not in CONFIGS]
    if unknown:
        raise ConfigError(f"unknown configuration '{unknown[0]}' (choose from {', '.join(CONFIGS)}, or all)")
    chosen = [c for c in _ALL if c.name in wanted]
    if any(c.rerank for c in chosen) and not settings.reranker:
        raise ConfigError("hybrid-rerank needs a reranker: set ERAG_RERANKER to a CrossEncoder name or path")
    return chosen
