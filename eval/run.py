"""One evaluation run: a dataset, its cached collections, every chosen configuration, metrics and costs.

Example:
    >>> dataset = EvalDataset(Path("../shared/datasets/smoke/scifact_mini"))
    >>> result = EvalRun(get_settings()).run(dataset, resolve_configs(["bm25", "hybrid", "peer-baseline"], settings))
    >>> result.configs["hybrid"].summary["ndcg@10"]["mean"]

Every product configuration queries through `retrieval.pipeline.Retriever` on the dataset's own cached
collection; the peer baseline through LangChain. Queries run in sorted id order, one at a time, after a
few untimed warm-up queries; latency is wall time per query including the query embedding. Metrics are
per query (documents scored by their best chunk), averaged with 95% bootstrap intervals, and every
configuration is compared with the product default (and with the peer baseline) by a paired
randomization test.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from erag.schema import Hit
from erag.settings import Settings
from eval.answer_eval import (
    EVAL_GROUPS,
    Answerer,
    AnswerEval,
    AnswerResult,
    AnswerSetupError,
    ChatAnswerer,
    ExtractiveAnswerer,
    chat_available,
)
from eval.configs import DEFAULT_CONFIG, PEER, EvalConfig
from eval.datasets import EvalDataset
from eval.footprint import IndexShape, dense_code_bytes, ram_bytes, rescore_bytes
from eval.indexes import DatasetIndexes, slug
from eval.metrics import METRICS, paired_test, per_query, rank_units, summarize

DEPTH = 30  # chunks retrieved per query; documents are ranked by their best chunk, metrics read the top 10
WARMUP = 3
SEED = 13
AnswererKind = Literal["auto", "chat", "extractive"]
_VERSIONED = ("qdrant-edge-py", "ranx", "scipy", "sentence-transformers", "torch", "faiss-cpu",
              "langchain-community", "langchain-classic", "rank-bm25")


@dataclass
class ConfigResult:
    config: EvalConfig
    per_query: dict[str, dict[str, float]]
    summary: dict[str, dict[str, Any]]
    latency_ms: list[float]
    ram_bytes_per_chunk: int
    disk_bytes_per_chunk: float | None
    bytes_per_vector: int | None
    rescore_bytes_per_vector: int
    chunks: int
    ranked: dict[str, list[str]] = field(default_factory=dict)
    errors: int = 0
    significance: dict[str, dict[str, Any]] = field(default_factory=dict)

    def latency(self) -> dict[str, float]:
        lat = self.latency_ms or [float("nan")]
        return {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))}


@dataclass
class EvalResult:
    dataset: str
    split: str
    queries: int
    embedder: str
    configs: dict[str, ConfigResult]
    baseline: str
    run_info: dict[str, Any]
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: AnswerResult | None = None
    notes: list[str] = field(default_factory=list)


def _environment() -> dict[str, Any]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1], timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    return {"git_commit": commit, "python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "versions": versions}


def break_ties(hits: list[Hit]) -> list[Hit]:
    """The product's ranking with each run of equally scored neighbours ordered by point id.

    RRF gives equal scores to many pairs of ranks and 1-bit codes to many vectors, and the engine orders
    such ties differently in each process; by id, every run scores the same ranking. The score that
    ranks is the blend of rerank and fused ranks, else the rerank score, where there is one (the fused score
    stays on the hit beside it)."""
    def ranking_score(hit: Hit) -> float:
        return hit.scores.get("blend", hit.scores.get("rerank", hit.score))

    out: list[Hit] = []
    tied: list[Hit] = []
    for hit in hits:
        if tied and ranking_score(hit) != ranking_score(tied[-1]):
            out += sorted(tied, key=lambda h: h.id)
            tied = []
        tied.append(hit)
    return out + sorted(tied, key=lambda h: h.id)


class EvalRun:
    """Run configurations on a dataset; `run(dataset, configs)` returns every number the report shows."""

    def __init__(
        self,
        settings: Settings,
        cache_root: Path | None = None,
        depth: int = DEPTH,
        seed: int = SEED,
        warmup: int = WARMUP,
        progress: bool = True,
    ) -> None:
        if depth < 10:
            raise ValueError(f"depth must be at least 10 (metrics read the top 10 documents), got {depth}")
        self.settings = settings
        self.cache_root = Path(cache_root) if cache_root else settings.home / "eval-cache"
        self.depth = depth
        self.seed = seed
        self.warmup = warmup
        self.progress = progress

    def sample_queries(self, dataset: EvalDataset, limit: int | None, only: set[str] | None = None) -> dict[str, str]:
        queries = dataset.queries()
        if only is not None:
            queries = {qid: text for qid, text in queries.items() if qid in only}
        if limit is not None and len(queries) > limit:
            ids = sorted(queries)
            picked = np.random.default_rng(self.seed).choice(len(ids), size=limit, replace=False)
            queries = {ids[i]: queries[ids[i]] for i in sorted(picked)}
        return queries

    def run(
        self,
        dataset: EvalDataset,
        configs: list[EvalConfig],
        query_limit: int | None = None,
        answers: bool = False,
        answers_limit: int | None = 200,
        answerer: AnswererKind = "auto",
        only: set[str] | None = None,
    ) -> EvalResult:
        """`only`: restrict to these query ids (e.g. the questions reranker training held out)."""
        started = time.perf_counter()
        if answers and answerer == "chat" and not chat_available():  # before hours of retrieval, not after
            raise AnswerSetupError("the chat pipeline (app/chat.py) is not available: use --answerer extractive")
        queries = self.sample_queries(dataset, query_limit, only)
        split = dataset.split if only is None else f"{dataset.split}, held-out part"
        qrels = {qid: gold for qid, gold in dataset.qrels().items() if qid in queries}
        product = [c for c in configs if not c.is_peer]
        info = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "depth": self.depth, "seed": self.seed, "warmup_queries": self.warmup,
            "gold_unit": dataset.gold_field or "corpus id",
            "settings": self.settings.model_dump(mode="json", exclude={"qdrant_api_key"}),
            **_environment(),
        }
        result = EvalResult(dataset.name, split, len(queries), self.settings.embedder, {}, DEFAULT_CONFIG, info)
        indexes: DatasetIndexes | None = None
        bar = tqdm(total=len(configs) * len(queries), desc="eval", unit="q", disable=not self.progress)
        try:
            if product or answers:
                from erag.embedder import Embedder

                embedder = Embedder.from_settings(self.settings)
                # What the model runs in, which the setting does not always say: nomic's GGUF is f16 whatever
                # ERAG_EMBED_PRECISION asks for.
                result.run_info["embed_precision"] = embedder.precision
                indexes = DatasetIndexes(self.settings, dataset, self.cache_root, embedder, progress=self.progress)
                for codes in sorted({c.collection for c in product} | ({"binary"} if answers else set())):
                    built = indexes.build(codes)  # type: ignore[arg-type]
                    result.indexes[codes] = {
                        "collection": built.settings.collection, "chunks": built.chunks, "documents": built.documents,
                        "disk_bytes": built.disk_bytes, "sparse_terms_per_chunk": built.sparse_terms,
                        "ingest": built.ingest, "seconds": round(built.seconds, 1),
                    }
                result.run_info["embedding_cache"] = {"texts": len(indexes.cache), "embedded_now": indexes.cache.misses}
                if dataset.load_failures:
                    result.notes.append(f"{len(dataset.load_failures)} tables failed to load: "
                                        + "; ".join(dataset.load_failures[:3]))
            for config in configs:
                bar.set_postfix_str(config.name)
                if config.is_peer:
                    result.configs[config.name] = self._run_peer(dataset, config, queries, qrels, bar)
                else:
                    assert indexes is not None
                    result.configs[config.name] = self._run_product(dataset, indexes, config, queries, qrels, bar)
            if answers:
                assert indexes is not None
                try:
                    result.answers = self._run_answers(dataset, indexes, answers_limit, answerer)
                except Exception as exc:  # the retrieval numbers above are kept and reported all the same
                    result.notes.append(f"answer evaluation failed: {type(exc).__name__}: {exc}")
        finally:
            bar.close()
            if indexes is not None:
                indexes.close()
        self._compare(result)
        result.run_info["seconds"] = round(time.perf_counter() - started, 1)
        return result

    # --- configurations ------------------------------------------------------------------------------
    def _retriever(self, indexes: DatasetIndexes, config: EvalConfig):
        from retrieval.pipeline import Retriever

        built = indexes.build(config.collection)
        settings = built.settings.model_copy(update={
            "query_filters": config.query_filters,
            "rerank": config.rerank,
        } | ({"fusion_policy": config.fusion_policy} if config.fusion_policy else {})
          | ({"fusion": config.fusion} if config.fusion else {}))
        return Retriever(settings, store=built.store, embedder=indexes.embedder), built

    def _timed(self, queries: dict[str, str], search, bar) -> tuple[dict[str, list[str]], list[float], int]:
        ids = sorted(queries)
        for qid in ids[: self.warmup]:  # first calls load models and fill caches: not what a user waits for
            search(queries[qid])
        ranked, latency, errors = {}, [], 0
        for qid in ids:
            t0 = time.perf_counter()
            try:
                ranked[qid] = search(queries[qid])
            except ValueError:  # a query the product refuses (e.g. empty): scored as finding nothing
                ranked[qid], errors = [], errors + 1
            latency.append((time.perf_counter() - t0) * 1000)
            bar.update(1)
        return ranked, latency, errors

    def _score(self, dataset: EvalDataset, config: EvalConfig, ranked_ids: dict[str, list[str]],
               qrels: dict[str, dict[str, int]]) -> tuple[dict[str, list[str]], dict, dict]:
        ranked = {qid: rank_units(ids, dataset.gold_unit)[:10] for qid, ids in ranked_ids.items()}
        scores = per_query(qrels, ranked)
        return ranked, scores, summarize(scores, self.seed)

    def _run_product(self, dataset, indexes, config, queries, qrels, bar) -> ConfigResult:
        retriever, built = self._retriever(indexes, config)

        def search(text: str) -> list[str]:
            hits = retriever.run(text, top_k=self.depth, groups=EVAL_GROUPS, mode=config.mode,
                                 retriever=config.retriever, rerank=config.rerank).hits
            return [h.doc_id for h in break_ties(hits)]

        ids, latency, errors = self._timed(queries, search, bar)
        ranked, scores, summary = self._score(dataset, config, ids, qrels)
        s = built.settings
        shape = IndexShape(dim=indexes.embedder.dim, hnsw_m=s.hnsw_m, sparse_terms=built.sparse_terms)
        return ConfigResult(
            config, scores, summary, latency,
            ram_bytes_per_chunk=ram_bytes(config, shape),
            disk_bytes_per_chunk=built.disk_bytes / built.chunks if built.disk_bytes and built.chunks else None,
            bytes_per_vector=dense_code_bytes(config, indexes.embedder.dim),
            rescore_bytes_per_vector=rescore_bytes(config, indexes.embedder.dim),
            chunks=built.chunks, ranked=ranked, errors=errors,
        )

    def _run_peer(self, dataset, config, queries, qrels, bar) -> ConfigResult:
        from eval.peer_baseline import PeerBaseline

        peer = PeerBaseline.build(dataset.passages(), self.settings, self.cache_root / slug(dataset.name) / "peer",
                                  k=self.depth)
        try:
            ids, latency, errors = self._timed(queries, peer.run, bar)
        finally:
            peer.close()
        ranked, scores, summary = self._score(dataset, config, ids, qrels)
        fp = peer.footprint
        return ConfigResult(
            config, scores, summary, latency,
            ram_bytes_per_chunk=round(fp.ram_bytes / fp.chunks), disk_bytes_per_chunk=fp.disk_bytes / fp.chunks,
            bytes_per_vector=4 * fp.dim, rescore_bytes_per_vector=0, chunks=fp.chunks, ranked=ranked, errors=errors,
        )

    def _run_answers(self, dataset: EvalDataset, indexes: DatasetIndexes, limit: int | None,
                     kind: AnswererKind) -> AnswerResult | None:
        if not dataset.questions():
            return None
        from retrieval.pipeline import Retriever

        built = indexes.build("binary")
        # The chat retrieves as the product does by default: the settings' query filters and reranker.
        retriever = Retriever(built.settings, store=built.store, embedder=indexes.embedder)
        if kind == "auto":
            kind = "chat" if chat_available() else "extractive"
        answerer: Answerer
        if kind == "chat":
            if not chat_available():
                raise AnswerSetupError("the chat pipeline (app/chat.py) is not available: use --answerer extractive")
            from app.chat import ChatPipeline

            answerer = ChatAnswerer(ChatPipeline(built.settings, retriever=retriever))
        else:
            answerer = ExtractiveAnswerer(retriever)
        return AnswerEval(dataset, self.seed).run(answerer, limit=limit, progress=self.progress)

    # --- significance --------------------------------------------------------------------------------
    def _compare(self, result: EvalResult) -> None:
        names = list(result.configs)
        if not names:
            return
        result.baseline = DEFAULT_CONFIG if DEFAULT_CONFIG in result.configs else names[0]
        references = [result.baseline] + ([PEER] if PEER in result.configs and result.baseline != PEER else [])
        for name, cr in result.configs.items():
            for ref in references:
                if ref == name:
                    continue
                other = result.configs[ref].per_query
                cr.significance[ref] = {}
                for metric in METRICS:
                    qids = sorted(cr.per_query[metric])
                    diff, p = paired_test([cr.per_query[metric][q] for q in qids], [other[metric][q] for q in qids],
                                          self.seed)
                    cr.significance[ref][metric] = {"diff": diff, "p_value": p}

