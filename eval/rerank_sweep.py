"""nDCG@10 of hybrid search reranked with several weights of the first-pass rank, from one scoring pass.

Run: `.venv/bin/python -m eval.rerank_sweep ../shared/datasets/docugami_sec10q --reranker models/reranker
[--weights 0,0.5,1,2] [--heldout]`

`erag eval --config hybrid-rerank` measures one `ERAG_RERANK_FUSED_WEIGHT` per run and scores every pair
again; choosing the weight needs the same cross-encoder scores ranked several ways, so this scores each
query's top candidates once and ranks them with every weight (`Reranker.run` on the stored scores).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from erag.settings import get_settings
from eval.configs import CONFIGS
from eval.datasets import EvalDataset
from eval.indexes import DatasetIndexes
from eval.run import EvalRun, break_ties
from retrieval.pipeline import Retriever
from retrieval.reranker import Reranker


class _Stored:
    """Hands `Reranker.run` the scores computed once for this query's candidates."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def predict(self, pairs, **_ignored) -> np.ndarray:
        return self.scores[: len(pairs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--reranker", required=True, help="CrossEncoder name or path")
    parser.add_argument("--weights", default="0,0.5,1,2,4")
    parser.add_argument("--split", default=None)
    parser.add_argument("--heldout", action="store_true", help="only the questions reranker training held out")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    settings = get_settings()
    dataset = EvalDataset(args.dataset, args.split, settings.max_file_mb)
    runner = EvalRun(settings, progress=False)
    only = None
    if args.heldout:
        from eval.reranker_data import heldout_query_ids

        only = heldout_query_ids(args.dataset)
    queries = runner.sample_queries(dataset, args.limit, only)
    qrels = {qid: gold for qid, gold in dataset.qrels().items() if qid in queries}
    reranker = Reranker.from_name(args.reranker, settings.model_cache, settings.rerank_top_n,
                                  settings.rerank_batch_size, settings.torch_threads, settings.rerank_max_tokens,
                                  settings.rerank_precision, k=settings.rrf_k)
    from ingest.embedder import Embedder

    embedder = Embedder.from_settings(settings)
    indexes = DatasetIndexes(settings, dataset, runner.cache_root, embedder, progress=True)
    try:
        built = indexes.build("binary")
        retriever = Retriever(built.settings.model_copy(update={"query_filters": "off", "reranker": None}),
                              store=built.store, embedder=embedder)
        first: dict[str, list] = {}
        scored: dict[str, np.ndarray] = {}
        for qid in tqdm(sorted(queries), desc="score", unit="q"):
            hits = retriever.run(queries[qid], top_k=runner.depth).hits
            first[qid] = hits
            head = hits[: reranker.top_n]
            scored[qid] = np.asarray(reranker.model.predict([(queries[qid], h.text) for h in head],
                                                            batch_size=reranker.batch_size), dtype=np.float32)
    finally:
        indexes.close()

    _, _, base = runner._score(dataset, CONFIGS["hybrid"], {q: [h.doc_id for h in break_ties(first[q])]
                                                           for q in first}, qrels)
    print(f"\n{dataset.name} ({len(queries)} queries): hybrid nDCG@10 {base['ndcg@10']['mean']:.3f}")
    print("| first-pass weight | nDCG@10 | 95% CI | Δ vs hybrid |\n|---|---|---|---|")
    for weight in [float(w) for w in args.weights.split(",")]:
        ranked = {}
        for qid, hits in first.items():
            stored = Reranker(_Stored(scored[qid]), reranker.top_n, reranker.batch_size, weight, reranker.k)
            ranked[qid] = [h.doc_id for h in break_ties(stored.run(queries[qid], hits))]
        _, _, summary = runner._score(dataset, CONFIGS["hybrid-rerank"], ranked, qrels)
        mean, (low, high) = summary["ndcg@10"]["mean"], summary["ndcg@10"]["ci95"]
        print(f"| {weight:g} | {mean:.3f} | {low:.3f}-{high:.3f} | {mean - base['ndcg@10']['mean']:+.3f} |")


if __name__ == "__main__":
    main()
